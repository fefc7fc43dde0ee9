//! The Python `code` and `function` nodes, run by the component `scripts/build-python-plugin.sh` builds,
//! through the real runner and store: the seed's output record and error semantics, and a sandbox that
//! contains files, network, environment, processes, endless loops and memory bombs.

mod in_process;

use std::path::Path;
use std::sync::Arc;

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::run::{RunState, RunStatus};
use abstractgateway::runner::{Gateway, GatewayOptions, catalog};
use in_process::flowgen::{edge, node, write_bundle};
use in_process::run_to_end;
use serde_json::{Value, json};

/// start → `code` node (pins `ins` wired from the start node, `extra` merged into its data) → end(output, success).
fn code_flow(ty: &str, ins: &[&str], extra: Value) -> Value {
    let mut edges = vec![
        edge("s", "exec-out", "c", "exec-in"),
        edge("c", "exec-out", "e", "exec-in"),
        edge("c", "output", "e", "output"),
        edge("c", "success", "e", "ok"),
    ];
    edges.extend(ins.iter().map(|i| edge("s", i, "c", i)));
    json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], ins, json!({})),
        node("c", ty, true, &["exec-out"], ins, &["output", "success"], extra),
        node("e", "on_flow_end", true, &[], &["output", "ok"], &[], json!({}))],
      "edges": edges})
}

fn gateway(dir: &Path, flow: Value) -> Arc<Gateway> {
    let host = in_process::python::host();
    let bundle = write_bundle(dir, &[("main", flow)], "main");
    let b = Arc::new(read_bundle(&bundle, &Limits::default()).expect("bundle loads"));
    let (flows, _, problems) = catalog::build(vec![b], &host.registry());
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner: true,
            max_steps: 100,
            executor: Some(host),
        },
        flows,
    )
    .expect("open")
}

/// Runs `body` as a code node's `codeBody` with pins `ins`; returns the run.
fn run_body(body: &str, ins: &[&str], input: Value) -> RunState {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow("code", ins, json!({"codeBody": body})),
    );
    run_to_end(&gw, input)
}

/// The run's output when the code node raised: completed with the node's failure record.
fn failure(r: &RunState) -> &serde_json::Map<String, Value> {
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r
        .output
        .as_ref()
        .and_then(Value::as_object)
        .expect("output");
    assert_eq!(out["success"], json!(false), "{out:?}");
    assert_eq!(out["node"], json!("c"));
    out
}

fn error_of(r: &RunState) -> String {
    failure(r)["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn code_body_sees_its_pins_and_returns_the_seed_record() {
    let r = run_body(
        "total = sum(nums) + bonus\nreturn {'total': total, 'label': str(total)}",
        &["nums", "bonus"],
        json!({"nums": [1, 2, 3], "bonus": 10}),
    );
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.expect("output");
    assert_eq!(out["output"], json!({"total": 16, "label": "16"}));
    assert_eq!(out["ok"], json!(true));
}

#[test]
fn the_code_record_merges_a_dict_result_and_reports_permissions() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["x"], json!({})),
        node("c", "code", true, &["exec-out"], &["x"], &["output"],
            json!({"code": "def transform(_input):\n    return {'double': _input.get('x') * 2}\n"})),
        node("e", "on_flow_end", true, &[], &["rec"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "c", "exec-in"), edge("c", "exec-out", "e", "exec-in"),
                edge("s", "x", "c", "x"), edge("c", "double", "e", "rec")]});
    let gw = gateway(dir.path(), flow);
    let r = run_to_end(&gw, json!({"x": 21}));
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(r.output.expect("output")["rec"], json!(42));
    let rec = &r.vars["_temp"]["node_outputs"]["c"];
    assert_eq!(rec["success"], json!(true), "{rec}");
    assert_eq!(rec["result"], json!({"double": 42}));
    assert_eq!(rec["execution"]["permissions"], json!("sandbox"));
}

#[test]
fn an_exception_completes_the_run_with_success_false() {
    let r = run_body("return out", &["x"], json!({"x": 1}));
    let out = failure(&r);
    assert_eq!(
        out["error"],
        json!("Runtime error: name 'out' is not defined")
    );
    assert_eq!(out["output"], Value::Null);
    assert_eq!(out["result"], Value::Null);
    assert_eq!(out["execution"]["permissions"], json!("sandbox"));
    assert_eq!(r.vars["_flow_error_node"], json!("c"));
}

#[test]
fn full_access_is_refused_and_syntax_errors_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow(
            "code",
            &[],
            json!({"codeBody": "return 1", "pinDefaults": {"permissions": "full_access"}}),
        ),
    );
    assert!(
        error_of(&run_to_end(&gw, json!({}))).starts_with("full_access code execution is disabled")
    );
    let r = run_body("return (", &[], json!({}));
    assert!(
        error_of(&r).starts_with("Syntax error:"),
        "{}",
        error_of(&r)
    );
}

#[test]
fn files_network_environment_and_processes_are_out_of_reach() {
    for (body, expected) in [
        ("return open('/etc/passwd').read()", "'open' is not allowed"),
        (
            "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 80))\nreturn 1",
            "Import of 'socket' is not allowed",
        ),
        (
            "import os\nreturn dict(os.environ)",
            "Import of 'os' is not allowed",
        ),
        (
            "import subprocess\nreturn subprocess.run(['ls']).returncode",
            "Import of 'subprocess' is not allowed",
        ),
        (
            "return ().__class__.__bases__[0].__subclasses__()",
            "dunder attributes",
        ),
    ] {
        let r = run_body(body, &[], json!({}));
        let err = error_of(&r);
        assert!(err.contains(expected), "{body}: {err}");
    }
}

#[test]
fn the_component_itself_grants_no_files_even_past_the_python_policy() {
    // `linecache` reads files and is not on the deny-list: only the sandbox stands between it and the disk.
    let r = run_body(
        "import linecache\nreturn len(linecache.getlines('/etc/passwd')) + len(linecache.getlines('Cargo.toml'))",
        &[],
        json!({}),
    );
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(r.output.expect("output")["output"], json!(0));
}

#[test]
fn an_endless_loop_stops_at_the_cpu_limit_and_other_runs_carry_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow(
            "code",
            &["spin"],
            json!({"codeBody": "while spin:\n    pass\nreturn 'done'"}),
        ),
    );
    let started = std::time::Instant::now();
    let r = run_to_end(&gw, json!({"spin": true}));
    let err = error_of(&r);
    assert!(err.contains("CPU") || err.contains("time"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let r = run_to_end(&gw, json!({"spin": false}));
    assert_eq!(r.output.expect("output")["output"], json!("done"));
}

#[test]
fn a_memory_bomb_stops_at_the_memory_limit_and_other_runs_carry_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow(
            "code",
            &["mb"],
            json!({"codeBody": "blocks = []\nfor _ in range(mb):\n    blocks.append(bytearray(1 << 20))\nreturn len(blocks)"}),
        ),
    );
    let r = run_to_end(&gw, json!({"mb": 2048}));
    let out = failure(&r);
    eprintln!("memory bomb: {}", out["error"]);
    let r = run_to_end(&gw, json!({"mb": 8}));
    assert_eq!(r.output.expect("output")["output"], json!(8));
}

#[test]
fn the_legacy_function_node_runs_code_and_expressions() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow(
            "function",
            &["a"],
            json!({"code": "def double(x):\n    return x['a'] * 2\n", "functionName": "double"}),
        ),
    );
    let r = run_to_end(&gw, json!({"a": 4}));
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(r.output.expect("output")["output"], json!(8));

    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow("function", &["a"], json!({"expression": "a + 1"})),
    );
    assert_eq!(
        run_to_end(&gw, json!({"a": 4})).output.expect("output")["output"],
        json!(5)
    );

    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(
        dir.path(),
        code_flow(
            "function",
            &["a"],
            json!({"code": "def transform(x):\n    return 1 / 0\n"}),
        ),
    );
    assert_eq!(
        error_of(&run_to_end(&gw, json!({"a": 4}))),
        "Runtime error: division by zero"
    );
}

#[test]
fn the_shipped_grants_are_tight() {
    let (_, grants) = in_process::python::component();
    assert_eq!(grants.memory_mb, 256);
    assert_eq!(grants.timeout_ms, 5_000);
    assert_eq!(grants.max_output_bytes, 1 << 20);
    assert!(grants.http.is_empty() && grants.llm.is_empty() && grants.tools.is_empty());
    assert!(grants.kv.is_empty() && !grants.voice);
}

/// The binary ships this component and loads it on a flow's first need of what its descriptor says it provides:
/// the descriptor must be what the component declares, or a flow would wait for a type that never comes.
#[test]
fn the_shipped_descriptor_is_what_the_component_declares() {
    use abstractgateway::plugins::{Loaded, shipped::PYTHON};
    let host = abstractgateway::plugins::PluginHost::new(
        &in_process::python::cache_root(),
        Default::default(),
        None,
    )
    .expect("plugin host");
    let (bytes, grants) = in_process::python::component();
    let Ok(Loaded::Nodes(p)) = host.load(in_process::python::NAME, &bytes, grants) else {
        panic!("the Python component does not load as a node plugin");
    };
    assert_eq!(PYTHON.name, in_process::python::NAME);
    let mut declared: Vec<&str> = p.types.iter().map(|t| t.name.as_str()).collect();
    declared.sort();
    let mut promised = PYTHON.node_types.to_vec();
    promised.sort();
    assert_eq!(declared, promised);
    assert_eq!(p.pin_eval.is_some(), PYTHON.pin_expressions);
}
