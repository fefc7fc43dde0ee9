//! `answer_user` as a component: a message for the host UI that completes at once (flow-format §3.8).
//! The node makes no host call; what clients see is kept as the seed's effect: the completed record
//! carries effect type `answer_user` with payload `{type, message, level}` (reserved key
//! `_effect_payload`) and result `{message, level}`, and a run ending on it completes with
//! `{success: true, result: {message, level}}` (`_complete_output`).

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeType, Outputs, Value, export_node, json,
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

    fn run(inv: Invocation) -> Result<Outputs, Error> {
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

/// The node's outputs from its resolved inputs.
pub fn answer_user(inputs: &Value) -> Outputs {
    let message = text_pin(inputs, "message").unwrap_or_default();
    let level = text_pin(inputs, "level").unwrap_or_else(|| "message".into());
    let result = json!({"message": message, "level": level});
    let mut out = Outputs::new();
    out.insert("message".into(), json!(message));
    out.insert("level".into(), json!(level));
    out.insert(
        "_effect_payload".into(),
        json!({"type": "answer_user", "message": message, "level": level}),
    );
    out.insert(
        "_complete_output".into(),
        json!({"success": true, "result": result}),
    );
    out
}

export_node!(AnswerNodes);
