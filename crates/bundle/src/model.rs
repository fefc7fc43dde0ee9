//! A loaded bundle: manifest, digest, raw and namespaced flows, and the views the HTTP API needs.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::error::BundleError;
use super::install::install_file_name;
use super::manifest::{Manifest, type_name};
use super::namespace::{
    id_map, namespace_flow, namespaced_id, node_id, node_type, normalize_node_type,
};
use super::plugin::PluginDecl;

/// Where a bundle was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// A `.flow` zip file.
    File(PathBuf),
    /// An unpacked bundle directory.
    Dir(PathBuf),
    /// Bytes received over the network, not (yet) on disk.
    Upload,
}

impl BundleSource {
    /// The path on disk, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            BundleSource::File(p) | BundleSource::Dir(p) => Some(p),
            BundleSource::Upload => None,
        }
    }
}

impl fmt::Display for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleSource::File(p) | BundleSource::Dir(p) => write!(f, "{}", p.display()),
            BundleSource::Upload => f.write_str("upload"),
        }
    }
}

/// One start input of an entrypoint (`BundleDetail.entrypoints[].inputs[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryInput {
    /// Pin id (the key in `input_data`).
    pub id: String,
    /// Pin label, defaulting to the id.
    pub label: String,
    /// Pin type (`unknown` when absent).
    #[serde(rename = "type")]
    pub ty: String,
    /// The `pinDefaults` value; `Some(Null)` is an explicit `null` default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// A validated bundle with every flow parsed and namespaced.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The validated manifest.
    pub manifest: Manifest,
    /// Hex sha256: of the `.flow` bytes for zips and uploads, of the directory encoding for directories.
    pub sha256: String,
    /// Where the bundle came from.
    pub source: BundleSource,
    /// `(flow_id, namespaced VisualFlow)` in manifest order.
    pub flows: Vec<(String, Value)>,
    /// `(flow_id, file bytes as stored)` in manifest order; the HTTP API returns flows as stored.
    pub raw_flows: Vec<(String, Vec<u8>)>,
    /// Each `manifest.plugins` declaration with its file's bytes, in manifest order. The digest is
    /// not checked here: the component host verifies it so every refusal reads the same.
    pub plugins: Vec<(PluginDecl, Vec<u8>)>,
}

impl Bundle {
    /// Builds a bundle from a validated manifest and the bytes of each `manifest.flows` file
    /// (`(flow_id, relpath, bytes)` in manifest order): parses and namespaces every flow.
    /// `plugins` starts empty; the readers fill it with the declared files.
    pub fn assemble(
        manifest: Manifest,
        sha256: String,
        source: BundleSource,
        files: Vec<(String, String, Vec<u8>)>,
    ) -> Result<Bundle, BundleError> {
        let bundle_ref = manifest.bundle_ref();
        if manifest.flows.is_empty() {
            return Err(BundleError::Manifest(format!(
                "bundle \"{bundle_ref}\" has no flows (manifest.flows is empty)"
            )));
        }
        let ids = id_map(&bundle_ref, manifest.flows.keys());
        let mut flows = Vec::with_capacity(files.len());
        let mut raw_flows = Vec::with_capacity(files.len());
        for (flow_id, path, bytes) in files {
            let parsed: Value = serde_json::from_slice(&bytes).map_err(|e| BundleError::Flow {
                flow_id: flow_id.clone(),
                path: path.clone(),
                message: format!("not valid JSON: {e}"),
            })?;
            let Value::Object(obj) = parsed else {
                return Err(BundleError::Flow {
                    flow_id,
                    path,
                    message: format!("must be a JSON object (got {})", type_name(&parsed)),
                });
            };
            let ns = namespace_flow(&obj, &namespaced_id(&bundle_ref, &flow_id), &ids);
            flows.push((flow_id.clone(), ns));
            raw_flows.push((flow_id, bytes));
        }
        Ok(Bundle {
            manifest,
            sha256,
            source,
            flows,
            raw_flows,
            plugins: Vec::new(),
        })
    }

    /// `manifest.bundle_id`.
    pub fn bundle_id(&self) -> &str {
        &self.manifest.bundle_id
    }

    /// `manifest.bundle_version`.
    pub fn bundle_version(&self) -> &str {
        &self.manifest.bundle_version
    }

    /// `bundle_id@bundle_version`.
    pub fn bundle_ref(&self) -> String {
        self.manifest.bundle_ref()
    }

    /// The namespaced workflow id `bundle_id@bundle_version:flow_id`.
    pub fn workflow_id(&self, flow_id: &str) -> String {
        namespaced_id(&self.bundle_ref(), flow_id)
    }

    /// The file name this bundle is installed under (`<id>@<ver>.flow`).
    pub fn install_file_name(&self) -> String {
        install_file_name(self.bundle_id(), self.bundle_version())
    }

    /// True when `manifest.flows` has `flow_id`.
    pub fn has_flow(&self, flow_id: &str) -> bool {
        self.flows.iter().any(|(id, _)| id == flow_id)
    }

    /// Flow ids in manifest order.
    pub fn flow_ids(&self) -> impl Iterator<Item = &str> {
        self.flows.iter().map(|(id, _)| id.as_str())
    }

    /// Flow ids sorted (as `BundleDetail.flows`).
    pub fn sorted_flow_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.flow_ids().map(str::to_string).collect();
        ids.sort();
        ids
    }

    /// The namespaced VisualFlow of `flow_id`.
    pub fn flow(&self, flow_id: &str) -> Option<&Value> {
        self.flows
            .iter()
            .find(|(id, _)| id == flow_id)
            .map(|(_, v)| v)
    }

    /// The flow file's bytes exactly as stored in the bundle.
    pub fn raw_flow(&self, flow_id: &str) -> Option<&[u8]> {
        self.raw_flows
            .iter()
            .find(|(id, _)| id == flow_id)
            .map(|(_, b)| b.as_slice())
    }

    /// The stored flow parsed as JSON, un-namespaced (what `GET …/flows/{id}` returns).
    pub fn raw_flow_json(&self, flow_id: &str) -> Option<Value> {
        self.raw_flow(flow_id)
            .and_then(|b| serde_json::from_slice(b).ok())
    }

    /// The declaration and bytes of the plugin named `name` (see [`PluginDecl::name`]).
    pub fn plugin(&self, name: &str) -> Option<(&PluginDecl, &[u8])> {
        self.plugins
            .iter()
            .find(|(d, _)| d.name() == name)
            .map(|(d, b)| (d, b.as_slice()))
    }

    /// The flow started when none is named: the single entrypoint, else `default_entrypoint`.
    pub fn default_flow(&self) -> Result<&str, BundleError> {
        let eps = &self.manifest.entrypoints;
        if eps.len() == 1 {
            return Ok(eps[0].flow_id.as_str());
        }
        match self.manifest.default_entrypoint.as_deref() {
            Some(de) if !de.is_empty() => Ok(de),
            _ => Err(BundleError::Usage(format!(
                "Bundle '{}' has {} entrypoints; specify flow_id to select which entrypoint to start \
                 (or set manifest.default_entrypoint)",
                self.bundle_ref(),
                eps.len()
            ))),
        }
    }

    /// Start inputs of `flow_id`: the `on_flow_start` node's non-execution output pins with their `pinDefaults`.
    pub fn entry_inputs(&self, flow_id: &str) -> Vec<EntryInput> {
        self.flow(flow_id).map(entry_inputs_of).unwrap_or_default()
    }

    /// `{node_id: {"type", "label", "headerColor"?}}` for `flow_id`, in node order.
    pub fn node_index(&self, flow_id: &str) -> Map<String, Value> {
        self.flow(flow_id).map(node_index_of).unwrap_or_default()
    }
}

fn str_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn data_of(node: &Value) -> Option<&Map<String, Value>> {
    node.get("data").and_then(Value::as_object)
}

fn is_start_node(node: &Value) -> bool {
    let from_data = data_of(node)
        .and_then(|d| d.get("nodeType"))
        .map(normalize_node_type)
        .unwrap_or_default();
    from_data == "on_flow_start" || node_type(node) == "on_flow_start"
}

/// See [`Bundle::entry_inputs`]; works on any VisualFlow JSON.
pub fn entry_inputs_of(flow: &Value) -> Vec<EntryInput> {
    let Some(nodes) = flow.get("nodes").and_then(Value::as_array) else {
        return Vec::new();
    };
    let Some(start) = nodes.iter().find(|n| n.is_object() && is_start_node(n)) else {
        return Vec::new();
    };
    let empty = Map::new();
    let data = data_of(start).unwrap_or(&empty);
    let defaults = data.get("pinDefaults").and_then(Value::as_object);
    let Some(outputs) = data.get("outputs").and_then(Value::as_array) else {
        return Vec::new();
    };
    outputs
        .iter()
        .filter(|p| p.is_object())
        .filter_map(|p| {
            let id = str_of(p.get("id")).trim().to_string();
            let ty = str_of(p.get("type")).trim().to_string();
            if id.is_empty() || ty == "execution" || id == "exec-out" || id == "exec" {
                return None;
            }
            let label = str_of(p.get("label")).trim().to_string();
            Some(EntryInput {
                label: if label.is_empty() { id.clone() } else { label },
                ty: if ty.is_empty() { "unknown".into() } else { ty },
                default: defaults.and_then(|d| d.get(&id)).cloned(),
                id,
            })
        })
        .collect()
}

/// See [`Bundle::node_index`]; works on any VisualFlow JSON.
pub fn node_index_of(flow: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(nodes) = flow.get("nodes").and_then(Value::as_array) else {
        return out;
    };
    for node in nodes.iter().filter(|n| n.is_object()) {
        let id = node_id(node);
        if id.is_empty() {
            continue;
        }
        let data = data_of(node);
        // The seed's index prefers `data.nodeType` over `type`.
        let ty = data
            .and_then(|d| d.get("nodeType"))
            .map(normalize_node_type)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| node_type(node));
        // `a or b or id`, then stripped: a blank-but-present label yields the id.
        let label = [data.and_then(|d| d.get("label")), node.get("label")]
            .into_iter()
            .map(str_of)
            .find(|s| !s.is_empty())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| id.clone());
        let mut item = json!({
            "type": if ty.is_empty() { "unknown".to_string() } else { ty },
            "label": label,
        });
        let color = [
            data.and_then(|d| d.get("headerColor")),
            node.get("headerColor"),
        ]
        .into_iter()
        .flatten()
        .find(|v| matches!(v, Value::String(s) if !s.is_empty()));
        if let Some(Value::String(c)) = color
            && !c.trim().is_empty()
        {
            item["headerColor"] = Value::String(c.trim().to_string());
        }
        out.insert(id, item);
    }
    out
}
