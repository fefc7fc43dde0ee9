//! `ABSTRACTGATEWAY_WORKFLOW_SOURCE=visualflow` on the real binary: loose VisualFlow JSON files of FLOWS_DIR run by
//! flow id with the seed's answers (goldens of the shared flows), bad files are left out with a warning, and the
//! bundle endpoints refuse as the seed's do.

mod binary;
mod in_process;

use binary::Server;
use in_process::shared;
use serde_json::{Value, json};

fn golden(id: &str) -> Value {
    let p = shared().join(format!("fixtures/flows/golden/{id}.json"));
    serde_json::from_slice(&std::fs::read(&p).expect("golden")).expect("golden json")
}

#[tokio::test]
async fn loose_flows_run_by_flow_id_and_bundle_endpoints_refuse() {
    let tmp = tempfile::tempdir().expect("tmp");
    let flows = tmp.path().join("flows");
    std::fs::create_dir_all(&flows).expect("mkdir");
    for id in ["acagent_message_demo", "a803f4bd"] {
        std::fs::copy(
            shared().join(format!("fixtures/flows/{id}.json")),
            flows.join(format!("{id}.json")),
        )
        .expect("copy flow");
    }
    // Hostile or broken files: not JSON, not an object, an id already taken, a flow that does not compile, and a
    // directory named like a flow.
    std::fs::write(flows.join("broken.json"), "{ not json").expect("write");
    std::fs::write(flows.join("list.json"), "[1, 2]").expect("write");
    let mut twin: Value = serde_json::from_slice(
        &std::fs::read(flows.join("acagent_message_demo.json")).expect("read"),
    )
    .expect("json");
    twin["name"] = json!("same id, other file");
    std::fs::write(flows.join("zz-twin.json"), twin.to_string()).expect("write");
    std::fs::write(
        flows.join("unknown-node.json"),
        json!({"id": "bad", "nodes": [{"id": "n", "type": "no_such_node", "data": {}}], "edges": []}).to_string(),
    )
    .expect("write");
    std::fs::create_dir_all(flows.join("dir.json")).expect("mkdir");

    let s = Server::start_in(
        tmp.path(),
        &[("ABSTRACTGATEWAY_WORKFLOW_SOURCE", "visualflow")],
    )
    .await;
    let (st, health) = s.get("/api/health").await;
    assert_eq!(st, 200, "{health}");
    let warnings = health["warnings"].to_string();
    for bad in [
        "broken.json",
        "list.json",
        "zz-twin.json",
        "unknown-node.json",
    ] {
        assert!(warnings.contains(bad), "{bad} not reported: {warnings}");
    }

    // A pure flow, started by flow id, ends as the seed ended it.
    let g = golden("acagent_message_demo");
    let (st, v) = s
        .post(
            "/api/gateway/runs/start",
            json!({"flow_id": "acagent_message_demo", "input_data": g["input"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let run = v["run_id"].as_str().expect("run id").to_string();
    let done = s.wait_status(&run, "completed").await;
    assert_eq!(done["workflow_id"], "acagent_message_demo");
    assert_eq!(done["output"], g["output"]);

    // A flow that asks, answered through a command as the golden's resume rule says.
    let g = golden("a803f4bd");
    let (st, v) = s
        .post(
            "/api/gateway/runs/start",
            json!({"flow_id": "a803f4bd", "bundle_id": "ignored", "input_data": {}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let run = v["run_id"].as_str().expect("run id").to_string();
    let waiting = s.wait_status(&run, "waiting").await;
    assert_eq!(waiting["waiting"]["prompt"], "who are you ?", "{waiting}");
    let (st, v) = s
        .command(
            "vf-answer",
            &run,
            "resume",
            json!({"payload": {"response": "yes"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let done = s.wait_status(&run, "completed").await;
    assert_eq!(done["output"], g["output"]);

    // The flow as loaded, by workflow id.
    let (st, v) = s.get("/api/gateway/workflows/a803f4bd/flow").await;
    assert_eq!((st, &v["source"]), (200, &json!("visualflow")), "{v}");
    assert_eq!(v["flow"]["id"], "a803f4bd");

    // The seed's refusals.
    for (body, status, detail) in [
        (
            json!({"input_data": {}}),
            400,
            "flow_id is required (or provide bundle_id to start a bundle entrypoint)",
        ),
        (
            json!({"bundle_id": "x"}),
            400,
            "Failed to start run: flow_id is required",
        ),
        (json!({"flow_id": "nope"}), 404, "Flow 'nope' not found"),
        (json!({"flow_id": "bad"}), 404, "Flow 'bad' not found"),
    ] {
        let (st, v) = s.post("/api/gateway/runs/start", body.clone()).await;
        assert_eq!((st, &v["detail"]), (status, &json!(detail)), "{body}");
    }
    for path in ["/api/gateway/bundles", "/api/gateway/bundles/x"] {
        let (st, v) = s.get(path).await;
        assert_eq!(st, 400, "{path}: {v}");
        assert_eq!(
            v["detail"],
            "Bundle workflow source is not enabled on this gateway"
        );
    }
    let (st, v) = s
        .post(
            "/api/gateway/runs/schedule",
            json!({"bundle_id": "x", "flow_id": "a803f4bd", "interval": "1s"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
}
