//! A panic fails one run, never the runner (engine + runner + store in process): a builtin input that
//! used to panic or abort the process (a format width) now fails with Python's error, a step that panics
//! fails its run with a record naming the node and the cause, and the runner goes on with other runs.

mod in_process;

use in_process::flowgen::{edge, node, write_bundle};
use in_process::wait_for;

use std::path::Path;
use std::sync::Arc;

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::engine::{NodeRegistry, PinExprError, PinExprEvaluator};
use abstractgateway::run::{Obj, RunState, RunStatus};
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use serde_json::{Value, json};

/// A pin-expression sandbox with a bug: it panics on `explode()` and returns the pin's value otherwise.
struct BuggySandbox;

impl PinExprEvaluator for BuggySandbox {
    fn check(&self, _: &Value, _: &[(&str, &str)]) -> Result<(), PinExprError> {
        Ok(())
    }

    fn eval(
        &self,
        _: &Value,
        exprs: &[(&str, &str, &Value)],
        _: &Obj,
    ) -> Result<Vec<Value>, PinExprError> {
        exprs
            .iter()
            .map(|(site, source, value)| {
                if source.contains("explode") {
                    panic!("sandbox bug evaluating {site}");
                }
                Ok((*value).clone())
            })
            .collect()
    }
}

/// `start(template, values) -> format -> end(result)`, optionally with a pin expression on the template.
fn format_flow(id: &str, template_expr: Option<&str>) -> Value {
    let extra = match template_expr {
        Some(e) => json!({"pinExpressions": {"template": e}}),
        None => json!({}),
    };
    json!({"id": id, "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["template", "values"], json!({})),
        node("f", "format", true, &["exec-out"], &["template", "values"], &["result"], extra),
        node("e", "on_flow_end", true, &[], &["result"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "f", "exec-in"), edge("f", "exec-out", "e", "exec-in"),
                edge("s", "template", "f", "template"), edge("s", "values", "f", "values"),
                edge("f", "result", "e", "result")]})
}

fn gateway(dir: &Path) -> Arc<Gateway> {
    let flows = [
        ("fmt", format_flow("fmt", None)),
        ("boom", format_flow("boom", Some("explode()"))),
    ];
    let b = write_bundle(dir, &flows, "fmt");
    let bundle = Arc::new(read_bundle(&b, &Limits::default()).expect("bundle loads"));
    let mut registry = NodeRegistry::new();
    registry.set_pin_evaluator(Arc::new(BuggySandbox));
    let (flows, _, problems) = catalog::build(vec![bundle], &registry);
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner: true,
            max_steps: 100,
            executor: None,
        },
        flows,
    )
    .expect("open")
}

fn start(gw: &Gateway, flow: &str, input: Value) -> String {
    let req = StartRequest {
        workflow_id: format!("features@1.0.0:{flow}"),
        input: input.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    gw.start_run(req).expect("start").run_id
}

fn ended(gw: &Gateway, id: &str) -> RunState {
    wait_for(gw, id, |r| r.status.is_terminal())
}

fn format_run(gw: &Gateway, template: &str, values: Value) -> RunState {
    let id = start(gw, "fmt", json!({"template": template, "values": values}));
    ended(gw, &id)
}

#[test]
fn format_width_bombs_fail_their_run_with_pythons_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path());
    // Past sys.maxsize: Python's ValueError. Before, the width saturated and `repeat` panicked the runner.
    let r = format_run(&gw, "{a:>99999999999999999999}", json!({"a": "x"}));
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        r.output,
        Some(
            json!({"success": false, "error": "Too many decimal digits in format string", "node": "f"})
        )
    );
    // Representable but huge (100 GB of padding): refused before allocating. Before, the process aborted.
    for (template, values) in [
        ("{a:>99999999999}", json!({"a": "x"})),
        ("{a:{w}}", json!({"a": 1, "w": "099999999999,"})),
        ("{a:.99999999f}", json!({"a": 1.5})),
    ] {
        let r = format_run(&gw, template, values);
        let out = r.output.expect("output");
        assert_eq!(out["success"], json!(false), "{template}: {out}");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("over the gateway's limit"),
            "{template}: {error}"
        );
    }
    // The runner is still there and ordinary widths work.
    let r = format_run(&gw, "[{a:>5}]", json!({"a": "x"}));
    assert_eq!(
        r.output,
        Some(json!({"result": "[    x]", "success": true}))
    );
}

#[test]
fn a_panicking_step_fails_its_run_and_the_others_go_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path());
    let input = json!({"template": "hi {a}", "values": {"a": "there"}});
    let boom = start(&gw, "boom", input.clone());
    let beside = start(&gw, "fmt", input.clone());
    let r = ended(&gw, &boom);
    assert_eq!(r.status, RunStatus::Failed);
    let error = r.error.clone().unwrap_or_default();
    assert_eq!(
        error,
        "InternalError: node 'f' hit a gateway bug: sandbox bug evaluating f.template"
    );
    // The failure is recorded at the node, followed by the terminal status; nothing half-done.
    let recs = in_process::ledger_summary(&gw, &boom);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0], ("f".into(), "failed".into(), Some(error)));
    assert_eq!((recs[1].0.as_str(), recs[1].1.as_str()), ("f", "completed"));
    // The run started alongside and one started afterwards both complete: the runner is alive.
    for id in [beside, start(&gw, "fmt", input)] {
        let r = ended(&gw, &id);
        assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
        assert_eq!(
            r.output,
            Some(json!({"result": "hi there", "success": true}))
        );
    }
    // A restart recovers nothing to re-run: the failed run stays failed.
    drop(gw);
    let gw = gateway(dir.path());
    let r = gw.store().get_run(&boom).expect("get").expect("run");
    assert_eq!(r.status, RunStatus::Failed);
    let id = start(&gw, "fmt", json!({"template": "{a}", "values": {"a": 1}}));
    assert_eq!(
        ended(&gw, &id).output,
        Some(json!({"result": "1", "success": true}))
    );
}
