//! The VisualFlow JSON graph as the engine reads it (permissive: unknown keys are ignored).

use serde_json::{Map, Value};

/// Why a flow's JSON is not a VisualFlow at all (the rest is checked by `compile`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowParseError {
    /// The document is not a JSON object.
    #[error("flow JSON must be an object")]
    NotAnObject,
    /// None of `id`, `flow_id`, `workflow_id` is a non-empty string.
    #[error("flow has no \"id\"")]
    NoId,
    /// A node (by id) has neither `type` nor `data.nodeType`.
    #[error("node {0:?} has no type")]
    NodeWithoutType(String),
}

/// A pin declared in `data.inputs` / `data.outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub id: String,
    pub label: String,
    pub ty: String,
}

impl Pin {
    /// Only the `execution` type changes semantics; every other type is opaque JSON.
    pub fn is_exec(&self) -> bool {
        self.ty == "execution"
    }
}

/// One node: its normalised type, its `data` object and its declared pins.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub ty: String,
    pub data: Map<String, Value>,
    pub inputs: Vec<Pin>,
    pub outputs: Vec<Pin>,
}

impl Node {
    /// Declared non-execution input pin ids, in order.
    pub fn data_inputs(&self) -> Vec<String> {
        self.inputs
            .iter()
            .filter(|p| !p.is_exec())
            .map(|p| p.id.clone())
            .collect()
    }
    /// Declared non-execution output pin ids, in order.
    pub fn data_outputs(&self) -> Vec<String> {
        self.outputs
            .iter()
            .filter(|p| !p.is_exec())
            .map(|p| p.id.clone())
            .collect()
    }
    /// True when any declared pin has type `execution`.
    pub fn has_exec_pins(&self) -> bool {
        self.inputs.iter().chain(&self.outputs).any(Pin::is_exec)
    }
    /// True when the node declares no pins at all (older templates).
    pub fn has_no_pins(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty()
    }
    /// `data.<key>` if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }
    /// `data.<section>.<key>` if present and not null.
    pub fn config(&self, section: &str, key: &str) -> Option<&Value> {
        self.data.get(section)?.get(key).filter(|v| !v.is_null())
    }
    /// Declared input pin by id.
    pub fn input_pin(&self, id: &str) -> Option<&Pin> {
        self.inputs.iter().find(|p| p.id == id)
    }
}

/// An edge; an execution edge is one whose `targetHandle` is `exec-in`.
#[derive(Debug, Clone)]
pub struct Edge {
    pub id: String,
    pub source: String,
    pub source_handle: String,
    pub target: String,
    pub target_handle: String,
    pub data: Value,
}

impl Edge {
    pub fn is_exec(&self) -> bool {
        self.target_handle == "exec-in"
    }
}

/// A parsed VisualFlow.
#[derive(Debug, Clone)]
pub struct VisualFlow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub interfaces: Vec<String>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub entry_node: Option<String>,
}

/// Normalises a node type (`"NodeType.X"`, `{"value": "x"}`) to its plain string.
pub fn normalize_type(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("value")?.as_str()?.to_string(),
        _ => return None,
    };
    let s = s
        .strip_prefix("NodeType.")
        .map(str::to_ascii_lowercase)
        .unwrap_or(s);
    (!s.is_empty()).then_some(s)
}

fn str_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn parse_pins(v: Option<&Value>) -> Vec<Pin> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|p| {
            let id = p.get("id")?.as_str()?.to_string();
            if id.is_empty() {
                return None;
            }
            Some(Pin {
                label: str_of(p.get("label")),
                ty: p
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("any")
                    .to_string(),
                id,
            })
        })
        .collect()
}

impl VisualFlow {
    /// Parses a flow object; nodes without an id and incomplete edges are skipped, as the seed does.
    pub fn parse(raw: &Value) -> Result<VisualFlow, FlowParseError> {
        let obj = raw.as_object().ok_or(FlowParseError::NotAnObject)?;
        let id = ["id", "flow_id", "workflow_id"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .ok_or(FlowParseError::NoId)?
            .to_string();
        let mut nodes = Vec::new();
        if let Some(Value::Array(items)) = obj.get("nodes") {
            for n in items {
                let Some(nid) = n
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                else {
                    continue;
                };
                let data = n
                    .get("data")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let ty = n
                    .get("type")
                    .and_then(normalize_type)
                    .or_else(|| data.get("nodeType").and_then(normalize_type))
                    .ok_or_else(|| FlowParseError::NodeWithoutType(nid.to_string()))?;
                nodes.push(Node {
                    id: nid.to_string(),
                    ty,
                    inputs: parse_pins(data.get("inputs")),
                    outputs: parse_pins(data.get("outputs")),
                    data,
                });
            }
        }
        let mut edges = Vec::new();
        if let Some(Value::Array(items)) = obj.get("edges") {
            for e in items {
                let field = |k: &str| e.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                let (Some(source), Some(sh), Some(target), Some(th)) = (
                    field("source"),
                    field("sourceHandle"),
                    field("target"),
                    field("targetHandle"),
                ) else {
                    continue;
                };
                edges.push(Edge {
                    id: str_of(e.get("id")),
                    source: source.to_string(),
                    source_handle: sh.to_string(),
                    target: target.to_string(),
                    target_handle: th.to_string(),
                    data: e.get("data").cloned().unwrap_or(Value::Null),
                });
            }
        }
        Ok(VisualFlow {
            id,
            name: str_of(obj.get("name")),
            description: str_of(obj.get("description")),
            interfaces: obj
                .get("interfaces")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            nodes,
            edges,
            entry_node: obj
                .get("entryNode")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from),
        })
    }
}
