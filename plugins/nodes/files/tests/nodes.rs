//! `write_file` against a fake workspace: the text written per file kind and the outputs.

use abstractgateway_plugin_sdk::{Error, Invocation, Value, json};
use node_files::{Writer, file_text, run_with};

#[derive(Default)]
struct Recorded(Vec<(String, String)>);

impl Writer for Recorded {
    fn write(&mut self, file_path: &str, content: &str) -> Result<String, Error> {
        self.0.push((file_path.into(), content.into()));
        Ok(file_path.trim_start_matches("./").into())
    }
}

#[test]
fn writes_text_and_reports_utf8_bytes() {
    let mut w = Recorded::default();
    let inv = Invocation::new(
        "write_file",
        "n1",
        json!({}),
        json!({"file_path": " ./story.md ", "content": "héllo"}),
    );
    let out = run_with(&mut w, &inv).expect("writes");
    assert_eq!(
        Value::Object(out),
        json!({"bytes": 6, "file_path": "story.md"})
    );
    assert_eq!(w.0, vec![("./story.md".to_string(), "héllo".to_string())]);
}

#[test]
fn json_files_get_indented_json_and_a_newline() {
    assert_eq!(
        file_text("a.JSON", Some(&json!("{\"k\": [1, 2]}"))).expect("text"),
        "{\n  \"k\": [\n    1,\n    2\n  ]\n}\n"
    );
    assert!(file_text("a.json", Some(&json!("not json"))).is_err());
    assert_eq!(
        file_text("a.txt", Some(&json!({"k": 1}))).expect("text"),
        "{\n  \"k\": 1\n}"
    );
    assert_eq!(
        file_text("a.txt", Some(&json!(true))).expect("text"),
        "True"
    );
    assert_eq!(file_text("a.txt", None).expect("text"), "");
}

#[test]
fn a_missing_path_is_the_seeds_error() {
    let mut w = Recorded::default();
    let inv = Invocation::new("write_file", "n1", json!({}), json!({"content": "x"}));
    let err = run_with(&mut w, &inv).expect_err("no path");
    assert_eq!(
        err.message,
        "write_file requires a non-empty 'file_path' input."
    );
    assert!(w.0.is_empty());
}

#[test]
fn write_file_is_function_like_and_completes_the_run_when_it_fails() {
    use abstractgateway_plugin_sdk::{InputFailure, Node, NodeFailure};
    let types = node_files::FileNodes::describe();
    assert_eq!(types[0].effect, None);
    assert_eq!(types[0].input_failure(), InputFailure::Report);
    assert_eq!(types[0].on_failure, NodeFailure::CompleteRun);
}
