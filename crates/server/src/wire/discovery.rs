//! Discovery: the tools, optional parts, LLM providers and model capabilities thin clients fill their pickers from.

use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::parse_query;

/// `GET /discovery/tools`.
#[derive(Serialize, ToSchema)]
pub struct ToolList {
    pub items: Vec<Tool>,
}

/// One tool a run may allow.
#[derive(Serialize, ToSchema)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// The `properties` of the tool's argument schema (`{}` when it has none).
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// The required arguments; present only when there are some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<Value>>,
}

/// `GET /discovery/capabilities`.
#[derive(Serialize, ToSchema)]
pub struct Capabilities {
    pub capabilities: CapabilityList,
}

/// The optional parts of the gateway.
#[derive(Serialize, ToSchema)]
pub struct CapabilityList {
    /// Speech engines (`espeak`, `pocketsphinx`, `openai`).
    pub voice: Feature,
    pub tools: ToolsFeature,
    pub visualflow: VisualflowFeature,
    /// Never installed here.
    pub vision_fallback: Feature,
    /// Never installed here.
    pub media: Feature,
}

/// An optional part: installed or not, and why not.
#[derive(Serialize, ToSchema)]
pub struct Feature {
    pub installed: bool,
    /// The engines found, when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<&'static str>>,
    /// Why it is not installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The tool registry.
#[derive(Serialize, ToSchema)]
pub struct ToolsFeature {
    pub installed: bool,
    /// Tools listed.
    pub count: usize,
}

/// VisualFlow workflows (always installed; enabled when they are the workflow source).
#[derive(Serialize, ToSchema)]
pub struct VisualflowFeature {
    pub installed: bool,
    pub enabled: bool,
}

/// The query of `GET /discovery/providers`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProvidersQuery {
    /// List each provider's models live (and leave out the providers that cannot).
    #[param(default = false, required = false)]
    pub include_models: bool,
}

impl ProvidersQuery {
    /// Parses and validates the query (FastAPI's 422).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        parse_query(raw, |q| ProvidersQuery {
            include_models: q.bool("include_models", false),
        })
    }
}

/// `GET /discovery/providers`: the providers and the gateway's default route.
#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    pub items: Vec<Provider>,
    pub default_provider: String,
    pub default_model: String,
}

/// One LLM provider.
#[derive(Serialize, ToSchema)]
pub struct Provider {
    pub name: &'static str,
    pub display_name: &'static str,
    /// Always `llm`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub model_count: ModelCount,
    /// Always `available`.
    pub status: &'static str,
    pub local_provider: bool,
    pub authentication_required: bool,
    /// Empty unless the models were asked for.
    pub models: Vec<String>,
}

/// How many models a provider lists.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ModelCount {
    /// The number listed (`include_models`).
    Listed(usize),
    /// `unknown`: the models were not asked for.
    Unknown(&'static str),
}

/// `GET /discovery/providers/{provider}/models`.
#[derive(Serialize, ToSchema)]
pub struct ProviderModels {
    pub provider: String,
    /// Sorted, without duplicates; empty on error.
    pub models: Vec<String>,
    /// Why the provider did not list its models (`unknown provider`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The query of `GET /discovery/models/capabilities`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelCapabilitiesQuery {
    /// The model asked about.
    pub model_name: String,
}

impl ModelCapabilitiesQuery {
    /// Parses and validates the query (FastAPI's 422 when absent; 400 when blank, as the seed).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let name = parse_query(raw, |q| q.required("model_name"))?;
        let model_name = name.trim().to_string();
        if model_name.is_empty() {
            return Err(ApiError::bad_request("model_name is required"));
        }
        Ok(ModelCapabilitiesQuery { model_name })
    }
}

/// `GET /discovery/models/capabilities`.
#[derive(Serialize, ToSchema)]
pub struct ModelCapabilitiesAnswer {
    pub model: String,
    pub capabilities: ModelCapabilities,
}

/// What a client may assume of a model (AbstractCore's field names).
#[derive(Serialize, ToSchema)]
pub struct ModelCapabilities {
    pub max_output_tokens: u32,
    /// `native`, `prompted` or `none`.
    pub tool_support: &'static str,
    /// `native`, `prompted` or `none`.
    pub structured_output: &'static str,
    pub parallel_tools: bool,
    pub vision_support: bool,
    pub audio_support: bool,
    pub thinking_support: bool,
    pub thinking_budget: bool,
    pub video_support: bool,
    pub fim_support: bool,
    pub max_tokens: u32,
    pub max_tools: u32,
    pub video_input_mode: &'static str,
    pub architecture: &'static str,
}
