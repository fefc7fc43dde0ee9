//! `answer_user`'s result: the message and level as the seed renders them, its effect payload and the
//! run's completion.

use abstractgateway_plugin_sdk::{Value, json};
use node_answer::answer_user;
use pycompat::repr::{py_float_repr as float, py_str};

#[test]
fn message_and_level_with_their_defaults() {
    let r = answer_user(&json!({"message": "hi", "level": "warning", "other": 1}));
    assert_eq!(
        Value::Object(r.outputs),
        json!({"message": "hi", "level": "warning"})
    );
    assert_eq!(
        r.effect_payload,
        Some(json!({"type": "answer_user", "message": "hi", "level": "warning"}))
    );
    assert_eq!(
        r.complete_output,
        Some(json!({"success": true, "result": {"message": "hi", "level": "warning"}}))
    );
    assert_eq!((r.ambient, r.context_edit), (None, None));
    let out = answer_user(&json!({"message": null, "level": ""})).outputs;
    assert_eq!(out["message"], "");
    assert_eq!(out["level"], "message");
}

#[test]
fn non_string_messages_are_pythons_str() {
    assert_eq!(
        answer_user(&json!({"message": {"a": [1, true, null, "it's"]}})).outputs["message"],
        "{'a': [1, True, None, \"it's\"]}"
    );
    assert_eq!(py_str(&json!(1.0)), "1.0");
    assert_eq!(float(1e16), "1e+16");
    assert_eq!(float(0.00001), "1e-05");
    assert_eq!(float(123.456), "123.456");
    assert_eq!(py_str(&json!("tab\there")), "tab\there");
    assert_eq!(py_str(&json!(["a\u{7}"])), "['a\\x07']");
}
