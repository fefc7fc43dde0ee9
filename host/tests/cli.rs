//! The `abstractgateway` binary as users run it: `run` output and exit codes, `bundle` tools.

mod in_process;

use in_process::shared;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
}

fn bundle(name: &str) -> PathBuf {
    abstractgateway_testkit::repo_root()
        .join("bundles")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn run_json_prints_records_then_the_final_object() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().to_string();
    let b = bundle("echo-upper@1.0.0.flow");
    let out = run(&[
        "run",
        b.to_str().expect("path"),
        "--input",
        r#"{"name":"Alice"}"#,
        "--data-dir",
        &d,
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["idempotency_key"], "system:completion:end");
    assert_eq!(lines[0].as_object().map(|o| o.len()), Some(16));
    let last = &lines[2];
    assert_eq!(last["status"], "completed");
    assert_eq!(last["output"]["response"], "HELLO,  ALICE");
    let keys: Vec<&str> = last
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["run_id", "status", "output", "waiting", "error"]);
}

#[test]
fn waiting_run_exits_zero_and_readable_output_names_the_wait() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().to_string();
    let b = bundle("ask-user@1.0.0.flow");
    let out = run(&["run", b.to_str().expect("path"), "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("waiting"), "{text}");
    assert!(text.contains("What is your favourite colour?"), "{text}");
}

/// An unpacked bundle whose flow uses `teleport_user` (node `node-7`), a node type nothing provides.
fn odd_bundle(dir: &Path) -> PathBuf {
    let odd = dir.join("odd");
    std::fs::create_dir_all(odd.join("flows")).expect("mkdir");
    let exec = |id: &str| serde_json::json!({"id": id, "label": "", "type": "execution"});
    let flow = serde_json::json!({"id": "main", "entryNode": "s", "nodes": [
        {"id": "s", "type": "on_flow_start", "data": {"outputs": [exec("exec-out")]}},
        {"id": "node-7", "type": "teleport_user", "data": {"inputs": [exec("exec-in")]}}],
      "edges": [{"id": "e", "source": "s", "sourceHandle": "exec-out", "target": "node-7", "targetHandle": "exec-in"}]});
    std::fs::write(odd.join("flows/main.json"), flow.to_string()).expect("flow");
    let manifest = serde_json::json!({"bundle_format_version": "1", "bundle_id": "odd", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "flows": {"main": "flows/main.json"}});
    std::fs::write(odd.join("manifest.json"), manifest.to_string()).expect("manifest");
    odd
}

#[test]
fn bad_usage_and_bad_bundles_exit_two() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().to_string();
    let b = bundle("echo-upper@1.0.0.flow");
    let bs = b.to_str().expect("path");
    let out = run(&["run", bs, "--input", "[1]", "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input must be a JSON object"));
    let out = run(&["run", bs, "--flow", "nope", "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["run", "/nonexistent.flow", "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(2));
    // A bundle with a node type nothing provides: refused at load, naming type and node.
    let odd = odd_bundle(dir.path());
    let out = run(&["run", odd.to_str().expect("path"), "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("teleport_user") && err.contains("node-7"),
        "{err}"
    );
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn failed_run_exits_one() {
    // A subflow pointing at a flow that does not exist fails the run at that node.
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("b");
    std::fs::create_dir_all(src.join("flows")).expect("mkdir");
    std::fs::write(
        src.join("manifest.json"),
        r#"{"bundle_format_version":"1","bundle_id":"broken","bundle_version":"1.0.0","entrypoints":[{"flow_id":"f"}],"flows":{"f":"flows/f.json"}}"#,
    )
    .expect("manifest");
    std::fs::write(
        src.join("flows/f.json"),
        r#"{"id":"f","entryNode":"s","nodes":[
          {"id":"s","type":"on_flow_start","data":{"outputs":[{"id":"exec-out","type":"execution"}]}},
          {"id":"sub","type":"subflow","data":{"subflowId":"missing@9:x","inputs":[{"id":"exec-in","type":"execution"}],"outputs":[{"id":"exec-out","type":"execution"}]}}],
          "edges":[{"id":"e","source":"s","sourceHandle":"exec-out","target":"sub","targetHandle":"exec-in"}]}"#,
    )
    .expect("flow");
    let d = dir.path().join("data").to_string_lossy().to_string();
    let out = run(&[
        "run",
        src.to_str().expect("path"),
        "--data-dir",
        &d,
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = json_lines(&out).pop().expect("final object");
    assert_eq!(last["status"], "failed");
    assert!(
        last["error"]
            .as_str()
            .unwrap_or_default()
            .contains("missing@9:x")
    );
}

#[test]
fn bundle_tools_inspect_verify_pack() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = bundle("echo-upper@1.0.0.flow");
    let out = run(&["bundle", "inspect", b.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.to_string().contains("echo-upper"));
    let data = dir.path().join("verify-data");
    let verify = |path: &Path| {
        run(&[
            "bundle",
            "verify",
            path.to_str().expect("path"),
            "--data-dir",
            data.to_str().expect("path"),
        ])
    };
    let out = verify(&b);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Model, agent and answer_user nodes are built-in components: a bundle using them verifies.
    let llm = shared().join("fixtures/bundles/seed/basic-agent.flow");
    let out = verify(&llm);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A node type nothing provides is refused, naming it.
    let out = verify(&odd_bundle(dir.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("teleport_user"));
    let packed = dir.path().join("re.flow");
    let src = shared().join("fixtures/bundles/no-llm/src/chain@1.0.0");
    let out = run(&[
        "bundle",
        "pack",
        src.to_str().expect("path"),
        "--out",
        packed.to_str().expect("path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dir.path().join("data").to_string_lossy().to_string();
    let out = run(&[
        "run",
        packed.to_str().expect("path"),
        "--data-dir",
        &d,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        json_lines(&out).pop().expect("final")["output"]["response"],
        "chain"
    );
}

#[test]
fn a_first_compile_of_a_large_component_is_announced_once_per_data_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    for f in ["python_code.wasm", "python_code.grants.json"] {
        std::fs::copy(in_process::plugins::built_dir().join(f), plugins.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}; build it first: scripts/build-python-plugin.sh"));
    }
    let data = tmp.path().join("data");
    let args = || {
        let b = bundle("echo-upper@1.0.0.flow");
        vec![
            "run".to_string(),
            b.to_string_lossy().into_owned(),
            "--input".into(),
            r#"{"name": "p"}"#.into(),
            "--data-dir".into(),
            data.to_string_lossy().into_owned(),
            "--plugins-dir".into(),
            plugins.to_string_lossy().into_owned(),
        ]
    };
    let first = bin().args(args()).output().expect("run");
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(said.contains("compiling component python_code ("), "{said}");
    assert!(
        said.contains("compiled component python_code in "),
        "{said}"
    );
    // Small built-in components compile silently.
    assert!(!said.contains("component node_answer"), "{said}");
    let again = bin().args(args()).output().expect("run");
    assert!(again.status.success(), "{again:?}");
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        !said.contains("compil"),
        "the second start reuses the compiled form: {said}"
    );
}

/// The binary ships the Python component: a real `code` flow runs with an empty plugins dir, with the seed's
/// output (its golden record).
#[test]
fn a_code_node_runs_with_the_component_the_binary_ships() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = dir.path().join("code");
    std::fs::create_dir_all(b.join("flows")).expect("mkdir");
    std::fs::copy(
        shared().join("fixtures/flows/85228163.json"),
        b.join("flows/main.json"),
    )
    .expect("flow");
    let manifest = serde_json::json!({"bundle_format_version": "1", "bundle_id": "code", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "85228163"}], "flows": {"85228163": "flows/main.json"}});
    std::fs::write(b.join("manifest.json"), manifest.to_string()).expect("manifest");
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = run(&[
        "run",
        &b.to_string_lossy(),
        "--data-dir",
        &dir.path().join("data").to_string_lossy(),
        "--plugins-dir",
        &empty.to_string_lossy(),
        "--input",
        r#"{"a": 3, "b": 3}"#,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared().join("fixtures/flows/golden/85228163.json")).expect("golden"),
    )
    .expect("golden JSON");
    assert_eq!(golden["input"], serde_json::json!({"a": 3, "b": 3}));
    let last = json_lines(&out).pop().expect("final");
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["output"], golden["output"], "{last}");
}

/// A shard count out of range stops a cluster node before it connects, with a message naming the variable (a
/// node with another count than its cluster's would spread runs differently).
#[test]
fn a_cluster_node_refuses_a_shard_count_out_of_range() {
    let dir = tempfile::tempdir().expect("tmp");
    for bad in ["0", "65", "-1", "four", "4.5", ""] {
        let out = bin()
            .args(["serve", "--port", "0", "--store", "nats://127.0.0.1:9"])
            .env("ABSTRACTGATEWAY_DATA_DIR", dir.path())
            .env(
                "ABSTRACTGATEWAY_AUTH_TOKEN",
                "a-strong-cluster-test-token-0123456789",
            )
            .env("ABSTRACTGATEWAY_CLUSTER_SHARDS", bad)
            .output()
            .expect("binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(
            err.contains("ABSTRACTGATEWAY_CLUSTER_SHARDS must be a whole number from 1 to 64"),
            "{bad:?}: {err}"
        );
    }
}
