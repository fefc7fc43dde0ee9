//! Pin expressions and flow `functions` (§3.6), evaluated by the Python component that
//! `scripts/build-python-plugin.sh` builds, through the real runner and store: what an expression sees,
//! how a failing, endless or escaping one ends, and what is refused when the flow loads.

mod in_process;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::engine::NodeRegistry;
use abstractgateway::run::{RunState, RunStatus};
use abstractgateway::runner::{Flows, Gateway, GatewayOptions, catalog};
use in_process::flowgen::{edge, node, write_bundle};
use in_process::run_to_end;
use serde_json::{Value, json};

/// The bundle's flows compiled with the Python component loaded; `Err` carries the load problems.
fn compile(dir: &Path, flow: &Value) -> Result<Flows, String> {
    let host = in_process::python::host();
    let bundle = write_bundle(dir, &[("main", flow.clone())], "main");
    let b = Arc::new(read_bundle(&bundle, &Limits::default()).expect("bundle loads"));
    let (flows, _, problems) = catalog::build(vec![b], &host.registry());
    match problems.first() {
        Some(p) => Err(p.message.clone()),
        None => Ok(flows),
    }
}

fn gateway(dir: &Path, flow: Value) -> Arc<Gateway> {
    let flows = compile(dir, &flow).unwrap_or_else(|e| panic!("flow does not load: {e}"));
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner: true,
            max_steps: 100,
            executor: Some(in_process::python::host()),
        },
        flows,
    )
    .expect("open")
}

/// start(`msg`, `n`) → end with pins `ins`, whose data carries `extra` (pin expressions, defaults).
fn end_flow(ins: &[&str], wires: &[(&str, &str)], extra: Value, functions: Value) -> Value {
    let mut edges = vec![edge("s", "exec-out", "e", "exec-in")];
    edges.extend(wires.iter().map(|(from, to)| edge("s", from, "e", to)));
    json!({"id": "main", "entryNode": "s", "functions": functions, "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["msg", "n"], json!({})),
        node("e", "on_flow_end", true, &[], ins, &[], extra)],
      "edges": edges})
}

/// The run's output when the end node's pull failed: completed with `{success: false, error, node}`.
fn end_error(r: &RunState) -> String {
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.as_ref().expect("output");
    assert_eq!(out["success"], json!(false), "{out}");
    assert_eq!(out["node"], json!("e"));
    out["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_flow_with_a_pin_expression_is_not_stepped_before_its_start_commits() {
    // An expression runs in the Python component, outside the run: such a flow is not self-contained, so its
    // runs take no step before their start is durable. The same flow without the expression is.
    let dir = tempfile::tempdir().expect("tmp");
    let contained = |extra: Value| {
        let flow = end_flow(&["a"], &[("n", "a")], extra, json!([]));
        let flows = compile(dir.path(), &flow).unwrap_or_else(|e| panic!("loads: {e}"));
        flows
            .get("features@1.0.0:main")
            .expect("main")
            .self_contained
    };
    assert!(!contained(json!({"pinExpressions": {"a": "value + 1"}})));
    assert!(contained(json!({})));
}

#[test]
fn expressions_see_value_vars_helpers_and_the_flow_functions() {
    let dir = tempfile::tempdir().expect("tmp");
    let functions = json!([
        {"name": "shout", "kind": "transform", "description": "name + '!'",
         "code": "def shout(s):\n    return _suffix(s, '!')\n\ndef _suffix(s, tail):\n    return s + tail\n"},
        {"name": "double", "code": "def double(x):\n    return x * 2\n"}
    ]);
    let extra = json!({"pinDefaults": {"a": 41},
    "pinExpressions": {
        "a": "value + 1",
        "b": "vars.user['profile']['name'].upper()",
        "c": "len(text_of(value))",
        "d": "shout(vars.user['profile']['name'])",
        "f": "double(value)",
        "g": "  ",
    }});
    let flow = end_flow(
        &["a", "b", "c", "d", "f", "g"],
        &[("msg", "c"), ("n", "f"), ("n", "g")],
        extra,
        functions,
    );
    let gw = gateway(dir.path(), flow);
    let r = run_to_end(
        &gw,
        json!({"user": {"profile": {"name": "Ada"}}, "msg": {"text": "hello"}, "n": 21}),
    );
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.expect("output");
    assert_eq!(out["a"], json!(42), "{out}");
    assert_eq!(out["b"], json!("ADA"));
    assert_eq!(out["c"], json!(5));
    assert_eq!(out["d"], json!("Ada!"));
    assert_eq!(out["f"], json!(42));
    // A blank expression is no expression: the wire's value stands.
    assert_eq!(out["g"], json!(21));
    assert_eq!(out["success"], json!(true));
}

#[test]
fn a_plugin_node_and_a_pure_node_get_their_pins_through_expressions() {
    let dir = tempfile::tempdir().expect("tmp");
    // s.n → add(a, b = 10*2 via expression) → code(x = value*2 via expression) → end.
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["n"], json!({})),
        node("sum", "add", false, &[], &["a", "b"], &["result"],
            json!({"pinExpressions": {"b": "vars.k * 2"}})),
        node("c", "code", true, &["exec-out"], &["x"], &["output"],
            json!({"codeBody": "return x + 1", "pinExpressions": {"x": "value * 2"}})),
        node("e", "on_flow_end", true, &[], &["out"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "c", "exec-in"), edge("c", "exec-out", "e", "exec-in"),
                edge("s", "n", "sum", "a"), edge("sum", "result", "c", "x"),
                edge("c", "output", "e", "out")]});
    let gw = gateway(dir.path(), flow);
    let r = run_to_end(&gw, json!({"n": 1, "k": 10}));
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    // (1 + 10*2) * 2 + 1
    assert_eq!(r.output.expect("output")["out"], json!(43.0));
    let rec = &r.vars["_temp"]["node_outputs"]["c"];
    assert_eq!(rec["success"], json!(true), "{rec}");
}

#[test]
fn a_raising_expression_fails_its_node_with_the_seed_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = end_flow(
        &["a"],
        &[],
        json!({"pinExpressions": {"a": "vars.user['age'] / 0"}}),
        json!([]),
    );
    let gw = gateway(dir.path(), flow);
    let r = run_to_end(&gw, json!({"user": {"age": 3}}));
    assert_eq!(
        end_error(&r),
        "pin expression on e.a failed: ZeroDivisionError: division by zero — expression: vars.user['age'] / 0"
    );
    assert_eq!(r.vars["_flow_error_node"], json!("e"));

    // An unknown var names the ones there are; a non-JSON value is refused.
    let dir = tempfile::tempdir().expect("tmp");
    let flow = end_flow(
        &["a", "b"],
        &[],
        json!({"pinExpressions": {"a": "vars.nope", "b": "{1, 2}"}}),
        json!([]),
    );
    let gw = gateway(dir.path(), flow);
    let err = end_error(&run_to_end(&gw, json!({"user": 1, "_hidden": 2})));
    assert!(
        err.starts_with("pin expression on e.a failed: KeyError:")
            && err.contains("unknown run var 'nope' (known: user, workspace_root)"),
        "{err}"
    );
}

#[test]
fn an_effect_node_whose_expression_raises_fails_the_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("ask", "ask_user", true, &["exec-out"], &["prompt"], &["response"],
            json!({"pinExpressions": {"prompt": "int('x')"}})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "ask", "exec-in"), edge("ask", "exec-out", "e", "exec-in")]});
    let gw = gateway(dir.path(), flow);
    let r = run_to_end(&gw, json!({}));
    assert_eq!(r.status, RunStatus::Failed);
    let err = r.error.unwrap_or_default();
    assert!(
        err.starts_with("PinExpressionError: pin expression on ask.prompt failed: ValueError:"),
        "{err}"
    );
}

#[test]
fn an_endless_expression_stops_at_the_cpu_limit_and_the_host_carries_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = end_flow(
        &["a"],
        &[],
        json!({"pinExpressions": {"a": "any(iter(int, 1)) if vars.spin else 'done'"}}),
        json!([]),
    );
    let gw = gateway(dir.path(), flow);
    let started = Instant::now();
    let err = end_error(&run_to_end(&gw, json!({"spin": true})));
    assert_eq!(
        err,
        "pin expression on e.a: stopped: it exceeded the CPU time limit of 5000 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let r = run_to_end(&gw, json!({"spin": false}));
    assert_eq!(r.output.expect("output")["a"], json!("done"));
}

#[test]
fn escapes_are_refused_when_the_flow_loads_and_when_evaluated() {
    for (expr, expected) in [
        ("__import__('os').getcwd()", "'__import__' is not allowed"),
        (
            "().__class__.__bases__",
            "Access to dunder attributes ('__bases__') is not allowed",
        ),
        ("open('/etc/passwd').read()", "'open' is not allowed"),
        ("exec('1')", "'exec' is not allowed"),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let flow = end_flow(
            &["a"],
            &[],
            json!({"pinExpressions": {"a": expr}}),
            json!([]),
        );
        let err = compile(dir.path(), &flow).err().unwrap_or_default();
        assert!(
            err.contains(&format!("pin expression on e.a refused: {expected}")),
            "{expr}: {err}"
        );
    }
    // The sandbox refuses them at run time too (a flow compiled elsewhere is not trusted).
    let reg = in_process::python::host().registry();
    let eval = reg.pin_evaluator().expect("the Python component evaluates");
    let vars = serde_json::Map::new();
    let err = eval
        .eval(
            &Value::Null,
            &[("n.p", "__import__('os').environ", &Value::Null)],
            &vars,
        )
        .expect_err("refused");
    assert_eq!(
        err.message,
        "pin expression on n.p refused: '__import__' is not allowed"
    );
    assert_eq!(
        err.index,
        Some(0),
        "the failing expression is named by index"
    );
    // One call evaluates a node's expressions in order, each over its own pin's value.
    let (a, b) = (json!([2, 3, 1]), json!("x"));
    let started = Instant::now();
    for _ in 0..10 {
        let v = eval
            .eval(
                &Value::Null,
                &[("n.a", "sorted(value)[::-1]", &a), ("n.b", "value * 3", &b)],
                &vars,
            )
            .expect("evaluates");
        assert_eq!(v, vec![json!([3, 2, 1]), json!("xxx")]);
    }
    eprintln!("one node's evaluation: {:?}", started.elapsed() / 10);
}

#[test]
fn syntax_errors_and_impure_functions_are_load_errors() {
    for (exprs, functions, expected) in [
        (
            json!({"a": "1 +"}),
            json!([]),
            "pin expression on e.a does not parse",
        ),
        (
            json!({"a": "x = 1"}),
            json!([]),
            "pin expression on e.a does not parse",
        ),
        (
            json!({"a": "f(1)"}),
            json!([{"name": "f", "code": "def f(x)\n  return x"}]),
            "flow function 'f' does not parse",
        ),
        (
            json!({"a": "f(1)"}),
            json!([{"name": "f", "code": "import os\ndef f(x):\n    return x"}]),
            "flow function 'f': only `def` statements are allowed at the top level",
        ),
        (
            json!({"a": "f(1)"}),
            json!([{"name": "f", "code": "def f(x, seen=[]):\n    return x"}]),
            "flow function 'f': a mutable default argument (List) is not allowed",
        ),
        (
            json!({"a": "len(1)"}),
            json!([{"name": "len", "code": "def len(x):\n    return 1"}]),
            "flow function name 'len' shadows a sandbox builtin/helper",
        ),
        (
            json!({"a": "f(1)"}),
            json!([{"name": "f", "code": "def g(x):\n    return x"}]),
            "flow function entry 'f' must define a callable named 'f'",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let flow = end_flow(&["a"], &[], json!({"pinExpressions": exprs}), functions);
        let err = compile(dir.path(), &flow).err().unwrap_or_default();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn without_the_python_component_a_flow_with_expressions_is_refused() {
    let flow = end_flow(
        &["a"],
        &[],
        json!({"pinExpressions": {"a": "value"}}),
        json!([]),
    );
    let err = abstractgateway::flow::compile(&flow, &NodeRegistry::new()).expect_err("refused");
    assert!(
        err.message
            .contains("need the Python component (python_code)"),
        "{}",
        err.message
    );
    assert_eq!(err.node_id.as_deref(), Some("e"));
    // Blank expressions and unused functions need nothing.
    let flow = end_flow(
        &["a"],
        &[],
        json!({"pinExpressions": {"a": ""}}),
        json!([{"name": "f", "code": "def f():\n    return 1"}]),
    );
    assert!(abstractgateway::flow::compile(&flow, &NodeRegistry::new()).is_ok());
}

/// Issue: an endless expression used to hold the single runner thread for its whole deadline, so three of
/// them stalled every other run. Now each is evaluated on a thread of its own.
#[test]
fn endless_expressions_never_stall_the_other_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = end_flow(
        &["a"],
        &[],
        // Loops without allocating, so it ends at the CPU limit rather than at the memory limit.
        json!({"pinExpressions": {"a": "any(iter(int, 1)) if vars.spin else 'done'"}}),
        json!([]),
    );
    let gw = gateway(dir.path(), flow);
    let start = |spin: bool| {
        let req = abstractgateway::runner::StartRequest {
            workflow_id: "features@1.0.0:main".into(),
            input: json!({ "spin": spin })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..Default::default()
        };
        gw.start_run(req).expect("start").run_id
    };
    let spinners: Vec<String> = (0..3).map(|_| start(true)).collect();
    // Each quick run completes while every spinner is still evaluating: nothing waits on them.
    for _ in 0..3 {
        let quick = start(false);
        let r = in_process::wait_for(&gw, &quick, |r| r.status.is_terminal());
        assert_eq!(r.output.expect("output")["a"], json!("done"));
        for id in &spinners {
            let s = gw.store().get_run(id).expect("get").expect("run");
            assert_eq!(s.status, RunStatus::Running, "spinner {id} ended first");
        }
    }
    for id in &spinners {
        let r = in_process::wait_for(&gw, id, |r| r.status.is_terminal());
        assert_eq!(
            end_error(&r),
            "pin expression on e.a: stopped: it exceeded the CPU time limit of 5000 ms"
        );
    }
}

/// A volatile upstream value (a random node) feeding an expression: the step that waits for the answer
/// runs again, pulls a new random value, and still takes the answer instead of asking forever.
#[test]
fn a_volatile_input_to_an_expression_settles() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("r", "random_int", false, &[], &["min", "max"], &["result"],
            json!({"pinDefaults": {"min": 0, "max": 1000000}})),
        node("e", "on_flow_end", true, &[], &["x"], &[],
            json!({"pinExpressions": {"x": "value * 2 if value % 1 == 0 else -1"}}))],
      "edges": [edge("s", "exec-out", "e", "exec-in"), edge("r", "result", "e", "x")]});
    let gw = gateway(dir.path(), flow);
    for _ in 0..3 {
        let r = run_to_end(&gw, json!({}));
        assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
        let x = r.output.expect("output")["x"].as_i64().expect("an int");
        assert!((0..=2_000_000).contains(&x) && x % 2 == 0, "{x}");
    }
}

/// A run cancelled while its expression is being evaluated ends cancelled; the late answer is dropped.
#[test]
fn a_run_cancelled_while_its_expression_evaluates_stays_cancelled() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = end_flow(
        &["a"],
        &[],
        json!({"pinExpressions": {"a": "[0 for _ in iter(int, 1)]"}}),
        json!([]),
    );
    let gw = gateway(dir.path(), flow);
    let req = abstractgateway::runner::StartRequest {
        workflow_id: "features@1.0.0:main".into(),
        ..Default::default()
    };
    let id = gw.start_run(req).expect("start").run_id;
    gw.submit_command(abstractgateway::store::NewCommand {
        command_id: "c1".into(),
        run_id: id.clone(),
        kind: "cancel".into(),
        payload: json!({"reason": "test"}),
        ts: None,
        client_id: None,
    })
    .expect("cancel");
    let r = in_process::wait_for(&gw, &id, |r| r.status.is_terminal());
    assert_eq!(r.status, RunStatus::Cancelled, "{:?}", r.error);
    // The evaluation ends at its deadline; the run must not change after it.
    std::thread::sleep(Duration::from_secs(6));
    let after = gw.store().get_run(&id).expect("get").expect("run");
    assert_eq!(after.status, RunStatus::Cancelled);
    assert_eq!(after.ledger_len, r.ledger_len);
}
