//! Tools called from plugin nodes through the real runner: a tool plugin (`text_tool_provider`) listed and
//! invoked, built-in file tools writing into the run's workspace, grants enforced, every call in the ledger.

mod in_process;

use std::path::Path;

use abstractgateway::run::{HostCall, RunState, RunStatus};
use abstractgateway::runner::Gateway;
use in_process::flowgen::{edge, node, write_bundle};
use in_process::plugins::{gateway_local, plugins_dir};
use in_process::run_in_session;
use serde_json::{Value, json};

/// start → call_tool(name, arguments) → end(tools, result, error).
fn flow() -> Value {
    let ins = ["name", "arguments"];
    let outs = ["tools", "result", "error"];
    let mut edges = vec![
        edge("s", "exec-out", "p", "exec-in"),
        edge("p", "exec-out", "e", "exec-in"),
    ];
    edges.extend(ins.iter().map(|i| edge("s", i, "p", i)));
    edges.extend(outs.iter().map(|o| edge("p", o, "e", o)));
    json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &ins, json!({})),
        node("p", "call_tool", true, &["exec-out"], &ins, &outs, json!({})),
        node("e", "on_flow_end", true, &[], &outs, &[], json!({}))],
      "edges": edges})
}

fn setup(dir: &Path, caller_grants: Value) -> std::sync::Arc<Gateway> {
    let bundle = write_bundle(dir, &[("main", flow())], "main");
    let pdir = plugins_dir(
        dir,
        &[
            ("tool_caller", caller_grants),
            ("text_tool_provider", Value::Null),
        ],
    );
    // Tools run at the plugin's request only in local mode (elsewhere a person approves each call).
    gateway_local(&dir.join("data"), &bundle, &pdir)
}

fn run(gw: &Gateway, input: Value) -> (String, RunState) {
    run_in(gw, input, None)
}

fn run_in(gw: &Gateway, input: Value, session: Option<&str>) -> (String, RunState) {
    let r = run_in_session(gw, input, session);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    (r.run_id.clone(), r)
}

fn ledger(gw: &Gateway, run_id: &str) -> Vec<Value> {
    gw.store()
        .ledger_after(run_id, 0, 100_000)
        .expect("ledger")
        .iter()
        .map(|e| serde_json::from_str(e.json.get()).expect("json"))
        .collect()
}

#[test]
fn a_node_lists_and_invokes_a_tool_plugin() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = setup(dir.path(), json!({"tools": ["*"]}));
    let (id, r) = run(
        &gw,
        json!({"name": "reverse_words", "arguments": {"text": "one two  three"}}),
    );
    let out = r.output.expect("output");
    assert_eq!(out["result"], json!({"text": "three two one"}));
    assert_eq!(out["error"], Value::Null);
    assert_eq!(
        out["tools"],
        json!([
            "list_files",
            "search_files",
            "read_file",
            "write_file",
            "fetch_url",
            "count_words",
            "reverse_words"
        ])
    );
    let recs = ledger(&gw, &id);
    let calls: Vec<(String, HostCall)> = recs
        .iter()
        .filter_map(|r| {
            HostCall::from_record(r).map(|c| (r["node_id"].as_str().unwrap_or("").to_string(), c))
        })
        .collect();
    let names: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|(n, c)| (n.as_str(), c.interface.as_str(), c.function.as_str()))
        .collect();
    assert_eq!(
        names,
        [("p", "tools", "list-tools"), ("p", "tools", "invoke")]
    );
    assert_eq!(
        calls[1].1.request,
        json!({"name": "reverse_words", "arguments": {"text": "one two  three"}})
    );
    assert_eq!(calls[1].1.answer, Ok(json!({"text": "three two one"})));

    // A tool plugin's own error reaches the node as the WIT error.
    let (_, r) = run(&gw, json!({"name": "count_words", "arguments": {}}));
    let out = r.output.expect("output");
    assert_eq!(out["error"]["code"], "InvalidInput");
    assert_eq!(
        out["error"]["message"],
        "argument 'text' (a string) is required"
    );
}

#[test]
fn builtin_file_tools_work_in_the_runs_workspace() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = setup(dir.path(), json!({"tools": ["write_file", "read_file"]}));
    // A root the client names is ignored: the session's workspace is the host's choice.
    let asked = dir.path().join("ws");
    let ws = dir.path().join("data/workspaces/S1");
    let (_, r) = run_in(
        &gw,
        json!({"name": "write_file", "workspace_root": asked.to_string_lossy(),
            "arguments": {"file_path": "notes/a.txt", "content": "hi\nthere"}}),
        Some("S1"),
    );
    assert_eq!(r.vars["workspace_root"], json!(ws.to_string_lossy()));
    assert!(
        !asked.exists(),
        "nothing is written where the input pointed"
    );
    assert_eq!(
        r.output.expect("output")["result"],
        "Successfully wrote 8 bytes to notes/a.txt"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("notes/a.txt")).expect("written"),
        "hi\nthere"
    );
    let (_, r) = run_in(
        &gw,
        json!({"name": "read_file", "arguments": {"file_path": "../S1/notes/a.txt"}}),
        Some("S1"),
    );
    let out = r.output.expect("output");
    assert_eq!(out["error"]["code"], "AccessDenied", "{out}");
    // Without an explicit root the run gets its own under the data dir.
    let (id, r) = run(
        &gw,
        json!({"name": "write_file", "arguments": {"file_path": "x.txt", "content": "x"}}),
    );
    assert!(r.output.expect("output")["error"].is_null());
    let root = gw
        .store()
        .get_run(&id)
        .expect("get")
        .expect("run")
        .vars
        .get("workspace_root")
        .and_then(Value::as_str)
        .map(String::from)
        .expect("workspace_root");
    assert!(Path::new(&root).starts_with(dir.path().join("data")));
    assert_eq!(
        std::fs::read_to_string(Path::new(&root).join("x.txt")).expect("x"),
        "x"
    );
}

#[test]
fn tools_not_granted_to_the_node_are_neither_listed_nor_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = setup(dir.path(), json!({"tools": ["reverse_words"]}));
    let (id, r) = run(
        &gw,
        json!({"name": "write_file", "arguments": {"file_path": "a.txt", "content": "x"}}),
    );
    let ws = Path::new(r.vars["workspace_root"].as_str().expect("workspace")).to_path_buf();
    let out = r.output.expect("output");
    assert_eq!(out["tools"], json!(["reverse_words"]));
    assert_eq!(out["error"]["code"], "AccessDenied");
    assert!(!ws.join("a.txt").exists());
    let denied = ledger(&gw, &id)
        .iter()
        .filter_map(HostCall::from_record)
        .find(|c| c.function == "invoke")
        .expect("invoke recorded");
    assert_eq!(denied.answer.expect_err("refused")["code"], "access-denied");
}
