//! The library against the real SmolLM2-135M-Instruct weights.

mod common;

use abstractgateway_llm_local::{Error, FinishReason, GenOptions, LocalModel, q8_cache_path};
use common::{model, model_path, user};

#[test]
fn greedy_generation_is_deterministic_and_non_empty() {
    let model = model();
    let opts = GenOptions {
        max_tokens: 8,
        ..GenOptions::default()
    };
    let first = model
        .chat(&user("What is the capital of France?"), &opts)
        .unwrap();
    let second = model
        .chat(&user("What is the capital of France?"), &opts)
        .unwrap();
    assert!(!first.text.trim().is_empty(), "empty answer: {first:?}");
    assert_eq!(first.text, second.text);
    assert!(
        first.completion_tokens >= 1 && first.completion_tokens <= 8,
        "{first:?}"
    );
    assert_eq!(first.completion_tokens, second.completion_tokens);
    // Default system turn + user turn + assistant header.
    assert!(first.prompt_tokens > 10, "{first:?}");
    if first.completion_tokens == 8 {
        assert_eq!(first.finish_reason, FinishReason::Length);
    }
}

#[test]
fn streamed_pieces_add_up_to_the_returned_text() {
    let model = model();
    let opts = GenOptions {
        max_tokens: 12,
        ..GenOptions::default()
    };
    let mut pieces = Vec::new();
    let g = model
        .chat_streaming(&user("Say hello."), &opts, |t| {
            pieces.push(t.to_string());
            true
        })
        .unwrap();
    assert!(!pieces.is_empty());
    assert_eq!(pieces.concat(), g.text);
    let plain = model.chat(&user("Say hello."), &opts).unwrap();
    assert_eq!(plain.text, g.text);
}

#[test]
fn a_stop_sequence_cuts_the_answer_before_it() {
    let model = model();
    let opts = GenOptions {
        max_tokens: 16,
        ..GenOptions::default()
    };
    let full = model.chat(&user("Count from 1 to 10."), &opts).unwrap();
    // Stop at the second character of the unconstrained (greedy, so identical) answer.
    let Some(stop) = full.text.chars().nth(1) else {
        return;
    };
    let stopped = model
        .chat(
            &user("Count from 1 to 10."),
            &GenOptions {
                stop: vec![stop.to_string()],
                ..opts
            },
        )
        .unwrap();
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    let cut = full.text.find(stop).expect("the stop occurs in the answer");
    assert_eq!(stopped.text, full.text[..cut]);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let model = model();
    let opts = GenOptions {
        max_tokens: 8,
        temperature: 0.8,
        seed: 42,
        ..GenOptions::default()
    };
    let a = model.chat(&user("Tell me a word."), &opts).unwrap();
    let b = model.chat(&user("Tell me a word."), &opts).unwrap();
    assert_eq!(a.text, b.text);
}

#[test]
fn zero_max_tokens_returns_no_text() {
    let g = model()
        .chat(
            &user("Hi"),
            &GenOptions {
                max_tokens: 0,
                ..GenOptions::default()
            },
        )
        .unwrap();
    assert_eq!(g.text, "");
    assert_eq!(g.completion_tokens, 0);
    assert_eq!(g.finish_reason, FinishReason::Length);
}

#[test]
fn load_uses_the_q8_0_cache_beside_the_source() {
    let source = model_path();
    // The shared model above may have been loaded already; either way the cache must exist now.
    let _ = model();
    let cache = q8_cache_path(&source);
    assert!(cache.is_file(), "{} missing", cache.display());
    let reloaded = LocalModel::load(&source).unwrap();
    assert_eq!(reloaded.weights_path(), Some(cache.as_path()));
}

#[test]
fn requantizes_into_a_fresh_directory_and_rebuilds_a_corrupt_cache() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("m.Q4_1.gguf");
    std::fs::copy(model_path(), &copy).unwrap();
    let cache = dir.path().join("m.Q4_1.q8_0.gguf");

    let fresh = LocalModel::load(&copy).unwrap();
    assert_eq!(fresh.weights_path(), Some(cache.as_path()));
    let size = std::fs::metadata(&cache).unwrap().len();
    assert!(size > 100_000_000, "Q8_0 cache is {size} bytes");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    std::fs::write(&cache, b"GGUF but not really").unwrap();
    let rebuilt = LocalModel::load(&copy).unwrap();
    assert_eq!(std::fs::metadata(&cache).unwrap().len(), size);
    let opts = GenOptions {
        max_tokens: 4,
        ..GenOptions::default()
    };
    assert_eq!(
        fresh.chat(&user("Hi"), &opts).unwrap().text,
        rebuilt.chat(&user("Hi"), &opts).unwrap().text
    );
}

#[test]
fn a_missing_or_foreign_file_is_a_precise_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.gguf");
    let err = LocalModel::load(&missing).unwrap_err().to_string();
    assert!(err.contains("absent.gguf"), "{err}");
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model").unwrap();
    let err = LocalModel::load(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.gguf") && err.contains("GGUF"), "{err}");
}

#[test]
fn concurrent_chats_match_sequential_ones() {
    let model = model();
    let opts = GenOptions {
        max_tokens: 6,
        ..GenOptions::default()
    };
    let prompts = ["Name a fruit.", "Name an animal."];
    let sequential: Vec<String> = prompts
        .iter()
        .map(|p| model.chat(&user(p), &opts).unwrap().text)
        .collect();
    let concurrent: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let (model, opts) = (&model, &opts);
                s.spawn(move || model.chat(&user(p), opts).unwrap().text)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sequential, concurrent);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_before_generating() {
    let model = model();
    let long = "hello ".repeat(model.context_len());
    let err = model
        .chat(&user(&long), &GenOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err}");
    assert!(matches!(
        model.check_prompt(&user(&long)),
        Err(Error::InvalidRequest(_))
    ));
    assert!(model.check_prompt(&user("Hi")).unwrap() > 1);
}
