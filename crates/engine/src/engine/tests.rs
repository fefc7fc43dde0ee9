//! Engine tests on the real no-LLM fixture flows, driven without a store.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::flow::compile;
use crate::run::{Obj, RunState, RunStatus, StepRecord};

pub(crate) fn shared_dir() -> PathBuf {
    abstractgateway_testkit::shared_dir()
}

struct NoHost;
impl Host for NoHost {
    fn start_child(
        &mut self,
        _: &RunState,
        wf: &str,
        _: Obj,
        _: Option<String>,
    ) -> Result<String, exec::ChildStartError> {
        Err(exec::ChildStartError::NotFound(format!(
            "no child runs here ({wf})"
        )))
    }
    fn emit_event(&mut self, _: &RunState, _: &[String], _: &Value) -> Vec<String> {
        vec![]
    }
}

fn new_run(vars: Value) -> RunState {
    let mut run = crate::run::new_run_state(
        "w",
        "",
        vars.as_object().cloned().unwrap_or_default(),
        None,
        None,
        None,
    );
    run.run_id = "r1".into();
    run.session_id = Some("r1".into());
    run
}

fn load(bundle: &str, flow: &str) -> crate::flow::CompiledFlow {
    let p = shared_dir().join(format!(
        "fixtures/bundles/no-llm/src/{bundle}/flows/{flow}.json"
    ));
    let raw: Value = serde_json::from_slice(&std::fs::read(&p).expect("fixture")).expect("json");
    compile(&raw, &NodeRegistry::new()).expect("compiles")
}

fn summary(recs: &[StepRecord]) -> Vec<(String, String, Option<String>)> {
    recs.iter()
        .map(|r| {
            let eff = r
                .effect
                .as_ref()
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .map(String::from);
            (r.node_id.clone(), r.status.clone(), eff)
        })
        .collect()
}

fn drive(flow: &crate::flow::CompiledFlow, vars: Value) -> (RunState, Vec<StepRecord>) {
    let mut run = new_run(vars);
    run.current_node = Some(flow.entry.clone());
    let mut recs = vec![];
    advance(&mut run, flow, &mut NoHost, 1000, &mut recs);
    (run, recs)
}

#[test]
fn echo_upper_matches_the_seed() {
    let flow = load("echo-upper@1.0.0", "echo");
    let (run, recs) = drive(&flow, json!({"name": "Alice"}));
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.output,
        Some(json!({"response": "HELLO,  ALICE", "length": 13, "success": true}))
    );
    assert_eq!(
        summary(&recs),
        vec![
            ("end".into(), "completed".into(), None),
            ("end".into(), "completed".into(), Some("emit_event".into()))
        ]
    );
}

#[test]
fn chain_writes_only_completion_records() {
    let flow = load("chain@1.0.0", "chain");
    let (run, recs) = drive(&flow, json!({"name": "c"}));
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.output.as_ref().and_then(|o| o.get("response")),
        Some(&json!("c"))
    );
    assert_eq!(run.vars.get("counter"), Some(&json!(19)));
    assert_eq!(recs.len(), 2);
}

#[test]
fn ask_user_waits_then_resumes() {
    let flow = load("ask-user@1.0.0", "ask");
    let (mut run, mut recs) = drive(&flow, json!({"name": "Bob"}));
    assert_eq!(run.status, RunStatus::Waiting);
    let w = run.waiting.clone().expect("waiting");
    assert_eq!(w.wait_key.as_deref(), Some("user:r1:ask"));
    assert_eq!(w.prompt.as_deref(), Some("What is your favourite colour?"));
    resume(&mut run, &flow, json!({"response": "blue"}), &mut recs).expect("resume");
    advance(&mut run, &flow, &mut NoHost, 100, &mut recs);
    assert_eq!(
        run.output.as_ref().and_then(|o| o.get("response")),
        Some(&json!("Bob  answered:  blue"))
    );
    let s = summary(&recs);
    assert_eq!(s.len(), 5);
    assert_eq!(
        s[2],
        ("ask".into(), "completed".into(), Some("resume".into()))
    );
}

#[test]
fn delay_waits_until_and_continues_without_resume_record() {
    let flow = load("delay@1.0.0", "delay");
    let (mut run, mut recs) = drive(&flow, json!({"seconds": 5}));
    assert_eq!(run.status, RunStatus::Waiting);
    assert!(run.waiting.as_ref().and_then(|w| w.until.clone()).is_some());
    resume_due(&mut run, &flow, &mut recs);
    advance(&mut run, &flow, &mut NoHost, 100, &mut recs);
    assert_eq!(
        run.output,
        Some(json!({"response": "done", "success": true}))
    );
    assert_eq!(recs.len(), 4);
}

#[test]
fn wait_event_uses_the_literal_key() {
    let flow = load("wait-event@1.0.0", "waitev");
    let (mut run, mut recs) = drive(&flow, json!({}));
    assert_eq!(
        run.waiting
            .as_ref()
            .and_then(|w| w.wait_key.clone())
            .as_deref(),
        Some("evt:global:global:go")
    );
    resume(&mut run, &flow, json!({"name": "go"}), &mut recs).expect("resume");
    advance(&mut run, &flow, &mut NoHost, 100, &mut recs);
    assert_eq!(
        run.output,
        Some(json!({"event": {"name": "go"}, "success": true}))
    );
}

/// A registry with one effect-like plugin node type (`llm_call`), as the LLM component declares it.
fn llm_registry() -> NodeRegistry {
    let mut reg = NodeRegistry::new();
    let mut llm = PluginNode::new("llm_call", "node_llm", "d", Some("llm_call".into()));
    llm.reads.run_context = true;
    reg.register_plugin(std::sync::Arc::new(llm));
    reg
}

/// start → llm_call (prompt from a `format` node) → optional end echoing the start's `topic` pin.
fn llm_flow(template: &str, with_end: bool) -> crate::flow::CompiledFlow {
    let mut nodes = vec![
        json!({"id": "start", "type": "on_flow_start", "data": {"outputs": [
            {"id": "exec-out", "type": "execution"}, {"id": "topic", "type": "string"}]}}),
        json!({"id": "fmt", "type": "format", "data": {"inputs": [{"id": "template", "type": "string"},
            {"id": "values", "type": "object"}], "outputs": [{"id": "result", "type": "string"}],
            "pinDefaults": {"template": template, "values": {"topic": "t"}}}}),
        json!({"id": "llm", "type": "llm_call", "data": {"inputs": [{"id": "exec-in", "type": "execution"},
            {"id": "prompt", "type": "string"}], "outputs": [{"id": "exec-out", "type": "execution"},
            {"id": "response", "type": "string"}]}}),
    ];
    let mut edges = vec![
        json!({"id": "e1", "source": "start", "sourceHandle": "exec-out", "target": "llm", "targetHandle": "exec-in"}),
        json!({"id": "e2", "source": "fmt", "sourceHandle": "result", "target": "llm", "targetHandle": "prompt"}),
    ];
    if with_end {
        nodes.push(
            json!({"id": "end", "type": "on_flow_end", "data": {"inputs": [
            {"id": "exec-in", "type": "execution"}, {"id": "topic", "type": "string"},
            {"id": "response", "type": "string"}]}}),
        );
        edges.push(json!({"id": "e3", "source": "llm", "sourceHandle": "exec-out", "target": "end", "targetHandle": "exec-in"}));
        edges.push(json!({"id": "e4", "source": "llm", "sourceHandle": "response", "target": "end", "targetHandle": "response"}));
    }
    let raw = json!({"id": "f", "name": "f", "entryNode": "start", "nodes": nodes, "edges": edges});
    compile(&raw, &llm_registry()).expect("compiles")
}

fn llm_outcome() -> PluginOutcome {
    let out = json!({"response": "echo:t", "success": true});
    PluginOutcome::Output(crate::engine::NodeOutput {
        outputs: out.as_object().cloned().unwrap_or_default(),
        complete: Some(json!({"success": true, "result": {"content": "echo:t"}})),
        context_edit: Some(crate::engine::ContextEdit::Append(vec![
            json!({"role": "user", "content": "t"}),
        ])),
        ..Default::default()
    })
}

#[test]
fn an_effect_like_plugin_node_leaves_no_ambient_payload() {
    let flow = llm_flow("{topic}", true);
    let (mut run, mut recs) = drive(&flow, json!({"topic": "from input"}));
    assert!(run.inflight.is_some(), "the llm node runs in the component");
    plugin_node::finish(&mut run, &flow, llm_outcome(), &mut recs);
    advance(&mut run, &flow, &mut NoHost, 100, &mut recs);
    assert_eq!(run.status, RunStatus::Completed);
    // The end's unwired `topic` still comes from the start node's ambient payload, not the llm node.
    assert_eq!(
        run.output,
        Some(json!({"topic": "from input", "response": "echo:t", "success": true}))
    );
    assert_eq!(
        run.vars.get("context"),
        Some(&json!({"messages": [{"role": "user", "content": "t"}]}))
    );
    // The reserved keys are not output pins.
    let pins = state::node_output(&run.vars, "llm").cloned();
    assert_eq!(pins, Some(json!({"response": "echo:t", "success": true})));
}

#[test]
fn a_terminal_plugin_node_completes_with_what_it_returns_for_completion() {
    let flow = llm_flow("{topic}", false);
    let (mut run, mut recs) = drive(&flow, json!({}));
    plugin_node::finish(&mut run, &flow, llm_outcome(), &mut recs);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.output,
        Some(json!({"success": true, "result": {"content": "echo:t"}}))
    );
}

#[test]
fn a_failing_pull_fails_an_effect_node_with_the_exception_class() {
    let flow = llm_flow("{role, winner}", true);
    let (run, recs) = drive(&flow, json!({}));
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("KeyError: 'role, winner'"));
    assert_eq!(recs[0].node_id, "llm");
    assert_eq!(recs[0].status, "failed");
}

/// A host with a bug: delivering an event panics.
struct PanickingHost;
impl Host for PanickingHost {
    fn start_child(
        &mut self,
        _: &RunState,
        wf: &str,
        _: Obj,
        _: Option<String>,
    ) -> Result<String, exec::ChildStartError> {
        Err(exec::ChildStartError::NotFound(format!(
            "no child runs here ({wf})"
        )))
    }
    fn emit_event(&mut self, _: &RunState, _: &[String], _: &Value) -> Vec<String> {
        panic!("delivery bug");
    }
}

#[test]
fn a_panicking_step_fails_the_run_at_its_node() {
    let raw = json!({"id": "f", "name": "f", "entryNode": "start", "nodes": [
        {"id": "start", "type": "on_flow_start", "data": {"outputs": [{"id": "exec-out", "type": "execution"}]}},
        {"id": "em", "type": "emit_event", "data": {"effectConfig": {"name": "ping"},
            "inputs": [{"id": "exec-in", "type": "execution"}],
            "outputs": [{"id": "exec-out", "type": "execution"}]}},
        {"id": "end", "type": "on_flow_end", "data": {"inputs": [{"id": "exec-in", "type": "execution"}]}}],
      "edges": [
        {"id": "e1", "source": "start", "sourceHandle": "exec-out", "target": "em", "targetHandle": "exec-in"},
        {"id": "e2", "source": "em", "sourceHandle": "exec-out", "target": "end", "targetHandle": "exec-in"}]});
    let flow = compile(&raw, &NodeRegistry::new()).expect("compiles");
    let mut run = new_run(json!({}));
    run.current_node = Some(flow.entry.clone());
    let mut recs = vec![];
    advance(&mut run, &flow, &mut PanickingHost, 100, &mut recs);
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("InternalError: node 'em' hit a gateway bug: delivery bug")
    );
    assert_eq!(run.current_node.as_deref(), Some("em"));
    // What the step recorded before the panic is dropped: the failure, then the terminal status.
    assert_eq!(
        summary(&recs),
        vec![
            ("em".into(), "failed".into(), None),
            ("em".into(), "completed".into(), Some("emit_event".into()))
        ]
    );
}

/// start → `ty` (pin defaults `defaults`, outputs `outs` wired to the end's pins) → end.
fn one_node_flow(ty: &str, defaults: Value, outs: &[&str]) -> crate::flow::CompiledFlow {
    let pins = |ids: &[&str]| -> Vec<Value> {
        ids.iter()
            .map(|id| json!({"id": id, "type": "any"}))
            .collect()
    };
    let mut n_outputs = vec![json!({"id": "exec-out", "type": "execution"})];
    n_outputs.extend(pins(outs));
    let mut end_inputs = vec![json!({"id": "exec-in", "type": "execution"})];
    end_inputs.extend(pins(outs));
    let mut edges = vec![
        json!({"id": "e1", "source": "start", "sourceHandle": "exec-out", "target": "n", "targetHandle": "exec-in"}),
        json!({"id": "e2", "source": "n", "sourceHandle": "exec-out", "target": "end", "targetHandle": "exec-in"}),
    ];
    for o in outs {
        edges.push(json!({"id": format!("d{o}"), "source": "n", "sourceHandle": o, "target": "end", "targetHandle": o}));
    }
    let raw = json!({"id": "f", "name": "f", "entryNode": "start", "nodes": [
        {"id": "start", "type": "on_flow_start", "data": {"outputs": [{"id": "exec-out", "type": "execution"}]}},
        {"id": "n", "type": ty, "data": {"inputs": [{"id": "exec-in", "type": "execution"}],
            "outputs": n_outputs, "pinDefaults": defaults, "eventConfig": {"channel": "ops"}}},
        {"id": "end", "type": "on_flow_end", "data": {"inputs": end_inputs}}],
      "edges": edges});
    compile(&raw, &NodeRegistry::new()).expect("a catalogued type compiles")
}

#[test]
fn an_entity_node_fails_the_run_as_on_a_host_without_its_handler() {
    let (run, recs) = drive(
        &one_node_flow("memory_commit", json!({"content": "x"}), &["result"]),
        json!({}),
    );
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.expect("error");
    assert!(
        error.starts_with(
            "Effect failed after 1 attempts: No effect handler registered for memory_access"
        ),
        "{error}"
    );
    let s = summary(&recs);
    assert_eq!(
        s[0],
        ("n".into(), "started".into(), Some("memory_access".into()))
    );
    assert_eq!(
        s[1],
        ("n".into(), "failed".into(), Some("memory_access".into()))
    );
    assert_eq!(
        recs[0]
            .effect
            .as_ref()
            .map(|e| e["payload"]["content"].clone()),
        Some(json!("x"))
    );
}

#[test]
fn a_backend_less_media_node_names_what_it_needs() {
    for (ty, needs) in [
        ("generate_music", "music generation backend"),
        ("generate_video", "video generation"),
    ] {
        let (run, _) = drive(&one_node_flow(ty, json!({"prompt": "x"}), &[]), json!({}));
        assert_eq!(run.status, RunStatus::Failed, "{ty}");
        assert!(
            run.error.as_deref().is_some_and(|e| e.contains(needs)),
            "{ty}: {:?}",
            run.error
        );
    }
}

#[test]
fn a_tool_invoke_node_without_its_tool_reports_a_failed_call_and_the_run_goes_on() {
    let (run, recs) = drive(
        &one_node_flow("mail_search", json!({}), &["result", "success", "emails"]),
        json!({}),
    );
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.output,
        Some(
            json!({"result": "email_not_configured: No mailbox is connected for this user.",
                    "success": false, "emails": null})
        )
    );
    assert_eq!(
        recs[0]
            .effect
            .as_ref()
            .map(|e| e["payload"]["name"].clone()),
        Some(json!("mail_search"))
    );
    let (run, _) = drive(
        &one_node_flow("camera_open", json!({}), &["result", "success"]),
        json!({}),
    );
    assert_eq!(
        run.output,
        Some(json!({"result": "Tool 'camera_open' not found", "success": false}))
    );
}

#[test]
fn entry_nodes_read_the_message_as_the_seed_does() {
    let (run, _) = drive(
        &one_node_flow("on_user_request", json!({}), &["message", "context"]),
        json!({"message": "hi"}),
    );
    assert_eq!(
        run.output,
        Some(json!({"message": "hi", "context": {}, "success": true}))
    );
    let (run, _) = drive(
        &one_node_flow(
            "on_agent_message",
            json!({}),
            &["sender", "message", "channel"],
        ),
        json!({"message": "yo"}),
    );
    assert_eq!(
        run.output,
        Some(json!({"sender": "unknown", "message": "yo", "channel": "ops", "success": true}))
    );
}

#[test]
fn memact_compose_without_a_kg_result_completes_like_the_seed() {
    let outs = [
        "ok",
        "delta",
        "trace",
        "active_memory",
        "memact_blocks",
        "memact_system_prompt",
    ];
    let (run, _) = drive(
        &one_node_flow("memact_compose", json!({}), &outs),
        json!({}),
    );
    assert_eq!(
        run.output,
        Some(
            json!({"ok": false, "delta": {}, "trace": {}, "active_memory": {}, "memact_blocks": [],
                    "memact_system_prompt": "", "success": true})
        )
    );
}

#[test]
fn a_pure_node_without_its_backend_fails_the_node_that_pulls_it() {
    let raw = json!({"id": "f", "name": "f", "entryNode": "start", "nodes": [
        {"id": "start", "type": "on_flow_start", "data": {"outputs": [{"id": "exec-out", "type": "execution"}]}},
        {"id": "cat", "type": "provider_catalog", "data": {"outputs": [{"id": "providers", "type": "array"}]}},
        {"id": "end", "type": "on_flow_end", "data": {"inputs": [{"id": "exec-in", "type": "execution"},
            {"id": "p", "type": "array"}]}}],
      "edges": [
        {"id": "e1", "source": "start", "sourceHandle": "exec-out", "target": "end", "targetHandle": "exec-in"},
        {"id": "d", "source": "cat", "sourceHandle": "providers", "target": "end", "targetHandle": "p"}]});
    let flow = compile(&raw, &NodeRegistry::new()).expect("compiles");
    let (run, _) = drive(&flow, json!({}));
    let failed = run.status == RunStatus::Failed
        || run.output.as_ref().is_some_and(|o| o["success"] == false);
    assert!(failed, "{:?} {:?}", run.status, run.output);
    let text = format!("{:?} {:?}", run.error, run.output);
    assert!(text.contains("provider catalogue"), "{text}");
}
