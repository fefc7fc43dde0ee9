//! Configuration rules (§6.3–6.4) and the registration of in-process backends.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::json;

use super::support::{ask, config};
use crate::llm::{
    CancelToken, ChatBackend, ChatRequest, ChatResponse, ErrorCode, LlmConfig, LlmError, Providers,
    Usage, Wire,
};

#[test]
fn default_pair_prefers_gateway_names_and_lower_cases_the_provider() {
    let cfg = config(&[
        ("ABSTRACTGATEWAY_PROVIDER", " Ollama "),
        ("ABSTRACTFLOW_PROVIDER", "lmstudio"),
        ("ABSTRACTFLOW_MODEL", "qwen/qwen3-next-80b"),
    ]);
    assert_eq!(
        cfg.default_route(),
        Some(("ollama".to_string(), "qwen/qwen3-next-80b".to_string()))
    );
    let half = config(&[("ABSTRACTFLOW_PROVIDER", "LMSTUDIO")]);
    assert_eq!(half.default_provider(), Some("lmstudio"));
    assert_eq!(half.default_route(), None);
    let mut filled = half.clone();
    filled.set_default_route(None, Some("fake-model"));
    assert_eq!(
        filled.default_route(),
        Some(("lmstudio".to_string(), "fake-model".to_string()))
    );
}

#[test]
fn endpoints_follow_the_provider_variables() {
    let cfg = config(&[]);
    let base = |p: &str| cfg.endpoint(p).map(|e| e.base_url);
    assert_eq!(
        base("lmstudio").ok().as_deref(),
        Some("http://localhost:1234/v1")
    );
    assert_eq!(
        base("ollama").ok().as_deref(),
        Some("http://localhost:11434/v1")
    );
    assert_eq!(
        base("vllm").ok().as_deref(),
        Some("http://localhost:8000/v1")
    );
    assert_eq!(
        base("openai-compatible").ok().as_deref(),
        Some("http://localhost:1234/v1")
    );
    assert_eq!(
        cfg.endpoint("anthropic").map_err(|e| e.code),
        Err(ErrorCode::AccessDenied)
    );

    let cfg = config(&[
        ("LMSTUDIO_BASE_URL", "http://10.0.0.2:1234/v1/"),
        ("OLLAMA_BASE_URL", "http://gpu:11434"),
        ("OLLAMA_HOST", "ignored:1"),
        ("OPENAI_BASE_URL", "http://proxy:4000/v1"),
        ("OPENAI_API_KEY", "sk-openai-abcdef"),
        ("ANTHROPIC_API_KEY", "sk-ant-abcdef"),
        ("OPENROUTER_API_KEY", "sk-or-abcdef"),
    ]);
    let ep = |p: &str| cfg.endpoint(p).expect("configured");
    assert_eq!(ep("lmstudio").base_url, "http://10.0.0.2:1234/v1");
    assert_eq!(ep("ollama").base_url, "http://gpu:11434/v1");
    assert_eq!(ep("openai").base_url, "http://proxy:4000/v1");
    assert!(ep("openai").api_key.is_some());
    // openai-compatible shares the base URL but never receives OpenAI's key.
    assert_eq!(ep("openai-compatible").base_url, "http://proxy:4000/v1");
    assert!(ep("openai-compatible").api_key.is_none());
    assert_eq!(ep("anthropic").base_url, "https://api.anthropic.com");
    assert_eq!(ep("anthropic").wire, Wire::Anthropic);
    assert_eq!(ep("openrouter").base_url, "https://openrouter.ai/api/v1");
    assert_eq!(ep("OpenRouter").provider, "openrouter");

    let bad = config(&[("VLLM_BASE_URL", "gpu:8000")]);
    let err = bad.endpoint("vllm").expect_err("no scheme");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("VLLM_BASE_URL"), "{}", err.message);
}

#[test]
fn the_secrets_file_fills_gaps_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("secrets.json");
    std::fs::write(
        &path,
        json!({
            "OPENAI_API_KEY": "sk-from-file-000",
            "ANTHROPIC_API_KEY": "sk-ant-from-file-000",
            "LMSTUDIO_BASE_URL": "http://from-file:1/v1",
            "VLLM_BASE_URL": 8000
        })
        .to_string(),
    )
    .expect("write");
    let path = path.to_string_lossy().to_string();
    let cfg = config(&[
        ("ABSTRACTGATEWAY_SECRETS_FILE", &path),
        ("LMSTUDIO_BASE_URL", "http://from-env:2/v1"),
        ("OPENAI_API_KEY", "sk-from-env-111"),
    ]);
    assert_eq!(
        cfg.endpoint("lmstudio").expect("lmstudio").base_url,
        "http://from-env:2/v1"
    );
    assert!(
        cfg.endpoint("anthropic")
            .expect("key from the file")
            .api_key
            .is_some()
    );
    let openai = cfg.endpoint("openai").expect("openai");
    assert_eq!(
        openai.api_key.as_ref().map(|k| k.expose()),
        Some("sk-from-env-111")
    );
    assert_eq!(cfg.warnings().len(), 1, "{:?}", cfg.warnings());
    assert!(cfg.warnings()[0].contains("VLLM_BASE_URL"));

    // An unreadable file is a warning, repeated in the call-time error of a provider that needed it.
    let missing = config(&[("ABSTRACTGATEWAY_SECRETS_FILE", "/nonexistent/secrets.json")]);
    assert_eq!(missing.warnings().len(), 1);
    let err = missing.endpoint("openai").expect_err("no key");
    assert!(
        err.message
            .contains("cannot read ABSTRACTGATEWAY_SECRETS_FILE"),
        "{}",
        err.message
    );

    let inline = LlmConfig::from_vars_and_secrets(
        |_| None,
        json!({"OPENROUTER_API_KEY": "sk-or-inline-0"})
            .as_object()
            .expect("object"),
    );
    assert!(inline.endpoint("openrouter").is_ok());
}

#[test]
fn timeout_and_attempts_come_from_the_environment() {
    let cfg = config(&[
        ("ABSTRACTGATEWAY_LLM_TIMEOUT_S", "12.5"),
        ("ABSTRACTGATEWAY_LLM_MAX_ATTEMPTS", "5"),
    ]);
    assert_eq!(cfg.timeout, std::time::Duration::from_millis(12_500));
    assert_eq!(cfg.retry.max_attempts, 5);
    let bad = config(&[
        ("ABSTRACTGATEWAY_LLM_TIMEOUT_S", "soon"),
        ("ABSTRACTGATEWAY_LLM_MAX_ATTEMPTS", "0"),
    ]);
    assert_eq!(bad.timeout, crate::llm::DEFAULT_TIMEOUT);
    assert_eq!(bad.warnings().len(), 2);
}

/// An in-process backend, standing in for the embedded model the lead adds later.
struct Canned;

impl ChatBackend for Canned {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
        _cancel: CancelToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            Ok(ChatResponse {
                content: format!(
                    "local:{}",
                    req.messages.last().map_or("", |m| m.content.as_str())
                ),
                reasoning: None,
                tool_calls: Vec::new(),
                finish_reason: "stop".into(),
                usage: Usage::default(),
                provider: req.provider.clone().unwrap_or_default(),
                model: req.model.clone().unwrap_or_else(|| "builtin".into()),
            })
        })
    }

    fn list_models(&self, _cancel: CancelToken) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async { Ok(vec!["builtin".to_string()]) })
    }
}

#[tokio::test]
async fn an_embedded_backend_is_the_default_only_when_nothing_is_configured() {
    let bare = Providers::new(config(&[]));
    bare.register("Embedded", Arc::new(Canned));
    let resp = bare
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect("embedded answers");
    assert_eq!(
        (
            resp.content.as_str(),
            resp.provider.as_str(),
            resp.model.as_str()
        ),
        ("local:hi", "embedded", "builtin")
    );
    assert_eq!(bare.list_models(None).await.expect("models"), ["builtin"]);

    let configured = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "openai"),
        ("ABSTRACTGATEWAY_MODEL", "gpt"),
    ]));
    configured.register("embedded", Arc::new(Canned));
    let err = configured
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect_err("the configured default (openai, no key) is used");
    assert_eq!(err.code, ErrorCode::AccessDenied);
    let resp = configured
        .complete(&ask(Some("embedded"), None, "hi"), CancelToken::never())
        .await
        .expect("explicit embedded");
    assert_eq!(
        resp.model, "gpt",
        "the default model travels with an explicit provider"
    );
}

/// The host import binding runs calls on a multi-threaded runtime: the futures must be `Send`.
#[test]
fn provider_futures_are_send_and_providers_are_shareable() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_shareable<T: Send + Sync>() {}
    assert_shareable::<Providers>();
    let providers = Providers::new(config(&[]));
    let req = ask(None, None, "hi");
    assert_send(&providers.complete(&req, CancelToken::never()));
    assert_send(&providers.list_models(None));
}
