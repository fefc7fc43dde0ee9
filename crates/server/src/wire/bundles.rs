//! Bundles: list, detail, flow JSON, upload, delete, reload, (un)deprecate.

use axum::extract::Multipart;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::bundle::EntryInput;
use crate::error::ApiError;
use crate::extract::{QueryParams, missing_field, multipart_parts, parse_body, parse_query};

/// The query of `GET /bundles`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleListQuery {
    /// Every installed version, not only the latest of each bundle.
    #[param(required = false, default = false)]
    pub all_versions: bool,
    /// Also bundles whose every entrypoint is deprecated.
    #[param(required = false, default = false)]
    pub include_deprecated: bool,
}

impl BundleListQuery {
    /// Parses and validates the query (FastAPI's 422).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        parse_query(raw, |q| BundleListQuery {
            all_versions: q.bool("all_versions", false),
            include_deprecated: q.bool("include_deprecated", false),
        })
    }
}

/// The query of `GET /bundles/{bundle_id}` and `GET /bundles/{bundle_id}/flows/{flow_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleVersionQuery {
    /// The version; default: the one `bundle_id` names (`id@version`), else the latest.
    pub bundle_version: Option<String>,
}

impl BundleVersionQuery {
    /// Parses the query (nothing in it can be invalid).
    pub fn parse(raw: Option<&str>) -> Self {
        BundleVersionQuery {
            bundle_version: QueryParams::parse(raw).string("bundle_version"),
        }
    }
}

/// An entrypoint as the manifest declares it.
#[derive(Serialize, ToSchema)]
pub struct EntrypointInfo {
    pub flow_id: String,
    /// The manifest's name, else the flow id.
    pub name: String,
    pub description: String,
    /// The interfaces the entrypoint implements (`abstractcode.agent.v1`…).
    pub interfaces: Vec<String>,
}

/// An entrypoint of `BundleSummary`: what the manifest declares and whether it is deprecated.
#[derive(Serialize, ToSchema)]
pub struct EntrypointSummary {
    #[serde(flatten)]
    pub info: EntrypointInfo,
    /// Whether the entrypoint (or its whole bundle) is deprecated.
    pub deprecated: bool,
    /// ISO 8601, when deprecated.
    #[schema(value_type = Option<String>)]
    pub deprecated_at: Option<Value>,
    /// Why, when the deprecation says.
    #[schema(value_type = Option<String>)]
    pub deprecated_reason: Option<Value>,
}

/// One start input of an entrypoint: a non-execution output pin of its `on_flow_start` node.
#[derive(Serialize, ToSchema)]
pub struct EntrypointInput {
    /// The key in `input_data`.
    pub id: String,
    /// The pin's label, else its id.
    pub label: String,
    /// The pin's type (`unknown` when absent).
    #[serde(rename = "type")]
    pub ty: String,
    /// The pin's default value (present, possibly null, only when the flow gives one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

impl From<EntryInput> for EntrypointInput {
    fn from(i: EntryInput) -> Self {
        EntrypointInput {
            id: i.id,
            label: i.label,
            ty: i.ty,
            default: i.default,
        }
    }
}

/// An entrypoint of `BundleDetail`: its summary, workflow id, start inputs and node index.
#[derive(Serialize, ToSchema)]
pub struct EntrypointDetail {
    #[serde(flatten)]
    pub summary: EntrypointSummary,
    /// The id a run of this entrypoint has (`bundle@version:flow`).
    pub workflow_id: String,
    pub inputs: Vec<EntrypointInput>,
    /// `{node_id: {"type", "label", "headerColor"?}}` in node order.
    #[schema(value_type = Object)]
    pub node_index: Map<String, Value>,
}

/// The seed's `BundleSummary`.
#[derive(Serialize, ToSchema)]
pub struct BundleSummary {
    pub bundle_id: String,
    pub bundle_version: String,
    /// `bundle_id@bundle_version`.
    pub bundle_ref: String,
    pub created_at: String,
    pub default_entrypoint: Option<String>,
    pub entrypoints: Vec<EntrypointSummary>,
}

/// The seed's `BundleDetail`.
#[derive(Serialize, ToSchema)]
pub struct BundleDetail {
    pub bundle_id: String,
    pub bundle_version: String,
    /// `bundle_id@bundle_version`.
    pub bundle_ref: String,
    pub created_at: String,
    pub default_entrypoint: Option<String>,
    pub entrypoints: Vec<EntrypointDetail>,
    /// Every flow of the bundle, sorted.
    pub flows: Vec<String>,
    /// The manifest's free metadata.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// `GET /bundles`.
#[derive(Serialize, ToSchema)]
pub struct BundleList {
    pub items: Vec<BundleSummary>,
    /// The bundle a start that names none uses (the only one, or the configured one).
    pub default_bundle_id: Option<String>,
}

/// One flow of a bundle, as stored.
#[derive(Serialize, ToSchema)]
pub struct BundleFlow {
    pub bundle_id: String,
    pub bundle_version: String,
    pub bundle_ref: String,
    pub flow_id: String,
    pub workflow_id: String,
    /// The VisualFlow JSON.
    #[schema(value_type = Object)]
    pub flow: Value,
}

/// Where a flow found by workflow id outside bundles comes from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlowSource {
    /// Generated by the gateway (a schedule's wrapper flow).
    Dynamic,
    /// A loose VisualFlow file (VisualFlow workflow source).
    Visualflow,
}

/// A flow found by workflow id that is not a bundle's.
#[derive(Serialize, ToSchema)]
pub struct LoadedFlow {
    pub workflow_id: String,
    /// The VisualFlow JSON.
    #[schema(value_type = Object)]
    pub flow: Value,
    pub source: FlowSource,
}

/// `GET /workflows/{workflow_id}/flow`: a generated or loose flow, else a bundle's.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum WorkflowFlow {
    Loaded(LoadedFlow),
    Bundle(BundleFlow),
}

/// The multipart form of `POST /bundles/upload`.
#[derive(ToSchema)]
pub struct BundleUpload {
    /// The `.flow` bundle (a zip).
    #[schema(value_type = String, format = Binary)]
    pub file: Bytes,
    /// Replace an installed bundle of the same id and version (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`).
    #[schema(required = false, default = false)]
    pub overwrite: bool,
    /// Reload FLOWS_DIR after installing.
    #[schema(required = false, default = true)]
    pub reload: bool,
}

impl BundleUpload {
    /// Reads and validates the form (FastAPI's 422 for a missing file or a value that is not a boolean; a
    /// malformed body is a 400).
    pub async fn parse(mp: Multipart) -> Result<Self, ApiError> {
        let (mut file, mut overwrite, mut reload) = (None::<Bytes>, false, true);
        for part in multipart_parts(mp).await? {
            let text = || part.text();
            match part.name.as_str() {
                "file" => file = Some(part.data.clone()),
                "overwrite" => {
                    overwrite = form_bool(&text()).ok_or_else(|| bool_error("overwrite", text()))?
                }
                "reload" => {
                    reload = form_bool(&text()).ok_or_else(|| bool_error("reload", text()))?
                }
                _ => {}
            }
        }
        let Some(file) = file else {
            return Err(ApiError::validation(vec![missing_field("body", "file")]));
        };
        Ok(BundleUpload {
            file,
            overwrite,
            reload,
        })
    }
}

/// A form boolean as FastAPI reads one; `None` when it is none of the accepted spellings.
fn form_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn bool_error(field: &str, input: String) -> ApiError {
    ApiError::validation(vec![
        json!({"type": "bool_parsing", "loc": ["body", field], "msg": "Input should be a valid boolean, unable to interpret input", "input": input}),
    ])
}

/// `POST /bundles/upload`: the installed bundle.
#[derive(Serialize, ToSchema)]
pub struct BundleUploaded {
    /// Always true.
    pub ok: bool,
    pub bundle_id: String,
    pub bundle_version: String,
    pub bundle_ref: String,
    /// Hex sha256 of the uploaded bytes.
    pub sha256: String,
    pub default_entrypoint: Option<String>,
    pub entrypoints: Vec<EntrypointInfo>,
    /// Whether FLOWS_DIR was reloaded (the form's `reload`).
    pub gateway_reloaded: bool,
    /// Always null (a reload error is a load warning, see `/api/health`).
    pub gateway_reload_error: Option<String>,
    /// Present when the bundle is installed and served here but the other nodes of the cluster do not have it
    /// yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_sync_error: Option<String>,
}

/// The query of `DELETE /bundles/{bundle_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleDeleteQuery {
    /// Remove only this version (else the one `bundle_id` names, else every version).
    pub bundle_version: Option<String>,
    /// Reload FLOWS_DIR after removing.
    #[param(required = false, default = true)]
    pub reload: bool,
}

impl BundleDeleteQuery {
    /// Parses and validates the query (FastAPI's 422); a blank version is none.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        parse_query(raw, |q| BundleDeleteQuery {
            bundle_version: q
                .get("bundle_version")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            reload: q.bool("reload", true),
        })
    }
}

/// `DELETE /bundles/{bundle_id}`.
#[derive(Serialize, ToSchema)]
pub struct BundleDeleted {
    /// Always true.
    pub ok: bool,
    /// `id` or `id@version`: what was removed.
    pub bundle_ref: String,
    /// How many installed files or directories were removed.
    pub removed: u32,
    pub gateway_reloaded: bool,
    /// Always null.
    pub gateway_reload_error: Option<String>,
}

/// `POST /bundles/reload`.
#[derive(Serialize, ToSchema)]
pub struct BundlesReloaded {
    /// Always true.
    pub ok: bool,
    /// The bundles loaded now.
    pub bundle_ids: Vec<String>,
    pub count: usize,
}

/// The optional body of `POST /bundles/{bundle_id}/deprecate` and `/undeprecate` (an empty body: the whole
/// bundle).
#[derive(ToSchema)]
pub struct Deprecation {
    /// The entrypoint (`flow` or `bundle:flow`); blank or absent: the whole bundle (`*`).
    pub flow_id: Option<String>,
    /// Why (deprecate only; blank is none).
    pub reason: Option<String>,
}

impl Deprecation {
    /// Parses and validates the body (FastAPI's 422 for a wrong type); fields are trimmed, blanks are absent.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        if body.is_empty() {
            return Ok(Deprecation {
                flow_id: None,
                reason: None,
            });
        }
        parse_body(headers, body, |f| Deprecation {
            flow_id: f
                .opt_str("flow_id")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            reason: f
                .opt_str("reason")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }
}

/// `POST /bundles/{bundle_id}/deprecate`.
#[derive(Serialize, ToSchema)]
pub struct Deprecated {
    /// Always true.
    pub ok: bool,
    pub bundle_id: String,
    /// The entrypoint, or `*` for the whole bundle.
    pub flow_id: String,
    /// ISO 8601.
    pub deprecated_at: String,
    /// Present when the body gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /bundles/{bundle_id}/undeprecate`.
#[derive(Serialize, ToSchema)]
pub struct Undeprecated {
    /// Always true.
    pub ok: bool,
    pub bundle_id: String,
    /// The entrypoint, or `*` for the whole bundle.
    pub flow_id: String,
    /// Whether a deprecation was there to remove.
    pub removed: bool,
}
