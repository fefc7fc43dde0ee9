//! Built-in file nodes as a component: `write_file` (flow-format §4 J). The file is written by the host's
//! `write_file` tool, which confines it to the run's workspace (`workspace_root`) and records the call.

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeFailure, NodeResult, NodeType, Outputs, Value, export_node, json,
    tools,
};

/// The plugin.
pub struct FileNodes;

/// Writes files for the node (the component passes the host tool; tests pass a fake).
pub trait Writer {
    /// Writes (overwrites) `file_path` in the run's workspace; returns the path as the workspace shows it.
    fn write(&mut self, file_path: &str, content: &str) -> Result<String, Error>;
}

/// The host's `write_file` tool.
pub struct HostTool;

impl Writer for HostTool {
    fn write(&mut self, file_path: &str, content: &str) -> Result<String, Error> {
        let answer = tools::invoke(
            "write_file",
            &json!({"file_path": file_path, "content": content}),
        )?;
        // The tool answers "Successfully wrote N bytes to <path relative to the workspace>".
        Ok(answer
            .as_str()
            .and_then(|s| s.split_once(" bytes to "))
            .map(|(_, shown)| shown.to_string())
            .unwrap_or_else(|| file_path.to_string()))
    }
}

impl Node for FileNodes {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("write_file")
                .label("Write File")
                .description(
                    "Writes text (or JSON for .json files) to a file of the run's workspace.",
                )
                .input("file_path", "string")
                .input("content", "any")
                .output("bytes", "number")
                .output("file_path", "string")
                // As the seed's function-like code nodes: a failure completes the run with the error record.
                .on_failure(NodeFailure::CompleteRun),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        Ok(run_with(&mut HostTool, &inv)?.into())
    }
}

/// Runs one node against `w`.
pub fn run_with(w: &mut dyn Writer, inv: &Invocation) -> Result<Outputs, Error> {
    match inv.node_type() {
        "write_file" => write_file(w, inv),
        other => Err(Error::not_found(format!(
            "node type {other} is not provided by node-files"
        ))),
    }
}

/// The text the seed writes: `.json` files get the content (a JSON string is parsed first) as indented
/// JSON plus a newline; other files get strings verbatim, lists and objects as indented JSON, null as "".
pub fn file_text(file_path: &str, content: Option<&Value>) -> Result<String, Error> {
    let pretty = |v: &Value| {
        abstractgateway_plugin_sdk::serde_json::to_string_pretty(v)
            .map_err(|e| Error::internal(format!("write_file: cannot encode the content: {e}")))
    };
    if file_path.to_lowercase().ends_with(".json") {
        let value = match content {
            Some(Value::String(s)) => {
                abstractgateway_plugin_sdk::serde_json::from_str(s).map_err(|e| {
                    Error::invalid_input(format!("write_file JSON content must be valid JSON: {e}"))
                })?
            }
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let mut text = pretty(&value)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        return Ok(text);
    }
    Ok(match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Array(_) | Value::Object(_))) => pretty(v)?,
        Some(v) => pycompat::repr::py_str(v),
    })
}

fn write_file(w: &mut dyn Writer, inv: &Invocation) -> Result<Outputs, Error> {
    let file_path = inv
        .input("file_path")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Error::invalid_input("write_file requires a non-empty 'file_path' input.")
        })?;
    let text = file_text(file_path, inv.input("content"))?;
    let shown = w.write(file_path, &text)?;
    let mut out = Outputs::new();
    out.insert("bytes".into(), json!(text.len()));
    out.insert("file_path".into(), json!(shown));
    Ok(out)
}

export_node!(FileNodes);
