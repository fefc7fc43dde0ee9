//! A node plugin written in Python, end to end through the real binary: `plugin new --lang python`
//! scaffolds it, the test edits it as an author would, `plugin build` compiles it with componentize-py,
//! `bundle pack` packs it with its flows, the server takes the bundle as an upload and runs it, and the
//! plugin gets exactly its grants (a granted kv bucket works; another bucket, HTTP, files and the
//! environment are refused by the same sandbox as a Rust component's).
//!
//! The build needs `python3` and componentize-py, which `plugin build` installs (pinned) into
//! `target/python-plugin/venv`, the virtualenv `scripts/build-python-plugin.sh` uses: the test reuses it
//! when it is there, and fails, never skips, when it cannot be installed.

mod binary;
#[allow(dead_code)]
#[path = "in_process/flowgen.rs"]
mod flowgen;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use abstractgateway::plugins::Grants;
use binary::Server;
use flowgen::one_node_flow;
use serde_json::{Value, json};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
}

fn repo() -> PathBuf {
    abstractgateway_testkit::repo_root()
}

/// The virtualenv of componentize-py the repository's Python build uses (created there when missing).
fn venv() -> PathBuf {
    repo().join("target/python-plugin/venv")
}

fn cli(args: &[&str]) -> Output {
    cli_in(Path::new("."), args)
}

/// The binary run in `cwd` (relative paths in `args` are relative to it).
fn cli_in(cwd: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(cwd)
        .env_remove("ABSTRACTGATEWAY_COMPONENTIZE_VENV")
        .env_remove("ABSTRACTGATEWAY_COMPONENTIZE_PY")
        .env_remove("ABSTRACTGATEWAY_PYTHON")
        .output()
        .expect("the binary runs")
}

fn text(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `plugin new NAME --lang python --dir DIR`; asserts it succeeded and returns the plugin directory.
fn new_python(name: &str, dir: &Path) -> PathBuf {
    let out = cli(&[
        "plugin",
        "new",
        name,
        "--lang",
        "python",
        "--dir",
        utf8(dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir.join(name)
}

/// `plugin build DIR` with the repository's virtualenv; a failure names its reason (a missing
/// componentize-py included) and fails the test.
fn build(dir: &Path) -> Output {
    let venv = venv();
    let out = cli(&["plugin", "build", utf8(dir), "--venv", utf8(&venv)]);
    assert!(
        out.status.success(),
        "`abstractgateway plugin build` failed; it needs python3 (with venv and pip, and network access the \
         first time, to install componentize-py into {}):\n{}",
        venv.display(),
        stderr(&out)
    );
    out
}

#[test]
fn the_lang_is_rust_or_python() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = cli(&[
        "plugin",
        "new",
        "p",
        "--lang",
        "cobol",
        "--dir",
        utf8(tmp.path()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'cobol' for '--lang <LANG>'")
            && stderr(&out).contains("[possible values: rust, python]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 0);

    let out = cli(&[
        "plugin",
        "new",
        "r",
        "--lang",
        "rust",
        "--dir",
        utf8(tmp.path()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tmp.path().join("r/Cargo.toml").is_file());
    assert!(tmp.path().join("r/src/lib.rs").is_file());

    let out = cli(&[
        "plugin",
        "new",
        "p",
        "--lang",
        "python",
        "--sdk-path",
        utf8(tmp.path()),
        "--dir",
        utf8(tmp.path()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("apply to --lang rust only"));
    assert!(!tmp.path().join("p").exists());
}

/// NAME names one directory inside --dir and nothing else: no separators, dots, links or overwrites.
#[test]
fn a_python_plugin_name_cannot_leave_its_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let parent = tmp.path().join("plugins");
    fs::create_dir(&parent).expect("mkdir");
    for bad in [
        "../escape",
        "..",
        ".",
        ".hidden",
        "a/b",
        "/abs",
        "a\\b",
        "",
        "1abc",
        "with space",
        "é",
        &"a".repeat(65),
    ] {
        let out = cli(&[
            "plugin",
            "new",
            bad,
            "--lang",
            "python",
            "--dir",
            utf8(&parent),
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            stderr(&out).contains("invalid plugin name"),
            "{bad:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(fs::read_dir(&parent).expect("ls").count(), 0);
    let names: Vec<_> = fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["plugins"], "nothing written beside --dir");

    // A link named NAME is not followed, and an author's directory is never overwritten.
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, parent.join("linked")).expect("symlink");
    let out = cli(&[
        "plugin",
        "new",
        "linked",
        "--lang",
        "python",
        "--dir",
        utf8(&parent),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&elsewhere).expect("ls").count(), 0);
    let dir = new_python("mine", &parent);
    fs::write(dir.join("app.py"), "# my work\n").expect("write");
    let out = cli(&[
        "plugin",
        "new",
        "mine",
        "--lang",
        "python",
        "--dir",
        utf8(&parent),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(text(&dir.join("app.py")), "# my work\n");
}

#[test]
fn the_python_scaffold_is_typed_from_the_hosts_wit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = cli(&[
        "plugin",
        "new",
        "py-words",
        "--lang",
        "python",
        "--dir",
        utf8(tmp.path()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("abstractgateway plugin build"));
    let dir = tmp.path().join("py-words");

    let app = text(&dir.join("app.py"));
    for line in [
        "from componentize_py_types import Err",
        "from wit_world import exports",
        "from wit_world.exports import node",
        "from wit_world.imports import log, types",
        "class Node(exports.Node):",
        "def describe(self) -> list[node.NodeType]:",
        "def run(self, inv: node.Invocation) -> node.NodeResult:",
        "NODE_TYPE = \"py_words\"",
        "log.log(log.Level.INFO,",
    ] {
        assert!(app.contains(line), "app.py lacks {line:?}:\n{app}");
    }
    // The grants file is what the plugin host reads for a bundle's or a plugins dir's component.
    let grants: Value =
        serde_json::from_str(&text(&dir.join("py-words.grants.json"))).expect("JSON");
    let grants = Grants::parse(&grants).expect("valid grants");
    assert!(grants.http.is_empty() && grants.kv.is_empty() && grants.llm.is_empty());
    // The WIT it was generated against is the host's, byte for byte.
    for f in ["types.wit", "host.wit", "node.wit", "worlds.wit"] {
        assert_eq!(
            text(&dir.join("wit").join(f)),
            text(&repo().join("wit").join(f)),
            "{f}"
        );
    }
    let readme = text(&dir.join("README.md"));
    for s in [
        "abstractgateway plugin build .",
        "abstractgateway plugin bindings .",
        "-w abstractgateway:plugin/node-plugin@",
        "\"path\": \"plugins/py-words.wasm\"",
        "`py_words`",
    ] {
        assert!(readme.contains(s), "README lacks {s:?}");
    }
    assert!(text(&dir.join("pyproject.toml")).contains("extraPaths = [\"bindings\"]"));
    assert!(text(&dir.join(".gitignore")).contains("/bindings/"));
}

/// Directories `plugin build` cannot build are refused before anything runs (exit 2), and a missing Python
/// or componentize-py is a clear failure (exit 1).
#[test]
fn plugin_build_refuses_what_it_cannot_build() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = new_python("p", tmp.path());
    let build_with = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["plugin", "build", utf8(dir)];
        args.extend(extra);
        cli(&args)
    };
    let refused = |out: Output, code: i32, msg: &str| {
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(msg),
            "{msg:?} not in {}",
            stderr(&out)
        );
    };

    refused(
        build_with(&tmp.path().join("missing"), &[]),
        2,
        "is not a directory",
    );
    let out = cli(&["plugin", "new", "crate", "--dir", utf8(tmp.path())]);
    assert!(out.status.success(), "{}", stderr(&out));
    refused(
        build_with(&tmp.path().join("crate"), &[]),
        2,
        "is a Rust plugin crate",
    );
    refused(
        build_with(&dir, &["--python", "/nonexistent/python3"]),
        1,
        "cannot run /nonexistent/python3",
    );
    refused(
        build_with(&dir, &["--componentize-py", "/nonexistent/componentize-py"]),
        1,
        "componentize-py not found or not runnable: /nonexistent/componentize-py",
    );

    fs::write(
        dir.join("p.grants.json"),
        r#"{"kv": ["notes"], "filesystem": true}"#,
    )
    .expect("write");
    refused(build_with(&dir, &[]), 2, "unknown field `filesystem`");
    fs::write(dir.join("p.grants.json"), r#"{"memory_mb": 100000}"#).expect("write");
    refused(
        build_with(&dir, &[]),
        2,
        "p.grants.json: grants.memory_mb must be 1..=1024",
    );
    fs::write(dir.join("p.grants.json"), "{}").expect("write");
    fs::write(dir.join("q.grants.json"), "{}").expect("write");
    refused(
        build_with(&dir, &[]),
        2,
        "expected exactly one NAME.grants.json, which names the plugin (found p.grants.json, q.grants.json)",
    );
    fs::remove_file(dir.join("q.grants.json")).expect("rm");
    fs::remove_file(dir.join("p.grants.json")).expect("rm");
    fs::write(dir.join("..grants.json"), "{}").expect("write");
    refused(build_with(&dir, &[]), 2, "invalid plugin name \".\"");
    fs::remove_file(dir.join("..grants.json")).expect("rm");
    fs::write(dir.join("p.grants.json"), "{}").expect("write");

    let types = dir.join("wit/types.wit");
    let other = text(&types).replace("abstractgateway:plugin@", "abstractgateway:plugin@9");
    fs::write(&types, other).expect("write");
    refused(
        build_with(&dir, &[]),
        2,
        "but this abstractgateway builds node plugins for abstractgateway:plugin@",
    );
    fs::remove_dir_all(dir.join("wit")).expect("rm");
    refused(build_with(&dir, &[]), 2, "no WIT package there");
    assert!(!dir.join("p.wasm").exists());
}

// ---------------------------------------------------------------------------------------------------------
// End to end

/// The author's edit: a second node type, `probe`, that tries the host's capabilities and reports what
/// it got, appended to the scaffold's `app.py` (whose `Node` it extends).
const PROBE: &str = r#"

# --- added by the test: a node type that reports which capabilities it was given ---
import os

from wit_world.imports import http, kv


def _code_of(call) -> str:
    try:
        return "ok: " + repr(call())
    except Err as e:
        return e.value.code.name
    except OSError as e:
        return type(e).__name__


class Node(Node):  # type: ignore[no-redef]
    def describe(self) -> list[node.NodeType]:
        pins = [node.Pin(id=p, label=p, pin_type="string") for p in ("notes", "secrets", "http", "files")]
        return super().describe() + [
            node.NodeType(name="probe", label="Probe", description="", inputs=[],
                          outputs=pins + [node.Pin(id="environ", label="environ", pin_type="number")],
                          effect=None, reads=node.Reads(0), on_input_failure=node.InputFailure.REPORT,
                          on_failure=node.NodeFailure.FAIL_RUN)
        ]

    def run(self, inv: node.Invocation) -> node.NodeResult:
        if inv.node_type != "probe":
            return super().run(inv)

        def notes():
            kv.set("notes", "k", b"kept")
            return kv.get("notes", "k")

        return outputs({
            "notes": _code_of(notes),
            "secrets": _code_of(lambda: kv.set("secrets", "k", b"x")),
            "http": _code_of(lambda: http.fetch(http.Request(
                method=http.Method.GET, url="https://example.com/", headers=[], body=None, timeout_ms=None))),
            "files": _code_of(lambda: open("/etc/hostname").read()),
            "environ": len(os.environ),
        })
"#;

const PROBE_OUTS: [&str; 5] = ["notes", "secrets", "http", "files", "environ"];

/// An unpacked bundle `pywords@1.0.0` in `dir` shipping `wasm` with `grants`: flow `main` runs the
/// scaffold's node type, flow `probe` the test's.
fn bundle_source(dir: &Path, wasm: &Path, grants: &Value) -> PathBuf {
    let src = dir.join("bundle");
    fs::create_dir_all(src.join("flows")).expect("mkdir");
    fs::create_dir_all(src.join("plugins")).expect("mkdir");
    fs::copy(wasm, src.join("plugins/py-words.wasm")).expect("copy the component");
    let flows = [
        (
            "main",
            one_node_flow("main", "py_words", &["text"], &["text", "words"]),
        ),
        ("probe", one_node_flow("probe", "probe", &[], &PROBE_OUTS)),
    ];
    for (id, flow) in &flows {
        fs::write(src.join(format!("flows/{id}.json")), flow.to_string()).expect("flow");
    }
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "pywords", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}, {"flow_id": "probe"}], "default_entrypoint": "main",
        "flows": {"main": "flows/main.json", "probe": "flows/probe.json"},
        "plugins": [{"path": "plugins/py-words.wasm", "sha256": "auto", "grants": grants}]});
    fs::write(src.join("manifest.json"), manifest.to_string()).expect("manifest");
    src
}

/// Starts flow `flow` of the bundle and waits for its end; returns the run's id and summary.
async fn run(s: &Server, flow: &str, input: Value) -> (String, Value) {
    let (st, v) = s
        .post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "pywords", "flow_id": flow, "input_data": input}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let id = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&id, 120).await;
    (id, done)
}

/// The host-call records of `interface.function` in a ledger.
fn host_calls<'a>(recs: &'a [Value], interface: &str, function: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| {
            r["effect"]["type"] == "host_call"
                && r["effect"]["payload"]["interface"] == interface
                && r["effect"]["payload"]["function"] == function
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_is_built_packed_and_run_with_its_grants() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");

    // new → edit (a second node type; grants: kv bucket `notes` only) → build.
    let dir = new_python("py-words", tmp.path());
    let mut app = text(&dir.join("app.py"));
    app.push_str(PROBE);
    fs::write(dir.join("app.py"), &app).expect("edit app.py");
    let grants = json!({"kv": ["notes"], "memory_mb": 64, "timeout_ms": 10000});
    fs::write(dir.join("py-words.grants.json"), grants.to_string()).expect("grants");
    // A mistake in app.py is componentize-py's error, and no component is written (built as an author
    // would, from the plugin's directory: `plugin build .`).
    fs::write(dir.join("app.py"), format!("{app}\ndef broken(:\n")).expect("edit app.py");
    let venv = venv();
    let out = cli_in(&dir, &["plugin", "build", ".", "--venv", utf8(&venv)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("SyntaxError"), "{}", stderr(&out));
    let left: Vec<_> = fs::read_dir(&dir)
        .expect("ls")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("wasm"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    fs::write(dir.join("app.py"), &app).expect("edit app.py");
    let out = build(&dir);
    let wasm = dir.join("py-words.wasm");
    let bytes = fs::read(&wasm).expect("the component is written");
    assert_eq!(&bytes[..8], b"\0asm\x0d\x00\x01\x00", "not a component");
    let export = b"abstractgateway:plugin/node@";
    assert!(
        bytes.windows(export.len()).any(|w| w == export),
        "the component does not export the node interface"
    );
    let digest = abstractgateway::bundle::sha256_hex(&bytes);
    assert!(
        stdout(&out).contains(&format!("sha256 {digest}")),
        "{}",
        stdout(&out)
    );
    let built = t0.elapsed();

    // The typed bindings for the author's editor: the names app.py imports are the generated ones.
    let out = cli_in(&dir, &["plugin", "bindings", ".", "--venv", utf8(&venv)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let generated = dir.join("bindings/wit_world");
    let exports = text(&generated.join("exports/__init__.py"));
    assert!(exports.contains("class Node(Protocol):"), "{exports}");
    assert!(
        exports.contains("def run(self, inv: node.Invocation) -> node.NodeResult:"),
        "{exports}"
    );
    let node_py = text(&generated.join("exports/node.py"));
    for class in [
        "class Pin:",
        "class NodeType:",
        "class Invocation:",
        "class NodeResult:",
        "class Reads(Flag):",
    ] {
        assert!(node_py.contains(class), "{class} not in {node_py}");
    }
    assert!(
        text(&generated.join("imports/log.py"))
            .contains("def log(lvl: Level, message: str) -> None:")
    );
    assert!(text(&generated.join("imports/types.py")).contains("ACCESS_DENIED"));
    assert!(dir.join("bindings/componentize_py_types.py").is_file());

    // pack, with the grants file as the manifest's grants.
    let grants: Value =
        serde_json::from_str(&text(&dir.join("py-words.grants.json"))).expect("JSON");
    let src = bundle_source(tmp.path(), &wasm, &grants);
    let packed = tmp.path().join("pywords.flow");
    let out = cli(&["bundle", "pack", utf8(&src), "--out", utf8(&packed)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&["bundle", "inspect", utf8(&packed)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    assert!(inspected.to_string().contains(&digest), "{inspected}");

    // The server takes it as an upload (compiling the component first) and runs both flows.
    let server_dir = tmp.path().join("server");
    fs::create_dir_all(server_dir.join("flows")).expect("mkdir");
    let s = Server::start_in(&server_dir, &[]).await;
    // The server compiles the component (CPython: tens of seconds on a busy machine) before it answers, so
    // this client waits longer than the harness's.
    let patient = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(300))
        .build()
        .expect("client");
    let packed = fs::read(&packed).expect("packed");
    let (st, v) = s.upload_with(&patient, "pywords.flow", &packed, None).await;
    assert_eq!(st, 200, "upload: {v}");
    let uploaded = t0.elapsed();

    let (id, v) = run(&s, "main", json!({"text": "hello python plugin"})).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(
        v["output"],
        json!({"text": "HELLO PYTHON PLUGIN", "words": 3, "success": true})
    );
    let recs = s.ledger(&id).await;
    let logs = host_calls(&recs, "log", "log");
    assert_eq!(logs.len(), 1, "{recs:?}");
    assert!(
        logs[0].to_string().contains("node p got 19 characters"),
        "{}",
        logs[0]
    );
    let started = recs
        .iter()
        .find(|r| r["node_id"] == "p" && r["status"] == "started")
        .expect("started record");
    assert_eq!(started["effect"]["payload"]["digest"], digest.as_str());

    // Its errors are the node's: a missing input fails the node with the plugin's message.
    let (_, v) = run(&s, "main", json!({})).await;
    assert!(
        v.to_string()
            .contains("input 'text' is required (a string)"),
        "{v}"
    );
    assert_ne!(v["output"]["success"], true, "{v}");

    // Its grants, and nothing else: the granted bucket works; another bucket and HTTP are refused
    // (`access-denied`, before anything leaves the host), and the sandbox has no files or environment.
    let (id, v) = run(&s, "probe", json!({})).await;
    assert_eq!(v["status"], "completed", "{v}");
    let o = &v["output"];
    eprintln!("probe: {o}");
    assert_eq!(o["notes"], "ok: b'kept'", "{v}");
    assert_eq!(o["secrets"], "ACCESS_DENIED", "{v}");
    assert_eq!(o["http"], "ACCESS_DENIED", "{v}");
    assert!(
        ["FileNotFoundError", "PermissionError", "OSError"]
            .contains(&o["files"].as_str().unwrap_or("")),
        "{v}"
    );
    assert_eq!(o["environ"], 0, "{v}");
    let recs = s.ledger(&id).await;
    let sets = host_calls(&recs, "kv", "set");
    assert_eq!(sets.len(), 2, "{recs:?}");
    assert!(sets[0]["result"].get("ok").is_some(), "{}", sets[0]);
    assert_eq!(
        sets[1]["result"]["error"]["code"], "access-denied",
        "{}",
        sets[1]
    );
    let fetches = host_calls(&recs, "http", "fetch");
    assert_eq!(fetches.len(), 1, "{recs:?}");
    assert_eq!(
        fetches[0]["result"]["error"]["code"], "access-denied",
        "{}",
        fetches[0]
    );

    eprintln!(
        "python plugin: built in {:.1} s, uploaded (compiled) by {:.1} s, all done in {:.1} s",
        built.as_secs_f64(),
        uploaded.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
