//! Prefill and decode speed of the local model on this machine (`cargo bench -p abstractgateway-llm-local`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use abstractgateway_llm_local::{
    GenOptions, LocalModel, MODEL_ENV, THREADS_ENV, prefer_single_thread,
};

/// Runs per measurement; the median is reported.
const RUNS: usize = 3;
/// Tokens decoded per run.
const DECODE_TOKENS: usize = 64;

fn model_path() -> PathBuf {
    if let Some(path) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let script = abstractgateway_testkit::repo_root().join("scripts/fetch-model.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("running scripts/fetch-model.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a path")
            .trim(),
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; a plain name filter that is not ours skips the run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"tokens".contains(a.as_str()))
    {
        return;
    }
    // SAFETY: single-threaded so far.
    unsafe { prefer_single_thread() };
    println!(
        "{THREADS_ENV}={}",
        std::env::var(THREADS_ENV).unwrap_or_else(|_| "(from RAYON_NUM_THREADS)".into())
    );
    let started = Instant::now();
    let model = LocalModel::load(model_path()).expect("loading the model");
    println!(
        "load: {:.2} s ({:?})",
        started.elapsed().as_secs_f64(),
        model.weights_path()
    );

    let long_prompt = "Summarize the following notes in one sentence. ".to_string()
        + &"The workflow host stores every run step in a durable ledger and replays it after a restart. ".repeat(12);
    let story = vec![(
        "user".to_string(),
        "Write a long story about a dragon who learns to cook.".to_string(),
    )];
    let long = vec![("user".to_string(), long_prompt)];
    let greedy = GenOptions {
        max_tokens: DECODE_TOKENS,
        ..GenOptions::default()
    };
    // Warm-up: first touches of the weights and allocator.
    model
        .chat(
            &story,
            &GenOptions {
                max_tokens: 4,
                ..GenOptions::default()
            },
        )
        .expect("warm-up");

    let mut prefill = Vec::new();
    let mut prefill_tokens = 0;
    for _ in 0..RUNS {
        let g = model
            .chat(
                &long,
                &GenOptions {
                    max_tokens: 1,
                    ..GenOptions::default()
                },
            )
            .expect("prefill run");
        prefill_tokens = g.prompt_tokens;
        prefill.push(g.prompt_tokens as f64 / g.timings.prefill.as_secs_f64());
    }
    let mut decode = Vec::new();
    let mut decoded = 0;
    for _ in 0..RUNS {
        let g = model.chat(&story, &greedy).expect("decode run");
        decoded = g.timings.decode_steps;
        decode.push(g.timings.decode_tokens_per_sec());
    }
    println!(
        "prefill: {:.1} tok/s (prompt of {prefill_tokens} tokens, median of {RUNS})",
        median(prefill)
    );
    println!(
        "decode:  {:.1} tok/s ({decoded} steps greedy, median of {RUNS})",
        median(decode)
    );
}
