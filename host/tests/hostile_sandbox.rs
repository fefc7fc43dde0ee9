//! The component sandbox against the real server binary: bundles ship the `hostile` component (and a tool
//! plugin that imports what it must not) with chosen grants, and every attack must end in a clean refusal
//! or a clean failure of its own run, while the server stays up, an ordinary fixture run still completes,
//! and nothing is written outside the test's directories.
//!
//! Covered: host-owned workspaces (a run's input or vars cannot move them; client scope only inside the
//! operator's roots), the operator's plugin policy at load, upload and `bundle verify`, outbound HTTP never
//! reaching private addresses, kv namespaced per bundle, grants for artifacts and events with size caps,
//! the log budget, wall-clock deadlines and cancellation of blocked components, the instance pool's reserve
//! for built-in components, a panicking host-call argument, plugin identity (a bundle cannot re-grant a
//! built-in component by shipping its bytes), tool plugins scoped to their bundle (and gone when it is
//! deleted or replaced), and approval of third-party tool calls. Several cases restart the server on the same directory and check it recovers.

mod binary;
#[allow(dead_code)]
#[path = "in_process/flowgen.rs"]
mod flowgen;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use binary::{Server, TOKEN};
use flowgen::{edge, node, one_node_flow};
use serde_json::{Value, json};

/// Every bundle of these tests has this version.
const VERSION: &str = "1.0.0";

/// The `hostile` node's inputs, all wired from the start node (absent inputs arrive as null = unset).
const HOSTILE_INS: [&str; 13] = [
    "attack",
    "mode",
    "mb",
    "calls",
    "secs",
    "kb",
    "count",
    "url",
    "bucket",
    "key",
    "value",
    "tool",
    "arguments",
];

/// The outputs the attacks report, all wired to the end node.
const HOSTILE_OUTS: [&str; 14] = [
    "ok",
    "code",
    "message",
    "value",
    "status",
    "body",
    "result",
    "logged",
    "line_bytes",
    "emitted",
    "payload_bytes",
    "slept",
    "polls",
    "size",
];

// ---------------------------------------------------------------------------------------------------------
// Bundles and flows

/// Where the guest components are built: `AG_PLUGINS_DIR`, else `<repo>/target/plugins`.
fn built_dir() -> PathBuf {
    std::env::var_os("AG_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| abstractgateway_testkit::repo_root().join("target/plugins"))
}

/// The bytes of built component `name` (e.g. `hostile`).
fn component(name: &str) -> Vec<u8> {
    let p = built_dir().join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); build the plugins first: scripts/build-plugins.sh",
            p.display()
        )
    })
}

/// One component a bundle ships: `plugins/<file>.wasm` with `grants`.
struct Plug {
    file: String,
    bytes: Vec<u8>,
    grants: Value,
}

/// Built component `name`, shipped as `plugins/<name>.wasm`.
fn plug(name: &str, grants: Value) -> Plug {
    Plug {
        file: name.to_string(),
        bytes: component(name),
        grants,
    }
}

/// The `hostile` component with `grants`.
fn hostile(grants: Value) -> Plug {
    plug("hostile", grants)
}

/// Packs bundle `<id>@1.0.0` (its first flow the default entrypoint) in `work`; returns the `.flow` bytes.
fn pack(work: &Path, id: &str, flows: &[(&str, Value)], plugins: &[Plug]) -> Vec<u8> {
    let src = work.join(format!("src-{id}"));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("flows")).expect("mkdir flows");
    std::fs::create_dir_all(src.join("plugins")).expect("mkdir plugins");
    let mut map = serde_json::Map::new();
    for (fid, f) in flows {
        std::fs::write(src.join(format!("flows/{fid}.json")), f.to_string()).expect("flow");
        map.insert(fid.to_string(), json!(format!("flows/{fid}.json")));
    }
    let decls: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let path = format!("plugins/{}.wasm", p.file);
            std::fs::write(src.join(&path), &p.bytes).expect("wasm");
            json!({"path": path, "sha256": abstractgateway::bundle::sha256_hex(&p.bytes), "grants": p.grants})
        })
        .collect();
    let entrypoints: Vec<Value> = flows.iter().map(|(f, _)| json!({"flow_id": f})).collect();
    let manifest = json!({"bundle_format_version": "1", "bundle_id": id, "bundle_version": VERSION,
        "entrypoints": entrypoints, "default_entrypoint": flows[0].0, "flows": map, "plugins": decls});
    std::fs::write(src.join("manifest.json"), manifest.to_string()).expect("manifest");
    let out = work.join(format!("packed-{id}.flow"));
    abstractgateway::bundle::pack_dir(&src, &out).expect("pack");
    std::fs::read(&out).expect("packed bundle")
}

/// The file name a bundle is installed under.
fn file_name(id: &str) -> String {
    format!("{id}@{VERSION}.flow")
}

/// Packs bundle `id` straight into `<dir>/flows` (loaded at the next start or reload).
fn install(dir: &Path, id: &str, flows: &[(&str, Value)], plugins: &[Plug]) -> PathBuf {
    let bytes = pack(dir, id, flows, plugins);
    std::fs::create_dir_all(dir.join("flows")).expect("mkdir flows");
    let path = dir.join("flows").join(file_name(id));
    std::fs::write(&path, bytes).expect("install");
    path
}

/// A bundle whose only flow runs the `hostile` node with `grants`.
fn install_hostile(dir: &Path, id: &str, grants: Value) -> PathBuf {
    install(dir, id, &[("main", hostile_flow())], &[hostile(grants)])
}

/// The fixture bundle `echo-upper` in `<dir>/flows`.
fn copy_echo(dir: &Path) {
    std::fs::create_dir_all(dir.join("flows")).expect("mkdir flows");
    let name = "echo-upper@1.0.0.flow";
    std::fs::copy(
        binary::bundles_dir().join(name),
        dir.join("flows").join(name),
    )
    .expect("copy the fixture bundle");
}

/// The `hostile` node with every input and output wired.
fn hostile_flow() -> Value {
    one_node_flow("main", "hostile", &HOSTILE_INS, &HOSTILE_OUTS)
}

/// start(file_path, content) → write_file → end(bytes, file_path, workspace_root = the var).
fn write_flow(id: &str) -> Value {
    json!({"id": id, "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["file_path", "content"], json!({})),
        node("w", "write_file", true, &["exec-out"], &["file_path", "content"], &["bytes", "file_path"], json!({})),
        node("g", "get_var", false, &[], &["name"], &["value"], json!({"pinDefaults": {"name": "workspace_root"}})),
        node("e", "on_flow_end", true, &[], &["bytes", "file_path", "workspace_root"], &[], json!({}))],
      "edges": [
        edge("s", "exec-out", "w", "exec-in"),
        edge("w", "exec-out", "e", "exec-in"),
        edge("s", "file_path", "w", "file_path"),
        edge("s", "content", "w", "content"),
        edge("w", "bytes", "e", "bytes"),
        edge("w", "file_path", "e", "file_path"),
        edge("g", "value", "e", "workspace_root")]})
}

/// start(file_path, content, evil) → set_var workspace_root = evil → write_file → end.
fn set_var_write_flow(id: &str) -> Value {
    json!({"id": id, "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["file_path", "content", "evil"], json!({})),
        node("v", "set_var", true, &["exec-out"], &["name", "value"], &["value"],
             json!({"pinDefaults": {"name": "workspace_root"}})),
        node("w", "write_file", true, &["exec-out"], &["file_path", "content"], &["bytes", "file_path"], json!({})),
        node("g", "get_var", false, &[], &["name"], &["value"], json!({"pinDefaults": {"name": "workspace_root"}})),
        node("e", "on_flow_end", true, &[], &["bytes", "file_path", "workspace_root"], &[], json!({}))],
      "edges": [
        edge("s", "exec-out", "v", "exec-in"),
        edge("v", "exec-out", "w", "exec-in"),
        edge("w", "exec-out", "e", "exec-in"),
        edge("s", "evil", "v", "value"),
        edge("s", "file_path", "w", "file_path"),
        edge("s", "content", "w", "content"),
        edge("w", "bytes", "e", "bytes"),
        edge("w", "file_path", "e", "file_path"),
        edge("g", "value", "e", "workspace_root")]})
}

// ---------------------------------------------------------------------------------------------------------
// Talking to the server

/// Starts a run of `bundle` (its `flow`, else the default entrypoint); returns the answer.
async fn try_start(
    s: &Server,
    bundle: &str,
    flow: Option<&str>,
    session: Option<&str>,
    input: Value,
) -> (u16, Value) {
    let mut body = json!({"bundle_id": bundle, "input_data": input});
    if let Some(f) = flow {
        body["flow_id"] = json!(f);
    }
    if let Some(sid) = session {
        body["session_id"] = json!(sid);
    }
    s.post("/api/gateway/runs/start", body).await
}

/// Starts a run and returns its id.
async fn start(s: &Server, bundle: &str, input: Value) -> String {
    let (st, v) = try_start(s, bundle, None, None, input).await;
    assert_eq!(st, 200, "starting a run of {bundle}: {v}");
    v["run_id"].as_str().expect("run_id").to_string()
}

/// Starts a run of `bundle` and waits (`secs` at most) until it ends; returns its id and summary.
async fn run(s: &Server, bundle: &str, input: Value, secs: u64) -> (String, Value) {
    let id = start(s, bundle, input).await;
    let v = s.wait_done(&id, secs).await;
    (id, v)
}

/// Runs the hostile bundle `bundle` with `input`; the run must complete; returns its output.
async fn probe(s: &Server, bundle: &str, input: Value) -> (String, Value) {
    let (id, v) = run(s, bundle, input, 60).await;
    assert_eq!(v["status"], "completed", "{bundle}: {v}");
    (id, v["output"].clone())
}

/// The summary of run `id` (it must still be readable).
async fn summary(s: &Server, id: &str) -> Value {
    let (st, v) = s.get(&format!("/api/gateway/runs/{id}")).await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Every ledger record of the run, and the size of their JSON text.
async fn full_ledger(s: &Server, run_id: &str) -> (Vec<Value>, usize) {
    let (mut all, mut bytes, mut after) = (Vec::new(), 0usize, 0u64);
    loop {
        let r = s
            .client
            .get(s.url(&format!(
                "/api/gateway/runs/{run_id}/ledger?after={after}&limit=2000"
            )))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("ledger");
        assert_eq!(r.status(), 200);
        let text = r.text().await.expect("ledger body");
        bytes += text.len();
        let v: Value = serde_json::from_str(&text).expect("ledger JSON");
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return (all, bytes);
        }
        after = v["next_after"].as_u64().expect("next_after");
        all.extend(items);
    }
}

/// The host-call records of `interface.function`.
fn host_calls<'a>(recs: &'a [Value], interface: &str, function: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| {
            r["effect"]["type"] == "host_call"
                && r["effect"]["payload"]["interface"] == interface
                && r["effect"]["payload"]["function"] == function
        })
        .collect()
}

/// `/api/health` (no token needed).
async fn health(s: &Server) -> Value {
    let r = s
        .client
        .get(s.url("/api/health"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 200);
    r.json().await.expect("health JSON")
}

/// The warnings `/api/health` lists, joined.
async fn warnings(s: &Server) -> String {
    health(s).await["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The ids of the bundles the server lists.
async fn bundle_ids(s: &Server) -> Vec<String> {
    let (st, v) = s.get("/api/gateway/bundles").await;
    assert_eq!(st, 200, "{v}");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|b| b["bundle_id"].as_str().map(str::to_string))
        .collect()
}

/// Deletes bundle `id`.
async fn delete_bundle(s: &Server, id: &str) -> (u16, Value) {
    let r = s
        .client
        .delete(s.url(&format!("/api/gateway/bundles/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("delete");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The server answers, and an ordinary run of the fixture bundle completes.
async fn assert_serving(s: &Server) {
    assert_eq!(health(s).await["status"], "healthy");
    let (_, v) = run(s, "echo-upper", json!({"name": "Alice"}), 30).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["output"]["response"], "HELLO,  ALICE", "{v}");
}

/// The run's error text.
fn error_of(v: &Value) -> String {
    v["error"].as_str().unwrap_or_default().to_string()
}

/// The error of a run whose node failed: the run failed with it, or (a node-level error, which ends the
/// flow) the run completed with `{success: false, error, node}`.
fn node_error(v: &Value) -> Option<String> {
    match v["status"].as_str() {
        Some("failed") => Some(error_of(v)),
        Some("completed") if v["output"]["success"] == false => {
            v["output"]["error"].as_str().map(str::to_string)
        }
        _ => None,
    }
}

/// A path under `/tmp` no run may create; removed on drop if a failing run did create it anyway.
struct Outside(PathBuf);

impl Outside {
    fn new(tag: &str) -> Outside {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let p = PathBuf::from(format!(
            "/tmp/ag-hostile-{tag}-{}-{nanos}",
            std::process::id()
        ));
        assert!(!p.exists());
        Outside(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
    fn assert_untouched(&self) {
        assert!(
            !self.0.exists(),
            "{} was created outside the test's directory",
            self.0.display()
        );
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The workspace the host gives a run without a session.
fn host_workspace(dir: &Path, owner: &str) -> PathBuf {
    dir.join("data").join("workspaces").join(owner)
}

/// Copies `from` into `to` recursively, best effort (a file that vanishes meanwhile is skipped).
fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    for e in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            let _ = std::fs::copy(&src, &dst);
        }
    }
}

/// `abstractgateway bundle verify <path>` with `env`, reusing the compiled components of `cache_from`
/// (a server's data dir); returns whether it passed and what it printed on stderr.
fn verify(path: &Path, work: &Path, cache_from: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let data = work.join("verify-data");
    if !data.exists() {
        copy_tree(&cache_from.join("components"), &data.join("components"));
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_abstractgateway"));
    cmd.args(["bundle", "verify"])
        .arg(path)
        .arg("--data-dir")
        .arg(&data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ABSTRACTGATEWAY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bundle verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------------------
// 1. Workspaces are host-owned.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cannot_choose_or_move_its_workspace() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install(
        dir,
        "files",
        &[
            ("main", write_flow("main")),
            ("setvar", set_var_write_flow("setvar")),
        ],
        &[],
    );
    let mut s = Server::start_in(dir, &[]).await;

    // The input's workspace_root is ignored: the var shows the host's directory, the file lands there.
    let asked = Outside::new("input");
    let (st, v) = try_start(
        &s,
        "files",
        Some("main"),
        None,
        json!({"workspace_root": asked.path(), "file_path": "a.txt", "content": "from input"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let by_input = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&by_input, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    let ws = host_workspace(dir, &by_input);
    assert_eq!(
        done["output"]["workspace_root"],
        json!(ws.to_string_lossy()),
        "{done}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("a.txt")).expect("the file is in the host's workspace"),
        "from input"
    );
    asked.assert_untouched();

    // A flow that sets the var before writing still writes in the host's directory.
    let evil = Outside::new("setvar");
    let (st, v) = try_start(
        &s,
        "files",
        Some("setvar"),
        None,
        json!({"evil": evil.path(), "file_path": "b.txt", "content": "after set_var"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let by_var = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&by_var, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        std::fs::read_to_string(host_workspace(dir, &by_var).join("b.txt"))
            .expect("the file is in the host's workspace"),
        "after set_var"
    );
    evil.assert_untouched();

    // An absolute path outside the workspace is refused and nothing is written.
    let abs = Outside::new("abs");
    let (st, v) = try_start(
        &s,
        "files",
        Some("main"),
        None,
        json!({"file_path": format!("{}/c.txt", abs.path()), "content": "escape"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let escaped = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&escaped, 30).await;
    assert!(
        node_error(&done).is_some_and(|e| e.contains("outside the run's workspace")),
        "{done}"
    );
    abs.assert_untouched();

    // A session's runs share the session's directory.
    let (st, v) = try_start(
        &s,
        "files",
        Some("main"),
        Some("sess-1"),
        json!({"file_path": "d.txt", "content": "session"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let in_session = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&in_session, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(host_workspace(dir, "sess-1").join("d.txt").is_file());
    assert_serving(&s).await;

    // (R) The same directory after a restart.
    s.restart().await;
    for id in [&by_input, &by_var, &escaped, &in_session] {
        assert_eq!(summary(&s, id).await["status"], "completed");
    }
    let again = Outside::new("restart");
    let (st, v) = try_start(
        &s,
        "files",
        Some("main"),
        None,
        json!({"workspace_root": again.path(), "file_path": "e.txt", "content": "again"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let after = v["run_id"].as_str().expect("run_id").to_string();
    assert_eq!(s.wait_done(&after, 30).await["status"], "completed");
    assert!(host_workspace(dir, &after).join("e.txt").is_file());
    again.assert_untouched();
    assert_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_workspace_must_lie_inside_the_operators_roots() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install(dir, "files", &[("main", write_flow("main"))], &[]);
    let env = [("ABSTRACTGATEWAY_ALLOW_CLIENT_WORKSPACE_SCOPE", "1")];
    let mut s = Server::start_in(dir, &env).await;

    // A root inside the operator's roots is honoured.
    let inside = dir.join("data/workspaces/team/project");
    let start_in = async |s: &Server, file: &str| {
        try_start(
            s,
            "files",
            None,
            None,
            json!({"workspace_root": inside.to_string_lossy(), "file_path": file, "content": "yes"}),
        )
        .await
    };
    let (st, v) = start_in(&s, "x.txt").await;
    assert_eq!(st, 200, "{v}");
    let honoured = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&honoured, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["output"]["workspace_root"],
        json!(inside.to_string_lossy())
    );
    assert_eq!(
        std::fs::read_to_string(inside.join("x.txt")).expect("written"),
        "yes"
    );
    assert_serving(&s).await;

    // (R)
    s.restart().await;
    assert_eq!(summary(&s, &honoured).await["status"], "completed");
    let (st, v) = start_in(&s, "y.txt").await;
    assert_eq!(st, 200, "{v}");
    let after = v["run_id"].as_str().expect("run_id").to_string();
    assert_eq!(s.wait_done(&after, 30).await["status"], "completed");
    assert!(inside.join("y.txt").is_file());

    // A root outside them (directly, or climbing out with `..`) is refused as the client's error; no run
    // starts and nothing is written there.
    let outside = Outside::new("scope");
    let climb = format!(
        "{}/../../{}",
        dir.join("data/workspaces").display(),
        outside
            .0
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
    );
    let (_, before) = s.get("/api/gateway/runs?limit=100").await;
    let mut refusals = Vec::new();
    for asked in [outside.path().to_string(), climb] {
        let (st, v) = try_start(
            &s,
            "files",
            None,
            None,
            json!({"workspace_root": asked, "file_path": "x.txt", "content": "no"}),
        )
        .await;
        assert_ne!(st, 200, "{asked}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .is_some_and(|d| d.contains("outside the operator's workspace roots")),
            "{asked}: {v}"
        );
        refusals.push((st, v));
    }
    let (_, now) = s.get("/api/gateway/runs?limit=100").await;
    assert_eq!(
        now["items"].as_array().map(Vec::len),
        before["items"].as_array().map(Vec::len)
    );
    outside.assert_untouched();
    assert_serving(&s).await;
    for (st, v) in refusals {
        assert_eq!(st, 400, "a refused workspace_root is answered {st}: {v}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. The operator's policy caps what bundle plugins may be granted.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_beyond_the_operators_policy_are_refused_at_load_verify_and_upload() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        json!({"http": ["https://api.example.com"]}).to_string(),
    )
    .expect("policy");
    let policy = policy.to_string_lossy().into_owned();
    let env = [("ABSTRACTGATEWAY_PLUGIN_POLICY", policy.as_str())];
    // In the flows dir at startup: two bundles beyond the policy, one within it.
    let bigmem = install_hostile(dir, "bigmem", json!({"memory_mb": 1024}));
    let otherhttp = install_hostile(dir, "otherhttp", json!({"http": ["https://other.example"]}));
    install_hostile(dir, "okhttp", json!({"http": ["https://api.example.com"]}));
    let s = Server::start_in(dir, &env).await;

    let ids = bundle_ids(&s).await;
    assert!(ids.contains(&"okhttp".to_string()), "{ids:?}");
    assert!(ids.contains(&"echo-upper".to_string()), "{ids:?}");
    assert!(!ids.contains(&"bigmem".to_string()), "{ids:?}");
    assert!(!ids.contains(&"otherhttp".to_string()), "{ids:?}");
    let w = warnings(&s).await;
    assert!(
        w.contains("bigmem@1.0.0/hostile") && w.contains("memory_mb = 1024 (the cap is 256)"),
        "{w}"
    );
    assert!(
        w.contains("otherhttp@1.0.0/hostile")
            && w.contains("http origin \"https://other.example\""),
        "{w}"
    );
    assert!(!w.contains("okhttp"), "{w}");
    // The bundle within the policy runs (its plugin is granted nothing it asks for here).
    let (_, out) = probe(
        &s,
        "okhttp",
        json!({"attack": "kv_read", "bucket": "notes", "key": "k"}),
    )
    .await;
    assert_eq!(out["code"], "access-denied", "{out}");

    // `bundle verify` applies the same policy.
    let data = dir.join("data");
    for (path, want) in [
        (&bigmem, "memory_mb = 1024 (the cap is 256)"),
        (&otherhttp, "http origin"),
    ] {
        let (ok, err) = verify(path, dir, &data, &env);
        assert!(!ok && err.contains(want), "{}: {err}", path.display());
    }

    assert_serving(&s).await;

    // The same bundles are refused at upload, naming the plugin and the reason, and are not installed.
    let cases = [
        (
            "bigmem-up",
            hostile(json!({"memory_mb": 1024})),
            "memory_mb = 1024 (the cap is 256)",
        ),
        (
            "otherhttp-up",
            hostile(json!({"http": ["https://other.example"]})),
            "http origin",
        ),
    ];
    let mut problems = Vec::new();
    for (id, plugin, want) in cases {
        let name = format!("{id}@1.0.0/{}", plugin.file);
        let bytes = pack(dir, id, &[("main", hostile_flow())], &[plugin]);
        let (st, v) = s.upload(&file_name(id), &bytes, Some(true)).await;
        let detail = v["detail"].as_str().unwrap_or_default();
        if !(400..500).contains(&st) || !detail.contains(&name) || !detail.contains(want) {
            problems.push(format!(
                "upload of {id}: {st} {v}; installed: {}; listed: {}",
                dir.join("flows").join(file_name(id)).exists(),
                bundle_ids(&s).await.contains(&id.to_string())
            ));
        }
    }
    let w = warnings(&s).await;
    assert_serving(&s).await;
    assert!(
        problems.is_empty(),
        "bundles beyond the policy were accepted at upload:\n{}\n/api/health warnings:\n{w}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------------------
// 10. A tool plugin cannot call tools: a self-recursive tool ends at once with a clear error.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_recursive_tool_plugin_ends_with_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    // `hostile_tool` imports `tools` (the tool-plugin world names it for its types) and its `recurse`
    // calls itself through `tools.invoke`; local mode, so no approval stands in the way.
    install(
        dir,
        "recursive",
        &[("main", hostile_flow())],
        &[
            plug("hostile_tool", json!({"tools": ["recurse"]})),
            hostile(json!({"tools": ["recurse"]})),
        ],
    );
    let s = Server::start_in(dir, &[("ABSTRACTGATEWAY_TOOL_MODE", "local")]).await;
    assert_eq!(warnings(&s).await, "");
    let (id, out) = probe(
        &s,
        "recursive",
        json!({"attack": "tool_invoke", "tool": "recurse", "arguments": {"n": 1}}),
    )
    .await;
    assert_eq!(out["ok"], false, "{out}");
    assert_eq!(out["code"], "access-denied", "{out}");
    assert!(
        out["message"]
            .as_str()
            .is_some_and(|m| m.contains("a tool plugin cannot call tools")),
        "{out}"
    );
    // One level: the node's call, and the tool's refused call nested under it; nothing deeper.
    let (recs, _) = full_ledger(&s, &id).await;
    let invokes = host_calls(&recs, "tools", "invoke");
    assert_eq!(invokes.len(), 2, "{invokes:?}");
    assert_serving(&s).await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Outbound HTTP never reaches private addresses.

/// A loopback HTTP/1.1 server that counts the connections it accepts and answers every request with
/// `200` and `body` (of `content_type`), after reading the whole request.
fn counting_listener(content_type: &'static str, body: String) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            let mut need: Option<usize> = None;
            loop {
                if need.is_none()
                    && let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n")
                {
                    let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    need = Some(end + 4 + len);
                }
                if need.is_some_and(|n| req.len() >= n) {
                    break;
                }
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    (port, count)
}

/// A stand-in for an OpenAI-compatible model server: every request gets one short chat completion.
fn llm_stand_in() -> (u16, Arc<AtomicUsize>) {
    let completion = json!({"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "stand-in",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
    counting_listener("application/json", completion.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_http_never_reaches_private_addresses_unless_the_operator_allows_the_host() {
    let (port, accepted) = counting_listener("text/plain", "ok".to_string());
    let by_ip = format!("http://127.0.0.1:{port}");
    let by_name = format!("http://localhost:{port}");

    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install_hostile(dir, "net-ip", json!({"http": [by_ip]}));
    install_hostile(dir, "net-name", json!({"http": [by_name]}));
    let s = Server::start_in(dir, &[]).await;
    let urls = [
        ("net-ip", format!("{by_ip}/x")),
        // The same address spelled as one decimal number.
        ("net-ip", format!("http://2130706433:{port}/x")),
        // A name is checked on the addresses it resolves to.
        ("net-name", format!("{by_name}/x")),
    ];
    for (bundle, url) in &urls {
        let (_, out) = probe(&s, bundle, json!({"attack": "http_get", "url": url})).await;
        assert_eq!(out["ok"], false, "{url}: {out}");
        assert_eq!(out["code"], "access-denied", "{url}: {out}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused request reached the listener"
    );
    assert_serving(&s).await;
    drop(s);

    // The operator allows the address: the same call connects, so the check is what refused it.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let dir2 = tmp2.path();
    copy_echo(dir2);
    install_hostile(dir2, "net-ip", json!({"http": [by_ip]}));
    let s = Server::start_in(
        dir2,
        &[("ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")],
    )
    .await;
    let (_, out) = probe(
        &s,
        "net-ip",
        json!({"attack": "http_get", "url": format!("{by_ip}/x")}),
    )
    .await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"], "ok", "{out}");
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    assert_serving(&s).await;
}

// ---------------------------------------------------------------------------------------------------------
// 4, 5, 8, 11: kv namespaces, artifacts and events grants, the log budget, bad LLM options, tool approval.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_namespaced_granted_and_bounded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install_hostile(dir, "kv-a", json!({"kv": ["notes"]}));
    install_hostile(dir, "kv-b", json!({"kv": ["notes"]}));
    install_hostile(dir, "kv-span", json!({"kv": ["span_memory"]}));
    install(
        dir,
        "memo",
        &[(
            "main",
            one_node_flow("main", "memory_note", &["content"], &["note_id"]),
        )],
        &[],
    );
    install_hostile(dir, "art-none", json!({}));
    install_hostile(
        dir,
        "art-small",
        json!({"artifacts": true, "max_artifact_bytes": 1024}),
    );
    install_hostile(dir, "emit-none", json!({}));
    install_hostile(dir, "emit-yes", json!({"events": true}));
    install_hostile(dir, "logs", json!({"timeout_ms": 30000}));
    install_hostile(dir, "llm", json!({"llm": ["*"], "wall_timeout_ms": 30000}));
    install_hostile(dir, "tools-ask", json!({"tools": ["write_file"]}));
    let (llm_port, llm_calls) = llm_stand_in();
    let llm_url = format!("http://127.0.0.1:{llm_port}/v1");
    let s = Server::start_in(
        dir,
        &[
            ("LMSTUDIO_BASE_URL", llm_url.as_str()),
            ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
            ("ABSTRACTGATEWAY_MODEL", "stand-in"),
        ],
    )
    .await;
    assert_eq!(warnings(&s).await, "");

    // 4. kv: bundle B never sees what bundle A stored under the same bucket and key.
    let write = |v: &str| json!({"attack": "kv_write", "bucket": "notes", "key": "k", "value": v});
    let read = json!({"attack": "kv_read", "bucket": "notes", "key": "k"});
    assert_eq!(probe(&s, "kv-a", write("secret-a")).await.1["ok"], true);
    let (_, out) = probe(&s, "kv-b", read.clone()).await;
    assert_eq!(
        (&out["ok"], &out["value"]),
        (&json!(true), &Value::Null),
        "{out}"
    );
    assert_eq!(probe(&s, "kv-b", write("value-b")).await.1["ok"], true);
    let (_, out) = probe(&s, "kv-a", read.clone()).await;
    assert_eq!(out["value"], "secret-a", "{out}");
    let (_, out) = probe(&s, "kv-b", read).await;
    assert_eq!(out["value"], "value-b", "{out}");
    // A bundle plugin granted `span_memory` does not read what the built-in memory nodes stored there.
    let (memo, v) = run(&s, "memo", json!({"content": "the built-in's note"}), 30).await;
    assert_eq!(v["status"], "completed", "{v}");
    let (recs, _) = full_ledger(&s, &memo).await;
    let sets = host_calls(&recs, "kv", "set");
    assert!(!sets.is_empty(), "the memory node stored nothing");
    for rec in sets {
        let req = &rec["effect"]["payload"]["request"];
        assert_eq!(req["bucket"], "span_memory", "{rec}");
        let (_, out) = probe(
            &s,
            "kv-span",
            json!({"attack": "kv_read", "bucket": "span_memory", "key": req["key"]}),
        )
        .await;
        assert_eq!(
            (&out["ok"], &out["value"]),
            (&json!(true), &Value::Null),
            "{out}"
        );
    }

    // 5. artifacts.put needs its grant, and the grant's size cap holds.
    let (_, out) = probe(&s, "art-none", json!({"attack": "artifact_put", "mb": 1})).await;
    assert_eq!(
        (&out["ok"], &out["code"]),
        (&json!(false), &json!("access-denied")),
        "{out}"
    );
    let (_, out) = probe(&s, "art-small", json!({"attack": "artifact_put", "mb": 1})).await;
    assert_eq!(
        (&out["ok"], &out["code"]),
        (&json!(false), &json!("too-large")),
        "{out}"
    );
    let (_, out) = probe(&s, "art-small", json!({"attack": "artifact_put", "mb": 0})).await;
    assert_eq!(
        out["ok"], true,
        "an artifact within the cap is stored: {out}"
    );

    // emit needs `events`: refused emits are recorded as failed host calls.
    let (id, _) = probe(&s, "emit-none", json!({"attack": "emit_flood", "mb": 1})).await;
    let (recs, _) = full_ledger(&s, &id).await;
    let emits = host_calls(&recs, "durability", "emit");
    assert!(!emits.is_empty(), "no durability.emit record");
    for e in &emits {
        assert_eq!(e["status"], "failed", "{e}");
        assert_eq!(e["result"]["error"]["code"], "access-denied", "{e}");
    }
    // With the grant, a 16 MiB payload is refused as too large and none of it reaches the ledger.
    let (id, out) = probe(&s, "emit-yes", json!({"attack": "emit_flood", "mb": 16})).await;
    assert_eq!(out["emitted"], 2, "{out}");
    let (recs, bytes) = full_ledger(&s, &id).await;
    let emits = host_calls(&recs, "durability", "emit");
    assert_eq!(emits.len(), 2, "{recs:?}");
    for e in &emits {
        assert_eq!(e["status"], "failed", "{e}");
        assert_eq!(e["result"]["error"]["code"], "too-large", "{e}");
    }
    eprintln!("emit_flood 16 MiB: ledger {bytes} bytes");
    assert!(bytes < 64 << 10, "the ledger holds {bytes} bytes");

    // 100,000 log lines of 64 KiB: the run ends, and at most the 1 MiB budget of text is recorded.
    let (id, v) = run(
        &s,
        "logs",
        json!({"attack": "log_flood", "kb": 64, "count": 100_000}),
        120,
    )
    .await;
    eprintln!(
        "log_flood: {} {}",
        v["status"],
        node_error(&v).unwrap_or_default()
    );
    assert!(
        v["status"] == "completed" || error_of(&v).starts_with("PluginError"),
        "{v}"
    );
    let (recs, bytes) = full_ledger(&s, &id).await;
    let logged: usize = host_calls(&recs, "log", "log")
        .iter()
        .map(|r| {
            r["effect"]["payload"]["request"]["message"]
                .as_str()
                .map_or(0, str::len)
        })
        .sum();
    eprintln!("log_flood: {logged} bytes of log text recorded, ledger {bytes} bytes");
    assert!(logged <= 1 << 20, "{logged} bytes of log text recorded");
    assert!(
        bytes < (1 << 20) + (256 << 10),
        "the ledger holds {bytes} bytes"
    );

    // 8. Out-of-range LLM options never panic the host or leave the node in flight.
    let t = Instant::now();
    let (_, v) = run(&s, "llm", json!({"attack": "llm_bad_options"}), 90).await;
    eprintln!(
        "llm_bad_options: {} after {:?}: {}",
        v["status"],
        t.elapsed(),
        v["output"]
    );
    assert!(
        v["status"] == "completed" || error_of(&v).starts_with("PluginError"),
        "{v}"
    );
    // The options were read by the host, not stopped earlier: the model server was asked.
    assert!(llm_calls.load(Ordering::SeqCst) >= 1, "{v}");

    // 11. In passthrough mode (the default) a third-party plugin's tool call waits for a person.
    let (id, out) = probe(
        &s,
        "tools-ask",
        json!({"attack": "tool_invoke", "tool": "write_file",
               "arguments": {"file_path": "t.txt", "content": "unapproved"}}),
    )
    .await;
    assert_eq!(
        (&out["ok"], &out["code"]),
        (&json!(false), &json!("access-denied")),
        "{out}"
    );
    assert!(
        out["message"]
            .as_str()
            .is_some_and(|m| m.contains("not approved")),
        "{out}"
    );
    assert!(!host_workspace(dir, &id).join("t.txt").exists());
    assert_serving(&s).await;
}

// ---------------------------------------------------------------------------------------------------------
// 6. Blocked components have a deadline and honour cancel.

/// Waits until the run's plugin node `p` has started executing (its `started` record is in the ledger).
async fn wait_node_started(s: &Server, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let recs = s.ledger(id).await;
        if recs.iter().any(|r| r["node_id"] == "p") {
            // Dispatch follows the durable `started` record; give the executor a moment to admit it.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        assert!(Instant::now() < deadline, "node p of {id} never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_components_hit_their_deadline_or_stop_on_cancel() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install_hostile(dir, "short", json!({"timeout_ms": 1000}));
    install_hostile(dir, "long", json!({"timeout_ms": 60000}));
    let mut s = Server::start_in(dir, &[]).await;

    let mut ended = Vec::new();
    for attack in ["sleep", "poll"] {
        let t = Instant::now();
        let (id, v) = run(&s, "short", json!({"attack": attack, "secs": 600}), 30).await;
        let took = t.elapsed();
        assert_eq!(v["status"], "failed", "{attack}: {v}");
        assert!(
            error_of(&v).contains("CPU time limit of 1000 ms"),
            "{attack}: {v}"
        );
        assert!(took < Duration::from_secs(5), "{attack} took {took:?}");
        eprintln!("{attack} with a 1000 ms limit failed after {took:?}");
        ended.push((id, "failed"));
    }
    for attack in ["sleep", "poll"] {
        let id = start(&s, "long", json!({"attack": attack, "secs": 600})).await;
        wait_node_started(&s, &id).await;
        assert_eq!(summary(&s, &id).await["status"], "running");
        let t = Instant::now();
        let (st, c) = s
            .command(&format!("cancel-{attack}"), &id, "cancel", json!({}))
            .await;
        assert_eq!(st, 200, "{c}");
        let v = s.wait_done(&id, 10).await;
        let took = t.elapsed();
        assert_eq!(v["status"], "cancelled", "{attack}: {v}");
        assert!(
            took < Duration::from_secs(5),
            "{attack} cancel took {took:?}"
        );
        eprintln!("{attack} with a 60000 ms limit was cancelled after {took:?}");
        ended.push((id, "cancelled"));
    }
    assert_serving(&s).await;

    // (R)
    s.restart().await;
    for (id, status) in &ended {
        assert_eq!(summary(&s, id).await["status"], *status, "{id}");
    }
    let (_, v) = run(&s, "short", json!({"attack": "sleep", "secs": 600}), 30).await;
    assert!(error_of(&v).contains("CPU time limit of 1000 ms"), "{v}");
    assert_serving(&s).await;
}

// ---------------------------------------------------------------------------------------------------------
// 7. The instance pool keeps a reserve for built-in components.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_blocked_plugins_does_not_starve_built_in_components() {
    const SLEEPERS: usize = 100;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install_hostile(dir, "pool", json!({"timeout_ms": 4000}));
    install(dir, "plain", &[("main", write_flow("main"))], &[]);
    let s = Server::start_in(dir, &[]).await;

    let t = Instant::now();
    let mut sleepers = Vec::with_capacity(SLEEPERS);
    for _ in 0..SLEEPERS {
        sleepers.push(start(&s, "pool", json!({"attack": "sleep", "secs": 600})).await);
    }
    let started = t.elapsed();
    let (plain, v) = run(
        &s,
        "plain",
        json!({"file_path": "p.txt", "content": "built-in"}),
        30,
    )
    .await;
    eprintln!(
        "{SLEEPERS} sleepers started in {started:?}; the built-in run ended after {:?}",
        t.elapsed()
    );
    assert_eq!(v["status"], "completed", "{v}");
    assert!(host_workspace(dir, &plain).join("p.txt").is_file());
    let plain_done = v["updated_at"].as_str().expect("updated_at").to_string();

    let mut busy = 0;
    let mut first_end: Option<String> = None;
    let mut running_before = 0;
    for id in &sleepers {
        let v = s.wait_done(id, 60).await;
        assert_eq!(v["status"], "failed", "{v}");
        let e = error_of(&v);
        assert!(
            e.contains("CPU time limit of 4000 ms") || e.contains("busy"),
            "{v}"
        );
        busy += usize::from(e.contains("busy"));
        let end = v["updated_at"].as_str().expect("updated_at").to_string();
        assert_eq!(end.len(), plain_done.len());
        if first_end.as_ref().is_none_or(|f| &end < f) {
            first_end = Some(end);
        }
        // Its node had started before the built-in run ended.
        let recs = s.ledger(id).await;
        if recs.iter().any(|r| {
            r["node_id"] == "p"
                && r["started_at"]
                    .as_str()
                    .is_some_and(|at| at < plain_done.as_str())
        }) {
            running_before += 1;
        }
    }
    let first_end = first_end.expect("sleepers");
    eprintln!(
        "built-in done at {plain_done}; first sleeper ended at {first_end}; {running_before} sleepers had \
         started before; {busy} failed busy; all ended after {:?}",
        t.elapsed()
    );
    assert!(
        plain_done < first_end,
        "the built-in run ended at {plain_done}, after a sleeper ended at {first_end}"
    );
    assert!(
        running_before >= 96,
        "only {running_before} sleepers had started when the built-in run ended"
    );
    assert_serving(&s).await;
}

// ---------------------------------------------------------------------------------------------------------
// 9. A bundle shipping a built-in component's bytes gets a plugin of its own.

/// Bundle `copycat`'s write_file (the built-in's bytes, granted nothing) fails without writing; bundle
/// `plain`'s (the built-in) writes its file. Returns both run ids.
async fn copycat_and_plain(s: &Server, dir: &Path) -> (String, String) {
    let (x, v) = run(
        s,
        "copycat",
        json!({"file_path": "x.txt", "content": "copy"}),
        30,
    )
    .await;
    assert!(
        node_error(&v).is_some_and(|e| e.contains("access-denied") && e.contains("write_file")),
        "{v}"
    );
    assert!(!host_workspace(dir, &x).join("x.txt").exists());
    let (y, v) = run(
        s,
        "plain",
        json!({"file_path": "y.txt", "content": "built-in"}),
        30,
    )
    .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(
        std::fs::read_to_string(host_workspace(dir, &y).join("y.txt")).expect("written"),
        "built-in"
    );
    (x, y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_a_built_in_components_bytes_does_not_change_the_built_in() {
    let files = abstractgateway::plugins::builtin::components()
        .into_iter()
        .find(|(name, _, _)| name.contains("files"))
        .map(|(name, bytes, _)| (name, bytes.to_vec()))
        .expect("the built-in files component");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    install(
        dir,
        "copycat",
        &[("main", write_flow("main"))],
        &[Plug {
            file: files.0.to_string(),
            bytes: files.1,
            grants: json!({}),
        }],
    );
    install(dir, "plain", &[("main", write_flow("main"))], &[]);
    let mut s = Server::start_in(dir, &[]).await;
    assert_eq!(warnings(&s).await, "");

    let (x, y) = copycat_and_plain(&s, dir).await;
    assert_serving(&s).await;

    // (R)
    s.restart().await;
    assert!(node_error(&summary(&s, &x).await).is_some());
    assert_eq!(summary(&s, &y).await["status"], "completed");
    copycat_and_plain(&s, dir).await;
    assert_serving(&s).await;
}

// ---------------------------------------------------------------------------------------------------------
// 10, 11. Tool plugins serve their own bundle's runs only; in local mode granted tools run.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundles_tool_plugin_serves_only_that_bundle() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    let owner_plugins = || {
        vec![
            plug("text_tool_provider", json!({})),
            hostile(json!({"tools": ["count_words"]})),
        ]
    };
    install(dir, "owner", &[("main", hostile_flow())], &owner_plugins());
    install_hostile(
        dir,
        "other",
        json!({"tools": ["count_words", "write_file"]}),
    );
    let s = Server::start_in(dir, &[("ABSTRACTGATEWAY_TOOL_MODE", "local")]).await;
    assert_eq!(warnings(&s).await, "");

    let count =
        json!({"attack": "tool_invoke", "tool": "count_words", "arguments": {"text": "a b c"}});
    let (_, out) = probe(&s, "owner", count.clone()).await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["result"], json!({"words": 3}), "{out}");
    let (_, out) = probe(&s, "other", count.clone()).await;
    assert_eq!(
        (&out["ok"], &out["code"]),
        (&json!(false), &json!("not-found")),
        "{out}"
    );

    // 11. In local mode a granted tool runs, inside the host's workspace.
    let (id, out) = probe(
        &s,
        "other",
        json!({"attack": "tool_invoke", "tool": "write_file",
               "arguments": {"file_path": "t.txt", "content": "local"}}),
    )
    .await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(
        std::fs::read_to_string(host_workspace(dir, &id).join("t.txt")).expect("written"),
        "local"
    );

    // Deleting the owner takes its tool away: the same bundle re-uploaded without it finds no tool.
    let (st, v) = delete_bundle(&s, "owner").await;
    assert_eq!(st, 200, "{v}");
    let bytes = pack(
        dir,
        "owner",
        &[("main", hostile_flow())],
        &[hostile(json!({"tools": ["count_words"]}))],
    );
    let (st, v) = s.upload(&file_name("owner"), &bytes, Some(true)).await;
    assert_eq!(st, 200, "{v}");
    let (_, out) = probe(&s, "owner", count).await;
    assert_eq!(
        (&out["ok"], &out["code"]),
        (&json!(false), &json!("not-found")),
        "{out}"
    );
    assert_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_overwritten_without_its_tool_plugin_loses_the_tool() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    copy_echo(dir);
    let s = Server::start_in(dir, &[("ABSTRACTGATEWAY_TOOL_MODE", "local")]).await;
    let caller = || hostile(json!({"tools": ["count_words"]}));
    let count =
        json!({"attack": "tool_invoke", "tool": "count_words", "arguments": {"text": "a b c"}});
    let with_tool = pack(
        dir,
        "owner",
        &[("main", hostile_flow())],
        &[plug("text_tool_provider", json!({})), caller()],
    );
    let (st, v) = s.upload(&file_name("owner"), &with_tool, Some(true)).await;
    assert_eq!(st, 200, "{v}");
    let (_, out) = probe(&s, "owner", count.clone()).await;
    assert_eq!(out["result"], json!({"words": 3}), "{out}");

    // The same id and version, uploaded again (overwrite) without the tool plugin.
    let without = pack(dir, "owner", &[("main", hostile_flow())], &[caller()]);
    let (st, v) = s.upload(&file_name("owner"), &without, Some(true)).await;
    assert_eq!(st, 200, "{v}");
    let (_, out) = probe(&s, "owner", count).await;
    assert_serving(&s).await;
    assert_eq!(
        (&out["ok"], &out["code"]),
        (&json!(false), &json!("not-found")),
        "the overwritten bundle no longer ships the tool plugin, yet its runs still reach the tool: {out}"
    );
}
