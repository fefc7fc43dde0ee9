//! `answer_user` as a component: a message for the host UI that completes at once (flow-format §3.8).
//! The node makes no host call; what clients see is kept as the seed's effect: the completed record
//! carries effect type `answer_user` with payload `{type, message, level}` (the result's effect payload)
//! and result `{message, level}`, and a run ending on it completes with
//! `{success: true, result: {message, level}}` (its complete output).

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeResult, NodeType, Outputs, Value, export_node, json,
};

/// The plugin.
pub struct AnswerNodes;

impl Node for AnswerNodes {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("answer_user")
                .label("Answer User")
                .description(
                    "Shows a message to the user (message, warning or error) and continues.",
                )
                .input("message", "string")
                .input("level", "string")
                .output("message", "string")
                .effect("answer_user"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        match inv.node_type() {
            "answer_user" => Ok(answer_user(inv.inputs())),
            other => Err(Error::not_found(format!(
                "node type {other} is not provided by node-answer"
            ))),
        }
    }
}

/// A pin as the seed's payload builder reads it: a non-empty string, else `str()` of a non-null value.
fn text_pin(inputs: &Value, key: &str) -> Option<String> {
    match inputs.get(key)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(pycompat::repr::py_str(other)),
    }
}

/// The node's result from its resolved inputs.
pub fn answer_user(inputs: &Value) -> NodeResult {
    let message = text_pin(inputs, "message").unwrap_or_default();
    let level = text_pin(inputs, "level").unwrap_or_else(|| "message".into());
    let result = json!({"message": message, "level": level});
    let mut out = Outputs::new();
    out.insert("message".into(), json!(message));
    out.insert("level".into(), json!(level));
    NodeResult::from(out)
        .with_effect_payload(json!({"type": "answer_user", "message": message, "level": level}))
        .with_complete_output(json!({"success": true, "result": result}))
}

export_node!(AnswerNodes);
