//! Span memory through the real runner, store and built-in memory component: a note taken in one run is
//! recalled, tagged and rehydrated by a later run of the same session, after the gateway restarted, and
//! every span access is a host call in the ledger.

mod in_process;

use std::path::Path;
use std::sync::Arc;

use abstractgateway::run::{HostCall, RunState, RunStatus};
use abstractgateway::runner::{Gateway, StartRequest};
use in_process::flowgen::{edge, node, write_bundle};
use in_process::plugins::{gateway, plugins_dir};
use in_process::wait_for;
use serde_json::{Value, json};

/// start(note) → memory_note (session scope, tagged topic=rust) → end(note_id).
fn remember() -> Value {
    json!({"id": "remember", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["note"], json!({})),
        node("n", "memory_note", true, &["exec-out"], &["content", "scope", "tags"], &["note_id"],
            json!({"pinDefaults": {"scope": "session", "tags": {"topic": "rust"}}})),
        node("e", "on_flow_end", true, &[], &["note_id"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "n", "exec-in"), edge("n", "exec-out", "e", "exec-in"),
        edge("s", "note", "n", "content"), edge("n", "note_id", "e", "note_id")]})
}

/// start(query, span_id) → memory_query (session) → memory_tag (session) → memory_rehydrate(query's span
/// ids) → end(rendered, span_ids, tagged, inserted).
fn recall() -> Value {
    json!({"id": "recall", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["query", "span_id"], json!({})),
        node("q", "memory_query", true, &["exec-out"], &["query", "scope"], &["results", "rendered", "span_ids"],
            json!({"pinDefaults": {"scope": "session"}})),
        node("t", "memory_tag", true, &["exec-out"], &["span_id", "scope", "tags"], &["success", "rendered"],
            json!({"pinDefaults": {"scope": "session", "tags": {"person": "ada"}}})),
        node("r", "memory_rehydrate", true, &["exec-out"], &["span_ids", "placement"], &["inserted", "skipped"],
            json!({"pinDefaults": {"placement": "end"}})),
        node("e", "on_flow_end", true, &[], &["rendered", "span_ids", "tagged", "inserted"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "q", "exec-in"), edge("q", "exec-out", "t", "exec-in"),
        edge("t", "exec-out", "r", "exec-in"), edge("r", "exec-out", "e", "exec-in"),
        edge("s", "query", "q", "query"), edge("s", "span_id", "t", "span_id"),
        edge("q", "span_ids", "r", "span_ids"), edge("q", "rendered", "e", "rendered"),
        edge("q", "span_ids", "e", "span_ids"), edge("t", "rendered", "e", "tagged"),
        edge("r", "inserted", "e", "inserted")]})
}

fn open(dir: &Path) -> Arc<Gateway> {
    let bundle = write_bundle(
        dir,
        &[("remember", remember()), ("recall", recall())],
        "remember",
    );
    let pdir = plugins_dir(dir, &[]);
    gateway(&dir.join("data"), &bundle, &pdir)
}

fn run(gw: &Gateway, flow: &str, session: &str, input: Value) -> RunState {
    let req = StartRequest {
        workflow_id: format!("features@1.0.0:{flow}"),
        input: input.as_object().cloned().unwrap_or_default(),
        session_id: Some(session.into()),
        ..Default::default()
    };
    let id = gw.start_run(req).expect("start").run_id;
    let state = wait_for(gw, &id, |r| r.status.is_terminal());
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    state
}

fn host_calls(gw: &Gateway, run_id: &str) -> Vec<HostCall> {
    gw.store()
        .ledger_after(run_id, 0, 100_000)
        .expect("ledger")
        .iter()
        .filter_map(|e| HostCall::from_record(&serde_json::from_str(e.json.get()).expect("json")))
        .collect()
}

#[test]
fn a_session_note_is_recalled_tagged_and_rehydrated_by_a_later_run_after_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let note_id = {
        let gw = open(dir.path());
        let first = run(
            &gw,
            "remember",
            "sess-42",
            json!({"note": "Ada prefers Rust for parsers."}),
        );
        let out = first.output.expect("output");
        let id = out["note_id"].as_str().expect("note id").to_string();
        assert_eq!(id.len(), 32, "{out}");
        // The note went to the store through recorded kv writes.
        let calls = host_calls(&gw, &first.run_id);
        let sets: Vec<&str> = calls
            .iter()
            .filter(|c| c.interface == "kv" && c.function == "set")
            .filter_map(|c| c.request["key"].as_str())
            .collect();
        assert_eq!(sets.len(), 2, "{sets:?}");
        assert_eq!(sets[0], format!("artifacts/{id}"));
        assert!(
            sets[1].starts_with("spans/session_memory_sess-42/"),
            "{sets:?}"
        );
        gw.shutdown();
        id
    };

    // A new gateway over the same data dir: the session's memory is still there.
    let gw = open(dir.path());
    let second = run(
        &gw,
        "recall",
        "sess-42",
        json!({"query": "rust", "span_id": note_id}),
    );
    let out = second.output.clone().expect("output");
    assert_eq!(out["span_ids"], json!([note_id]), "{out}");
    let rendered = out["rendered"].as_str().expect("rendered");
    assert!(
        rendered.starts_with("Recalled memory spans (provenance-preserving):"),
        "{rendered}"
    );
    assert!(
        rendered.contains("    note: Ada prefers Rust for parsers."),
        "{rendered}"
    );
    assert!(rendered.contains("    tags: topic=rust"), "{rendered}");
    assert_eq!(
        out["tagged"],
        format!(
            "Tagged span_id={note_id} scope=session runs=[session_memory_sess-42] \
             tags={{\"person\": \"ada\", \"topic\": \"rust\"}}"
        )
    );
    assert_eq!(out["inserted"], 1);
    let messages = second.vars["context"]["messages"]
        .as_array()
        .expect("context");
    let last = messages.last().expect("a rehydrated message");
    assert_eq!(
        last["content"],
        "[MEMORY NOTE]\nAda prefers Rust for parsers."
    );
    assert_eq!(last["metadata"]["source_artifact_id"], json!(note_id));
    // Reads are recorded too (a replay answers them from the ledger).
    let calls = host_calls(&gw, &second.run_id);
    assert!(
        calls
            .iter()
            .any(|c| c.interface == "kv" && c.function == "list-keys")
    );
    assert!(
        calls
            .iter()
            .any(|c| c.interface == "kv" && c.function == "get")
    );

    // The tag is durable: a third run finds the span by it; another session sees nothing.
    let q = json!({"query": "ada", "span_id": note_id});
    let third = run(&gw, "recall", "sess-42", q.clone())
        .output
        .expect("output");
    assert_eq!(third["span_ids"], json!([note_id]), "{third}");
    assert!(
        third["rendered"]
            .as_str()
            .unwrap_or_default()
            .contains("tags: person=ada, topic=rust")
    );
    let other = StartRequest {
        workflow_id: "features@1.0.0:recall".into(),
        input: q.as_object().cloned().unwrap_or_default(),
        session_id: Some("sess-other".into()),
        ..Default::default()
    };
    let id = gw.start_run(other).expect("start").run_id;
    let state = wait_for(&gw, &id, |r| r.status.is_terminal());
    // Recall finds nothing there, and tagging a span the session does not own fails the run.
    assert_eq!(state.status, RunStatus::Failed);
    let error = state.error.unwrap_or_default();
    assert!(
        error.contains(&format!("Unknown span_id: {note_id}")),
        "{error}"
    );
    let records: Vec<Value> = gw
        .store()
        .ledger_after(&id, 0, 100_000)
        .expect("ledger")
        .iter()
        .map(|e| serde_json::from_str(e.json.get()).expect("json"))
        .collect();
    let query_done = records
        .iter()
        .find(|r| r["status"] == "completed" && r["effect"]["type"] == "memory_query")
        .expect("query completed");
    assert_eq!(
        query_done["result"]["rendered"],
        "No matching memory spans."
    );
}
