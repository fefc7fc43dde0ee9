//! Load-time namespacing of a bundle's VisualFlows (§1.4 step 3) and the derived workflow ids.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Keys of a `subflow` node's `data` that may hold the child flow id.
pub const SUBFLOW_ID_KEYS: [&str; 4] = ["subflowId", "flowId", "workflowId", "workflow_id"];

/// `<bundle_id>@<bundle_version>:<flow_id>`.
pub fn namespaced_id(bundle_ref: &str, flow_id: &str) -> String {
    format!("{bundle_ref}:{flow_id}")
}

/// Replaces every run of characters outside `[A-Za-z0-9_-]` with one `_` (blank input gives `unknown`).
pub fn sanitize_id(value: &str) -> String {
    let value = value.trim();
    let mut out = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    if out.is_empty() {
        "unknown".to_string()
    } else {
        out
    }
}

/// Workflow id of the ReAct child workflow behind an `agent` node.
pub fn react_workflow_id(flow_id: &str, node_id: &str) -> String {
    format!(
        "visual_react_agent_{}_{}",
        sanitize_id(flow_id),
        sanitize_id(node_id)
    )
}

/// Workflow id of the listener workflow started for an `on_event` node.
pub fn event_listener_workflow_id(flow_id: &str, node_id: &str) -> String {
    format!(
        "visual_event_listener_{}_{}",
        sanitize_id(flow_id),
        sanitize_id(node_id)
    )
}

/// Normalises a raw node type: `"NodeType.X"` becomes `x`, `{"value": "x"}` becomes `x`.
pub fn normalize_node_type(raw: &Value) -> String {
    match raw {
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("NodeType.").map(str::trim) {
                Some(member) if !member.is_empty() => member.to_lowercase(),
                _ => s.to_string(),
            }
        }
        Value::Object(o) => match o.get("value") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A node's type: `node.type`, falling back to `node.data.nodeType`, both normalised.
pub fn node_type(node: &Value) -> String {
    let from_type = node
        .get("type")
        .map(normalize_node_type)
        .unwrap_or_default();
    if !from_type.is_empty() {
        return from_type;
    }
    node.get("data")
        .and_then(|d| d.get("nodeType"))
        .map(normalize_node_type)
        .unwrap_or_default()
}

/// A node id as the reference reads it (`str(id).strip()`; numbers are accepted).
pub fn node_id(node: &Value) -> String {
    match node.get("id") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The child flow id a `subflow` node names: the first non-blank of its `data` id keys, trimmed.
pub fn subflow_target(node: &Value) -> Option<&str> {
    SUBFLOW_ID_KEYS
        .iter()
        .filter_map(|k| {
            node.get("data")
                .and_then(|d| d.get(*k))
                .and_then(Value::as_str)
        })
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// Returns a namespaced copy of a raw flow.
///
/// - `id` becomes `namespaced_flow_id`;
/// - on `subflow` nodes, `data.subflowId/flowId/workflowId/workflow_id` values that are ids of this
///   bundle (`id_map` keys) are rewritten; other ids stay verbatim;
/// - on `agent` nodes, `data.agentConfig._react_workflow_id` is set.
///
/// As in the reference, a node's non-object `data` is replaced by `{}`.
pub fn namespace_flow(
    raw: &Map<String, Value>,
    namespaced_flow_id: &str,
    id_map: &HashMap<String, String>,
) -> Value {
    let mut out = raw.clone();
    out.insert("id".into(), Value::String(namespaced_flow_id.to_string()));
    if let Some(Value::Array(nodes)) = out.get_mut("nodes") {
        for node in nodes.iter_mut() {
            let ty = node_type(node);
            let id = node_id(node);
            let Some(obj) = node.as_object_mut() else {
                continue;
            };
            if !obj.get("data").is_some_and(Value::is_object) {
                obj.insert("data".into(), Value::Object(Map::new()));
            }
            let Some(Value::Object(data)) = obj.get_mut("data") else {
                continue;
            };
            match ty.as_str() {
                "subflow" => rewrite_subflow_ids(data, id_map),
                "agent" if !id.is_empty() => {
                    let mut cfg = match data.get("agentConfig") {
                        Some(Value::Object(c)) => c.clone(),
                        _ => Map::new(),
                    };
                    cfg.insert(
                        "_react_workflow_id".into(),
                        Value::String(react_workflow_id(namespaced_flow_id, &id)),
                    );
                    data.insert("agentConfig".into(), Value::Object(cfg));
                }
                _ => {}
            }
        }
    }
    Value::Object(out)
}

fn rewrite_subflow_ids(data: &mut Map<String, Value>, id_map: &HashMap<String, String>) {
    for key in SUBFLOW_ID_KEYS {
        if let Some(Value::String(s)) = data.get(key)
            && let Some(mapped) = id_map.get(s.trim())
        {
            data.insert(key.into(), Value::String(mapped.clone()));
        }
    }
}

/// `{flow_id: "<bundle_ref>:<flow_id>"}` for every flow of a bundle.
pub fn id_map<'a>(
    bundle_ref: &str,
    flow_ids: impl Iterator<Item = &'a str>,
) -> HashMap<String, String> {
    flow_ids
        .map(|fid| (fid.to_string(), namespaced_id(bundle_ref, fid)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sanitize_matches_reference_rule() {
        assert_eq!(
            sanitize_id("basic-agent@0.0.1:81795ea9"),
            "basic-agent_0_0_1_81795ea9"
        );
        assert_eq!(sanitize_id("a@@b"), "a_b");
        assert_eq!(sanitize_id("  "), "unknown");
        assert_eq!(sanitize_id("é"), "_");
        assert_eq!(
            react_workflow_id("basic-agent@0.0.1:81795ea9", "node-2"),
            "visual_react_agent_basic-agent_0_0_1_81795ea9_node-2"
        );
        assert_eq!(
            event_listener_workflow_id("demo@1.0.0:root", "wev"),
            "visual_event_listener_demo_1_0_0_root_wev"
        );
    }

    #[test]
    fn node_type_normalisation() {
        assert_eq!(node_type(&json!({"type": "agent"})), "agent");
        assert_eq!(node_type(&json!({"type": "NodeType.SUBFLOW"})), "subflow");
        assert_eq!(
            node_type(&json!({"type": {"value": "on_event"}})),
            "on_event"
        );
        assert_eq!(
            node_type(&json!({"type": "", "data": {"nodeType": "concat"}})),
            "concat"
        );
        assert_eq!(
            node_type(&json!({"data": {"nodeType": "NodeType.AGENT"}})),
            "agent"
        );
        assert_eq!(node_type(&json!({})), "");
    }

    #[test]
    fn namespacing_rewrites_only_own_ids() {
        let raw = json!({
            "id": "root",
            "nodes": [
                {"id": "s1", "type": "subflow", "data": {"subflowId": "child", "flowId": " child "}},
                {"id": "s2", "type": "NodeType.SUBFLOW", "data": {"workflowId": "other@1.0:x", "workflow_id": "root"}},
                {"id": "s3", "type": "literal_string", "data": {"subflowId": "child"}},
                {"id": "a1", "type": "agent", "data": {"agentConfig": {"provider": "p"}}},
                {"id": "a2", "type": "agent"},
                {"id": "", "type": "agent", "data": {}},
                "garbage"
            ],
            "edges": []
        });
        let map = id_map("demo@1.0.0", ["root", "child"].into_iter());
        let out = namespace_flow(raw.as_object().unwrap(), "demo@1.0.0:root", &map);
        assert_eq!(out["id"], "demo@1.0.0:root");
        let n = &out["nodes"];
        assert_eq!(n[0]["data"]["subflowId"], "demo@1.0.0:child");
        assert_eq!(n[0]["data"]["flowId"], "demo@1.0.0:child");
        assert_eq!(n[1]["data"]["workflowId"], "other@1.0:x");
        assert_eq!(n[1]["data"]["workflow_id"], "demo@1.0.0:root");
        assert_eq!(n[2]["data"]["subflowId"], "child");
        assert_eq!(n[3]["data"]["agentConfig"]["provider"], "p");
        assert_eq!(
            n[3]["data"]["agentConfig"]["_react_workflow_id"],
            "visual_react_agent_demo_1_0_0_root_a1"
        );
        assert_eq!(
            n[4]["data"]["agentConfig"]["_react_workflow_id"],
            "visual_react_agent_demo_1_0_0_root_a2"
        );
        assert!(n[5]["data"].get("agentConfig").is_none());
        assert_eq!(n[6], "garbage");
        assert_eq!(raw["id"], "root", "the input is not mutated");
    }
}
