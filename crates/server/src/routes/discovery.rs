//! `GET /discovery/*`: what thin clients ask to fill their pickers, answered from what this gateway really has:
//! the tool registry, the configured LLM providers (their model lists fetched live) and the speech engines.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, json_response};
use crate::extract::QueryParams;
use crate::plugins::bindings::tools::ToolInfo;
use crate::state::SharedState;

/// The LLM providers this gateway speaks to: name, display name, local, needs a key.
const PROVIDERS: &[(&str, &str, bool, bool)] = &[
    ("anthropic", "Anthropic", false, true),
    ("lmstudio", "LMStudio", true, false),
    ("ollama", "Ollama", true, false),
    ("openai", "OpenAI", false, true),
    ("openai-compatible", "OpenAI-Compatible", true, false),
    ("openrouter", "OpenRouter", false, true),
    ("vllm", "vLLM", true, false),
];

/// A provider that does not list its models within this long is reported with the error.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest provider name looked up (anything longer is no provider of ours).
const MAX_PROVIDER_NAME: usize = 64;

/// The seed's (AbstractCore's) answer for a model it knows nothing specific about; this gateway keeps no model
/// database, so every model gets it.
fn generic_capabilities() -> Value {
    json!({"max_output_tokens": 4096, "tool_support": "prompted", "structured_output": "none",
        "parallel_tools": false, "vision_support": false, "audio_support": false, "thinking_support": false,
        "thinking_budget": false, "video_support": false, "fim_support": false, "max_tokens": 16384,
        "max_tools": 0, "video_input_mode": "none", "architecture": "generic"})
}

/// Whether `program` is an executable file in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The speech engines this gateway can use now: the local programs found on `PATH`, and `openai` with a key.
fn voice_engines() -> Vec<&'static str> {
    let mut out = Vec::new();
    if on_path("espeak-ng") {
        out.push("espeak");
    }
    if on_path("pocketsphinx") {
        out.push("pocketsphinx");
    }
    if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        out.push("openai");
    }
    out
}

fn ok(v: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &v))
}

fn tool_item(t: &ToolInfo) -> Value {
    let schema: Value = serde_json::from_str(&t.parameters).unwrap_or(Value::Null);
    let mut item = json!({"name": t.name, "description": t.description,
        "parameters": schema.get("properties").cloned().unwrap_or_else(|| json!({}))});
    if let Some(req) = schema
        .get("required")
        .filter(|r| r.as_array().is_some_and(|a| !a.is_empty()))
    {
        item["required"] = req.clone();
    }
    item
}

fn tools(st: &SharedState) -> Vec<ToolInfo> {
    st.plugin_caps
        .tools
        .as_ref()
        .map(|t| t.list(None))
        .unwrap_or_default()
}

/// `GET /discovery/tools`: the tools a run may allow (built-in and operator tool plugins).
pub async fn tools_list(State(st): State<SharedState>) -> ApiResult {
    let items: Vec<Value> = tools(&st).iter().map(tool_item).collect();
    ok(json!({"items": items}))
}

/// `GET /discovery/capabilities`: the optional parts of the gateway and whether they are there.
pub async fn capabilities(State(st): State<SharedState>) -> ApiResult {
    let engines = tokio::task::spawn_blocking(voice_engines)
        .await
        .unwrap_or_default();
    let voice = if engines.is_empty() {
        json!({"installed": false, "error": "no speech engine found (espeak-ng, pocketsphinx, or OPENAI_API_KEY)"})
    } else {
        json!({"installed": true, "providers": engines})
    };
    let count = tools(&st).len();
    ok(json!({"capabilities": {
        "voice": voice,
        "tools": {"installed": st.plugin_caps.tools.is_some(), "count": count},
        "visualflow": {"installed": true, "enabled": st.cfg.workflow_source == "visualflow"},
        "vision_fallback": {"installed": false, "error": "not part of this gateway"},
        "media": {"installed": false, "error": "not part of this gateway"},
    }}))
}

/// The models `provider` lists, or why not.
async fn models_of(st: &SharedState, provider: &str) -> Result<Vec<String>, String> {
    let Some(llm) = st.plugin_caps.llm.clone() else {
        return Err("no LLM backend is configured".into());
    };
    match tokio::time::timeout(LIST_TIMEOUT, llm.list_models(Some(provider.to_string()))).await {
        Ok(Ok((_, mut models))) => {
            models.sort();
            models.dedup();
            Ok(models)
        }
        Ok(Err(e)) => Err(e.message),
        Err(_) => Err(format!(
            "{provider} did not list its models within {LIST_TIMEOUT:?}"
        )),
    }
}

/// `GET /discovery/providers?include_models=`: the providers, with the gateway's default route; with models,
/// only the providers that listed theirs.
pub async fn providers(State(st): State<SharedState>, RawQuery(q): RawQuery) -> ApiResult {
    let mut q = QueryParams::parse(q.as_deref());
    let include_models = q.bool("include_models", false);
    q.finish()?;
    let listed = if include_models {
        let all = PROVIDERS.iter().map(|(name, ..)| models_of(&st, name));
        futures::future::join_all(all).await
    } else {
        Vec::new()
    };
    let mut items = Vec::new();
    for (i, (name, display, local, key)) in PROVIDERS.iter().enumerate() {
        let mut item = json!({"name": name, "display_name": display, "type": "llm", "model_count": "unknown",
            "status": "available", "local_provider": local, "authentication_required": key, "models": []});
        match listed.get(i) {
            Some(Ok(models)) => {
                item["model_count"] = json!(models.len());
                item["models"] = json!(models);
            }
            Some(Err(_)) => continue,
            None => {}
        }
        items.push(item);
    }
    let (default_provider, default_model) = st
        .plugin_caps
        .llm
        .as_ref()
        .and_then(|l| l.default_route())
        .unwrap_or_else(|| ("lmstudio".into(), "qwen/qwen3-next-80b".into()));
    ok(
        json!({"items": items, "default_provider": default_provider, "default_model": default_model}),
    )
}

/// `GET /discovery/providers/{provider}/models`: the models one provider lists now (`error` when it cannot).
pub async fn provider_models(
    State(st): State<SharedState>,
    Path(provider): Path<String>,
) -> ApiResult {
    let prov = provider.trim().to_string();
    if prov.is_empty() {
        return Err(ApiError::bad_request("provider_name is required"));
    }
    let known = prov.len() <= MAX_PROVIDER_NAME
        && PROVIDERS
            .iter()
            .any(|(n, ..)| n.eq_ignore_ascii_case(&prov));
    if !known {
        return ok(
            json!({"provider": prov.chars().take(MAX_PROVIDER_NAME).collect::<String>(), "models": [],
            "error": "unknown provider"}),
        );
    }
    match models_of(&st, &prov.to_ascii_lowercase()).await {
        Ok(models) => ok(json!({"provider": prov, "models": models})),
        Err(e) => ok(json!({"provider": prov, "models": [], "error": e})),
    }
}

/// `GET /discovery/models/capabilities?model_name=`: what a client may assume of a model.
pub async fn model_capabilities(RawQuery(q): RawQuery) -> ApiResult {
    let mut q = QueryParams::parse(q.as_deref());
    let name = q.required("model_name");
    q.finish()?;
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("model_name is required"));
    }
    ok(json!({"model": name, "capabilities": generic_capabilities()}))
}
