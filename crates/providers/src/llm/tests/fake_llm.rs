//! The OpenAI-compatible path against the shared fake LLM: plain, structured, tools on the wire,
//! model listing, and how the seed's `provider/model` pairs route.

use serde_json::{Value, json};

use super::support::{FakeLlm, ask, config};
use crate::llm::{CancelToken, ChatMessage, ChatRequest, Providers};

#[tokio::test]
async fn plain_completion_routes_to_the_default_pair() {
    let fake = FakeLlm::start();
    let providers = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "LMStudio"),
        ("ABSTRACTGATEWAY_MODEL", "fake-model"),
        ("LMSTUDIO_BASE_URL", &fake.base),
    ]));
    assert_eq!(
        providers.default_route(),
        Some(("lmstudio".to_string(), "fake-model".to_string()))
    );
    let mut req = ask(None, None, "Say hi");
    req.messages
        .insert(0, ChatMessage::new("system", "You are terse."));
    req.temperature = Some(0.7);
    req.max_tokens = Some(4096);
    req.seed = Some(42);
    req.options =
        Some(json!({"top_p": 0.9, "base_url": "http://evil.invalid/v1", "timeout_s": 30}));
    let resp = providers
        .complete(&req, CancelToken::never())
        .await
        .expect("completion");
    assert_eq!(resp.content, "echo:Say hi");
    assert_eq!(resp.finish_reason, "stop");
    assert_eq!(resp.provider, "lmstudio");
    assert_eq!(resp.model, "fake-model");
    assert_eq!(
        (
            resp.usage.input_tokens,
            resp.usage.output_tokens,
            resp.usage.total_tokens
        ),
        (1, 1, 2)
    );
    assert!(resp.tool_calls.is_empty());

    let bodies = fake.posted_bodies();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["stream"], false);
    assert_eq!(body["temperature"], 0.7);
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["seed"], 42);
    assert_eq!(body["top_p"], 0.9);
    // Host-owned options never reach the provider.
    assert!(body.get("base_url").is_none() && body.get("timeout_s").is_none());
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi"}])
    );
}

#[tokio::test]
async fn seed_pairs_route_by_provider_and_model_independently() {
    let fake = FakeLlm::start();
    let host_port = fake
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    let providers = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "fake-model"),
        ("LMSTUDIO_BASE_URL", &fake.base),
        ("OPENAI_BASE_URL", &fake.base),
        ("OPENAI_API_KEY", "sk-fake-key-value"),
        ("VLLM_BASE_URL", &fake.base),
        // Ollama's variable names the server root, often without a scheme; `/v1` is added.
        ("OLLAMA_HOST", host_port),
    ]));
    let cases = [
        // (request provider, request model, routed provider, routed model)
        (None, None, "lmstudio", "fake-model"),
        (
            None,
            Some("qwen/qwen3-next-80b"),
            "lmstudio",
            "qwen/qwen3-next-80b",
        ),
        (Some("OpenAI"), None, "openai", "fake-model"),
        (Some("openai"), Some("gpt-5-mini"), "openai", "gpt-5-mini"),
        (
            Some("ollama"),
            Some("gemma-3-1b-it"),
            "ollama",
            "gemma-3-1b-it",
        ),
        (Some("vllm"), None, "vllm", "fake-model"),
        (
            Some("openai_compatible"),
            Some("m2"),
            "openai-compatible",
            "m2",
        ),
    ];
    for (i, (p, m, want_p, want_m)) in cases.iter().enumerate() {
        let resp = providers
            .complete(&ask(*p, *m, &format!("case {i}")), CancelToken::never())
            .await
            .unwrap_or_else(|e| panic!("case {i} ({p:?}, {m:?}): {e}"));
        assert_eq!(
            (resp.provider.as_str(), resp.model.as_str()),
            (*want_p, *want_m)
        );
        assert_eq!(resp.content, format!("echo:case {i}"));
    }
    let sent: Vec<String> = fake
        .posted_bodies()
        .iter()
        .map(|b| b["model"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        sent,
        [
            "fake-model",
            "qwen/qwen3-next-80b",
            "fake-model",
            "gpt-5-mini",
            "gemma-3-1b-it",
            "fake-model",
            "m2"
        ]
    );
}

#[tokio::test]
async fn structured_output_is_sent_natively_and_parsed() {
    let fake = FakeLlm::start();
    let providers = Providers::new(config(&[("LMSTUDIO_BASE_URL", &fake.base)]));
    let schema = json!({
        "title": "Verdict result",
        "type": "object",
        "properties": {"verdict": {"enum": ["yes", "no"]}, "score": {"type": "integer"}, "note": {"type": "string"}},
        "required": ["verdict", "score"]
    });
    let mut req = ask(Some("lmstudio"), Some("fake-model"), "judge this");
    req.response_schema = Some(schema.clone());
    let resp = providers
        .complete(&req, CancelToken::never())
        .await
        .expect("structured completion");
    let data: Value = serde_json::from_str(&resp.content).expect("content is JSON");
    assert_eq!(data, json!({"score": 0, "verdict": "yes"}));

    // The OpenAI wrapper form is unwrapped, and the name option wins over the title.
    let mut wrapped = ask(Some("lmstudio"), Some("fake-model"), "again");
    wrapped.response_schema =
        Some(json!({"type": "json_schema", "json_schema": {"name": "w", "schema": schema}}));
    wrapped.options = Some(json!({"response_schema_name": "Named.Out", "strict_schema": true}));
    let resp = providers
        .complete(&wrapped, CancelToken::never())
        .await
        .expect("wrapped structured completion");
    assert_eq!(resp.content, r#"{"score":0,"verdict":"yes"}"#);

    let bodies = fake.posted_bodies();
    assert_eq!(bodies[0]["response_format"]["type"], "json_schema");
    assert_eq!(
        bodies[0]["response_format"]["json_schema"]["name"],
        "Verdict_result"
    );
    assert_eq!(
        bodies[0]["response_format"]["json_schema"]["schema"],
        schema
    );
    assert_eq!(bodies[0]["response_format"]["json_schema"]["strict"], false);
    assert_eq!(
        bodies[1]["response_format"]["json_schema"]["name"],
        "Named_Out"
    );
    assert_eq!(bodies[1]["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        bodies[1]["response_format"]["json_schema"]["schema"],
        schema
    );
}

#[tokio::test]
async fn tools_and_tool_turns_use_openai_shapes_on_the_wire() {
    let fake = FakeLlm::start();
    let providers = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "fake-model"),
        ("LMSTUDIO_BASE_URL", &fake.base),
    ]));
    let list_files =
        json!({"type": "object", "properties": {"directory_path": {"type": "string"}}});
    let req = ChatRequest {
        messages: vec![
            ChatMessage::new("user", "list"),
            ChatMessage {
                tool_calls: Some(
                    json!([{"call_id": "call_fake_1", "name": "list_files", "arguments": {"directory_path": "."}}]),
                ),
                ..ChatMessage::new("assistant", "")
            },
            ChatMessage {
                tool_call_id: Some("call_fake_1".into()),
                ..ChatMessage::new("tool", "[list_files]: a.txt")
            },
            ChatMessage::new("user", "[loop] iteration 2 of 20."),
        ],
        tools: Some(
            json!([{"name": "list_files", "description": "List files", "parameters": list_files}]),
        ),
        ..ChatRequest::default()
    };
    let resp = providers
        .complete(&req, CancelToken::never())
        .await
        .expect("completion");
    assert_eq!(resp.content, "echo:[loop] iteration 2 of 20.");
    let body = &fake.posted_bodies()[0];
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "list_files", "description": "List files", "parameters": list_files}}])
    );
    let assistant = &body["messages"][1];
    assert_eq!(assistant["tool_calls"][0]["id"], "call_fake_1");
    assert_eq!(assistant["tool_calls"][0]["type"], "function");
    assert_eq!(assistant["tool_calls"][0]["function"]["name"], "list_files");
    let args = assistant["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .expect("arguments travel as a JSON string");
    assert_eq!(
        serde_json::from_str::<Value>(args).ok(),
        Some(json!({"directory_path": "."}))
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "tool", "content": "[list_files]: a.txt", "tool_call_id": "call_fake_1"})
    );

    // An empty tool list means no tools at all.
    let mut no_tools = ask(None, None, "x");
    no_tools.tools = Some(json!([]));
    providers
        .complete(&no_tools, CancelToken::never())
        .await
        .expect("completion");
    assert!(fake.posted_bodies()[1].get("tools").is_none());
}

#[tokio::test]
async fn model_listing_reads_v1_models() {
    let fake = FakeLlm::start();
    let providers = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("LMSTUDIO_BASE_URL", &fake.base),
    ]));
    let models = providers.list_models(None).await.expect("models");
    assert_eq!(models.first().map(String::as_str), Some("fake-model"));
    assert!(models.iter().any(|m| m == "qwen/qwen3-next-80b"));
    let explicit = providers
        .list_models(Some("LMSTUDIO"))
        .await
        .expect("models");
    assert_eq!(explicit, models);
}
