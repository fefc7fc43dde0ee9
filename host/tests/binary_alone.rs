//! The binary alone runs every node type of the example bundles: started with only `ABSTRACTGATEWAY_FLOWS_DIR`,
//! `_DATA_DIR` and `_AUTH_TOKEN` (no plugins dir), it runs `code` nodes and pin expressions, because the Python
//! component ships inside it. It is compiled when a flow first needs it, not at start: a gateway whose flows
//! never use it does not pay the 10–25 s compile.

mod binary;

use binary::{Server, copy_bundles, zip_of};
use serde_json::{Value, json};

/// A bundle whose one flow doubles its input `n` with a pin expression, then adds one in a `code` node.
fn python_bundle() -> Vec<u8> {
    let pins = |ids: &[(&str, &str)]| -> Value {
        ids.iter()
            .map(|(id, ty)| json!({"id": id, "type": ty}))
            .collect()
    };
    let flow = json!({"id": "main", "name": "main", "entryNode": "s", "nodes": [
        {"id": "s", "type": "on_flow_start", "data": {"nodeType": "on_flow_start",
            "outputs": pins(&[("exec-out", "execution"), ("n", "number")])}},
        {"id": "c", "type": "code", "data": {"nodeType": "code", "codeBody": "return x + 1",
            "inputs": pins(&[("exec-in", "execution"), ("x", "number")]),
            "outputs": pins(&[("exec-out", "execution"), ("output", "any")]),
            "pinExpressions": {"x": "value * 2"}}},
        {"id": "e", "type": "on_flow_end", "data": {"nodeType": "on_flow_end",
            "inputs": pins(&[("exec-in", "execution"), ("result", "any")])}}],
        "edges": [
            {"id": "1", "source": "s", "sourceHandle": "exec-out", "target": "c", "targetHandle": "exec-in"},
            {"id": "2", "source": "s", "sourceHandle": "n", "target": "c", "targetHandle": "x"},
            {"id": "3", "source": "c", "sourceHandle": "exec-out", "target": "e", "targetHandle": "exec-in"},
            {"id": "4", "source": "c", "sourceHandle": "output", "target": "e", "targetHandle": "result"}]});
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "py", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main",
        "flows": {"main": "flows/main.json"}});
    zip_of(&[
        ("manifest.json", manifest.to_string().into_bytes()),
        ("flows/main.json", flow.to_string().into_bytes()),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn code_nodes_and_pin_expressions_run_from_the_binary_alone_compiled_on_first_need() {
    let dir = tempfile::tempdir().expect("tmp");
    copy_bundles(&dir.path().join("flows"));
    // The harness clears the environment: only FLOWS_DIR, DATA_DIR and AUTH_TOKEN (and PATH) are set.
    let mut s = Server::start_in(dir.path(), &[]).await;
    assert!(
        !dir.path().join("data/plugins").exists()
            || std::fs::read_dir(dir.path().join("data/plugins"))
                .expect("plugins dir")
                .next()
                .is_none(),
        "the test must not have a plugins dir with components"
    );

    // No installed flow needs Python: nothing compiled it at start, and pure flows run.
    let run = s.start_run("echo-upper", json!({"name": "ada"})).await;
    s.wait_status(&run, "completed").await;
    assert!(
        !s.said("python_code"),
        "compiled at start although no flow needs it: {}",
        s.stderr_tail(20)
    );

    // A bundle with a `code` node and a pin expression, uploaded to the running server: the component is
    // compiled now (announced on stderr), and the run completes with what Python computed.
    let (st, v) = s.upload("py@1.0.0.flow", &python_bundle(), None).await;
    assert_eq!(st, 200, "{v}");
    assert!(
        s.said("compiling component python_code ("),
        "{}",
        s.stderr_tail(20)
    );
    let run = s.start_run("py", json!({"n": 20})).await;
    let done = s.wait_status(&run, "completed").await;
    assert_eq!(done["output"]["result"], 41, "{done}");

    // A restart on the same data dir loads the bundle at start and reuses the compiled form.
    let before = s.stderr.lock().expect("stderr").len();
    s.restart().await;
    let run = s.start_run("py", json!({"n": 1})).await;
    let done = s.wait_status(&run, "completed").await;
    assert_eq!(done["output"]["result"], 3, "{done}");
    let since = s.stderr.lock().expect("stderr")[before..].join("\n");
    assert!(
        !since.contains("compiling component python_code"),
        "{since}"
    );
}
