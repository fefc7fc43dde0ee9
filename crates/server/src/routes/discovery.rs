//! `GET /discovery/*`: what thin clients ask to fill their pickers, answered from what this gateway really has:
//! the tool registry, the configured LLM providers (their model lists fetched live) and the speech engines.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::plugins::bindings::tools::ToolInfo;
use crate::state::SharedState;
use crate::wire::discovery::{
    Capabilities, CapabilityList, Feature, ModelCapabilities, ModelCapabilitiesAnswer,
    ModelCapabilitiesQuery, ModelCount, Provider, ProviderList, ProviderModels, ProvidersQuery,
    Tool, ToolList, ToolsFeature, VisualflowFeature,
};

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
fn generic_capabilities() -> ModelCapabilities {
    ModelCapabilities {
        max_output_tokens: 4096,
        tool_support: "prompted",
        structured_output: "none",
        parallel_tools: false,
        vision_support: false,
        audio_support: false,
        thinking_support: false,
        thinking_budget: false,
        video_support: false,
        fim_support: false,
        max_tokens: 16384,
        max_tools: 0,
        video_input_mode: "none",
        architecture: "generic",
    }
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

fn tool_item(t: &ToolInfo) -> Tool {
    let schema: Value = serde_json::from_str(&t.parameters).unwrap_or(Value::Null);
    Tool {
        name: t.name.clone(),
        description: t.description.clone(),
        parameters: schema
            .get("properties")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        required: schema
            .get("required")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .cloned(),
    }
}

fn tools(st: &SharedState) -> Vec<ToolInfo> {
    st.plugin_caps
        .tools
        .as_ref()
        .map(|t| t.list(None))
        .unwrap_or_default()
}

/// Tools a run may allow.
///
/// The built-in tools and those of the operator's tool plugins, with the `properties` and `required` of each
/// one's argument schema.
#[utoipa::path(get, path = "/api/gateway/discovery/tools", tag = "discovery",
    responses((status = 200, description = "The tools", body = ToolList)))]
pub async fn tools_list(State(st): State<SharedState>) -> Json<ToolList> {
    Json(ToolList {
        items: tools(&st).iter().map(tool_item).collect(),
    })
}

/// Optional parts of the gateway and whether they are installed.
#[utoipa::path(get, path = "/api/gateway/discovery/capabilities", tag = "discovery",
    responses((status = 200, description = "The optional parts", body = Capabilities)))]
pub async fn capabilities(State(st): State<SharedState>) -> Json<Capabilities> {
    let engines = tokio::task::spawn_blocking(voice_engines)
        .await
        .unwrap_or_default();
    let voice = if engines.is_empty() {
        Feature {
            installed: false,
            providers: None,
            error: Some("no speech engine found (espeak-ng, pocketsphinx, or OPENAI_API_KEY)"),
        }
    } else {
        Feature {
            installed: true,
            providers: Some(engines),
            error: None,
        }
    };
    let absent = || Feature {
        installed: false,
        providers: None,
        error: Some("not part of this gateway"),
    };
    Json(Capabilities {
        capabilities: CapabilityList {
            voice,
            tools: ToolsFeature {
                installed: st.plugin_caps.tools.is_some(),
                count: tools(&st).len(),
            },
            visualflow: VisualflowFeature {
                installed: true,
                enabled: st.cfg.workflow_source == "visualflow",
            },
            vision_fallback: absent(),
            media: absent(),
        },
    })
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

/// LLM providers (include_models: their live model lists) and the default route.
///
/// With `include_models`, only the providers that listed their models are answered.
#[utoipa::path(get, path = "/api/gateway/discovery/providers", tag = "discovery",
    params(ProvidersQuery),
    responses((status = 200, description = "The providers", body = ProviderList)))]
pub async fn providers(
    State(st): State<SharedState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ProviderList>> {
    let include_models = ProvidersQuery::parse(q.as_deref())?.include_models;
    let listed = if include_models {
        let all = PROVIDERS.iter().map(|(name, ..)| models_of(&st, name));
        futures::future::join_all(all).await
    } else {
        Vec::new()
    };
    let mut items = Vec::new();
    for (i, (name, display, local, key)) in PROVIDERS.iter().enumerate() {
        let (model_count, models) = match listed.get(i) {
            Some(Ok(models)) => (ModelCount::Listed(models.len()), models.clone()),
            Some(Err(_)) => continue,
            None => (ModelCount::Unknown("unknown"), Vec::new()),
        };
        items.push(Provider {
            name,
            display_name: display,
            kind: "llm",
            model_count,
            status: "available",
            local_provider: *local,
            authentication_required: *key,
            models,
        });
    }
    let (default_provider, default_model) = st
        .plugin_caps
        .llm
        .as_ref()
        .and_then(|l| l.default_route())
        .unwrap_or_else(|| ("lmstudio".into(), "qwen/qwen3-next-80b".into()));
    Ok(Json(ProviderList {
        items,
        default_provider,
        default_model,
    }))
}

/// The models one provider lists now.
///
/// Answered with `error` (and no models) when the provider is unknown or cannot list them now.
#[utoipa::path(get, path = "/api/gateway/discovery/providers/{provider}/models", tag = "discovery",
    params(("provider" = String, Path)),
    responses((status = 200, description = "The provider's models, or why not", body = ProviderModels),
              (status = 400, description = "Blank provider name", body = ErrorBody)))]
pub async fn provider_models(
    State(st): State<SharedState>,
    Path(provider): Path<String>,
) -> ApiResult<Json<ProviderModels>> {
    let prov = provider.trim().to_string();
    if prov.is_empty() {
        return Err(ApiError::bad_request("provider_name is required"));
    }
    let known = prov.len() <= MAX_PROVIDER_NAME
        && PROVIDERS
            .iter()
            .any(|(n, ..)| n.eq_ignore_ascii_case(&prov));
    if !known {
        return Ok(Json(ProviderModels {
            provider: prov.chars().take(MAX_PROVIDER_NAME).collect(),
            models: Vec::new(),
            error: Some("unknown provider".into()),
        }));
    }
    let answer = match models_of(&st, &prov.to_ascii_lowercase()).await {
        Ok(models) => ProviderModels {
            provider: prov,
            models,
            error: None,
        },
        Err(e) => ProviderModels {
            provider: prov,
            models: Vec::new(),
            error: Some(e),
        },
    };
    Ok(Json(answer))
}

/// What a client may assume of a model (model_name).
///
/// This gateway keeps no model database: every model gets AbstractCore's generic capabilities.
#[utoipa::path(get, path = "/api/gateway/discovery/models/capabilities", tag = "discovery",
    params(ModelCapabilitiesQuery),
    responses((status = 200, description = "The model's capabilities", body = ModelCapabilitiesAnswer),
              (status = 400, description = "Blank model name", body = ErrorBody)))]
pub async fn model_capabilities(RawQuery(q): RawQuery) -> ApiResult<Json<ModelCapabilitiesAnswer>> {
    let model = ModelCapabilitiesQuery::parse(q.as_deref())?.model_name;
    Ok(Json(ModelCapabilitiesAnswer {
        model,
        capabilities: generic_capabilities(),
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(tools_list))
        .documented(routes!(capabilities))
        .documented(routes!(providers))
        .documented(routes!(provider_models))
        .documented(routes!(model_capabilities))
}
