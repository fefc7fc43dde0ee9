//! The built-in components that reach outside the run: `provider_models` (the provider catalogue through
//! `llm.list-models`, as a data node), `write_file` (the run's workspace), the `memory_kg_*` nodes (the host's triple store), and an
//! agent that inherits the run's conversation (compared with what the seed itself produced for the same flow).
//! Real components, real store, the goldens' fake LLM.

mod in_process;

use std::path::Path;
use std::sync::Arc;

use abstractgateway::flow::compile;
use abstractgateway::plugins::PluginHost;
use abstractgateway::run::new_run_state;
use abstractgateway::run::{HostCall, RunState, RunStatus};
use abstractgateway::runner::flows::Flows;
use abstractgateway::runner::world::World;
use abstractgateway::store::{Batch, Store};
use in_process::fake_llm::FakeLlm;
use in_process::flowgen::{edge, node};
use serde_json::{Value, json};

fn host(fake: &FakeLlm, dir: &Path) -> Arc<PluginHost> {
    let (host, warnings) = abstractgateway::plugins::setup_with(
        &dir.join("cache"),
        None,
        in_process::fake_llm::config(fake),
    )
    .expect("plugin host");
    assert!(warnings.is_empty(), "{warnings:?}");
    host
}

/// Runs `flow` to its end with `vars`; returns the final run and its ledger.
fn run(host: &Arc<PluginHost>, dir: &Path, flow: Value, vars: Value) -> (RunState, Vec<Value>) {
    let compiled = compile(&flow, &host.registry()).expect("compiles");
    let wf = compiled.workflow_id.clone();
    let entry = compiled.entry.clone();
    let mut flows = Flows::new();
    flows.insert_with_listeners(compiled);
    let store = Store::open(&dir.join("data")).expect("store");
    let mut world = World::new(Arc::new(flows), 100);
    let mut root = new_run_state(
        &wf,
        &entry,
        vars.as_object().cloned().unwrap_or_default(),
        None,
        None,
        None,
    );
    // What `Gateway::start_run` does: the host's choice of workspace, shown in the var.
    root.workspace = vars
        .get("workspace_root")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = root.run_id.clone();
    world.adopt(root);
    for _ in 0..100 {
        while let Some(r) = world.pop_ready() {
            world.step_run(&r);
        }
        let mut batch = Batch::default();
        let evict = world.drain_into(&mut batch);
        store.commit(batch).expect("commit");
        world.evict(&evict);
        if !in_process::plugins::execute_pending(&mut world, &store, host) {
            break;
        }
    }
    let state = store.get_run(&id).expect("get").expect("run");
    let ledger = store
        .ledger_after(&id, 0, 10_000)
        .expect("ledger")
        .iter()
        .map(|e| serde_json::from_str(e.json.get()).expect("record"))
        .collect();
    (state, ledger)
}

fn calls(ledger: &[Value], function: &str) -> Vec<HostCall> {
    ledger
        .iter()
        .filter_map(HostCall::from_record)
        .filter(|c| c.function == function)
        .collect()
}

#[test]
fn provider_models_runs_once_as_a_data_node_before_the_nodes_that_read_it() {
    let fake = FakeLlm::start();
    let dir = tempfile::tempdir().expect("tmp");
    let host = host(&fake, dir.path());
    // start → for each model → llm_call(provider ← catalogue, model ← item); the catalogue has no exec pins.
    let flow = json!({"id": "pm", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("m", "provider_models", false, &[], &["provider", "allowed_models"], &["provider", "models"],
            json!({"providerModelsConfig": {"provider": "lmstudio",
                   "allowedModels": ["qwen/qwen3-4b-2507", "not-listed", "lmstudio/google/gemma-3n-e4b"]}})),
        node("l", "loop", true, &["loop", "done"], &["items"], &["item", "index"], json!({})),
        node("c", "llm_call", true, &["exec-out"], &["provider", "model", "prompt"], &["response"],
            json!({"pinDefaults": {"prompt": "hi"}}))],
      "edges": [edge("s", "exec-out", "l", "exec-in"), edge("m", "models", "l", "items"),
                edge("l", "loop", "c", "exec-in"), edge("m", "provider", "c", "provider"),
                edge("l", "item", "c", "model")]});
    let (state, ledger) = run(&host, dir.path(), flow, json!({}));
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    // One catalogue call for the whole run: the llm_call pulls reuse it (same inputs).
    let listed = calls(&ledger, "list-models");
    assert_eq!(listed.len(), 1, "{ledger:#?}");
    assert_eq!(listed[0].request, json!({"provider": "lmstudio"}));
    // Catalogue order, `provider/model` allow-list entries included, unlisted ones dropped.
    let models: Vec<Value> = calls(&ledger, "complete")
        .iter()
        .map(|c| c.request["model"].clone())
        .collect();
    assert_eq!(
        models,
        [json!("google/gemma-3n-e4b"), json!("qwen/qwen3-4b-2507")]
    );
    let done = ledger
        .iter()
        .find(|r| {
            r["node_id"] == "m" && r["status"] == "completed" && r["effect"]["type"] != "host_call"
        })
        .expect("the catalogue node's record");
    assert_eq!(
        done["result"],
        json!({"provider": "lmstudio", "models": ["google/gemma-3n-e4b", "qwen/qwen3-4b-2507"]})
    );
}

fn write_flow(path: &str) -> Value {
    json!({"id": "wf", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("w", "write_file", true, &["exec-out"], &["file_path", "content"], &["bytes", "file_path"],
            json!({"pinDefaults": {"file_path": path, "content": {"b": [1, "é"]}}}))],
      "edges": [edge("s", "exec-out", "w", "exec-in")]})
}

#[test]
fn write_file_writes_inside_the_workspace_only() {
    let fake = FakeLlm::start();
    let dir = tempfile::tempdir().expect("tmp");
    let host = host(&fake, dir.path());
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).expect("mkdir");
    let vars = json!({"workspace_root": ws.to_string_lossy()});

    let (state, _) = run(
        &host,
        &dir.path().join("a"),
        write_flow("out/data.json"),
        vars.clone(),
    );
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    let text = std::fs::read_to_string(ws.join("out/data.json")).expect("written");
    assert_eq!(text, "{\n  \"b\": [\n    1,\n    \"é\"\n  ]\n}\n");
    assert_eq!(
        state.output,
        Some(json!({"bytes": text.len(), "file_path": "out/data.json", "success": true}))
    );

    // Outside the workspace: refused, and the run completes with the node's error (a function-like node).
    let (state, _) = run(
        &host,
        &dir.path().join("b"),
        write_flow("../escape.txt"),
        vars,
    );
    assert!(!dir.path().join("escape.txt").exists());
    let out = state.output.expect("output");
    assert_eq!(out["success"], false, "{out}");
    assert_eq!(out["node"], "w");
}

fn node_result(ledger: &[Value], id: &str) -> Value {
    ledger
        .iter()
        .find(|r| {
            r["node_id"] == id && r["status"] == "completed" && r["effect"]["type"] != "host_call"
        })
        .unwrap_or_else(|| panic!("no completed record of {id}: {ledger:?}"))["result"]
        .clone()
}

/// assert → query → resolve through the real component and the host's triple store, then a second run of the
/// same session reads what the first stored (session memory is durable and shared by the session's runs).
#[test]
fn memory_kg_nodes_store_and_read_the_sessions_graph() {
    let fake = FakeLlm::start();
    let dir = tempfile::tempdir().expect("tmp");
    let host = host(&fake, dir.path());
    let assertions = json!([
        {"subject": "ex:Person Alice", "predicate": "schema:name", "object": "Alice",
         "attributes": {"literal": true}},
        {"subject": "ex:Person Alice", "predicate": "rdf:type", "object": "schema:Person"}]);
    let flow = json!({"id": "kg", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("a", "memory_kg_assert", true, &["exec-out"], &["assertions", "scope", "span_id"],
            &["assertion_ids", "count", "ok"],
            json!({"pinDefaults": {"assertions": assertions, "scope": "session", "span_id": "sp1"}})),
        node("q", "memory_kg_query", true, &["exec-out"], &["scope", "subject", "max_input_tokens"],
            &["items", "count", "active_memory_text"],
            json!({"pinDefaults": {"scope": "session", "subject": "ex:person alice", "max_input_tokens": 400}})),
        node("r", "memory_kg_resolve", true, &["exec-out"], &["label", "scope", "expected_type"],
            &["candidates", "count"],
            json!({"pinDefaults": {"label": "alice", "scope": "session", "expected_type": "schema:person"}})),
        node("m", "memact_compose", true, &["exec-out"], &["kg_result", "stimulus"],
            &["ok", "delta", "memact_system_prompt"], json!({"pinDefaults": {"stimulus": "who is alice"}}))],
      "edges": [edge("s", "exec-out", "a", "exec-in"), edge("a", "exec-out", "q", "exec-in"),
                edge("q", "exec-out", "r", "exec-in"), edge("r", "exec-out", "m", "exec-in"),
                edge("q", "raw", "m", "kg_result")]});
    let (state, ledger) = run(&host, dir.path(), flow, json!({"session_id": "s1"}));
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    let added = node_result(&ledger, "a");
    assert_eq!(added["count"], 2, "{added}");
    assert_eq!(added["ok"], true);
    let read = node_result(&ledger, "q");
    assert_eq!(read["count"], 2, "{read}");
    assert_eq!(read["items"][0]["subject"], "ex:person-alice");
    assert_eq!(read["items"][0]["provenance"]["span_id"], "sp1");
    let text = read["active_memory_text"].as_str().expect("packed text");
    assert!(
        text.starts_with("## KG ACTIVE MEMORY\n(scope=session;"),
        "{text}"
    );
    assert!(
        text.contains("ex:person-alice —schema:name→ Alice (span:sp1)"),
        "{text}"
    );
    let found = node_result(&ledger, "r");
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["candidates"][0]["id"], "ex:person-alice");
    // memact_compose turns the query's packets into the run's Active Memory.
    // The last node: its output completes the run.
    let composed = state.output.clone().expect("the run's output");
    assert_eq!(composed["ok"], true, "{composed}");
    assert_eq!(
        composed["delta"]["current_context"]["added"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let prompt = composed["memact_system_prompt"].as_str().expect("prompt");
    assert!(
        prompt.contains("KG: ex:person-alice —schema:name→ Alice (span:sp1; wf:kg)"),
        "{prompt}"
    );
    let memory = &state.vars["_runtime"]["active_memory"];
    assert_eq!(
        memory["current_context"].as_array().map(Vec::len),
        Some(2),
        "{memory}"
    );
    // Each node made one recorded kg call; the write is recorded as a remote (durable-first) call.
    assert_eq!(calls(&ledger, "add").len(), 1);
    assert_eq!(calls(&ledger, "query").len(), 1);
}

#[test]
fn memory_kg_nodes_fail_as_the_seed_on_bad_input_and_never_reach_another_session() {
    let fake = FakeLlm::start();
    let dir = tempfile::tempdir().expect("tmp");
    let host = host(&fake, dir.path());
    let assert_flow = |pins: Value| {
        json!({"id": "kg", "entryNode": "s", "nodes": [
            node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
            node("a", "memory_kg_assert", true, &["exec-out"], &["assertions", "owner_id"], &["count"],
                json!({"pinDefaults": pins}))],
          "edges": [edge("s", "exec-out", "a", "exec-in")]})
    };
    let (state, _) = run(
        &host,
        dir.path(),
        assert_flow(
            json!({"assertions": [{"subject": "a", "predicate": "foaf:knows", "object": "b"}]}),
        ),
        json!({}),
    );
    assert_eq!(state.status, RunStatus::Failed);
    let err = state.error.expect("error");
    assert!(
        err.contains("MEMORY_KG_ASSERT rejected unknown predicates. Got: foaf:knows."),
        "{err}"
    );
    let (state, _) = run(
        &host,
        dir.path(),
        assert_flow(json!({"owner_id": "session_memory_victim",
            "assertions": [{"subject": "a", "predicate": "rdf:type", "object": "b"}]})),
        json!({"session_id": "attacker"}),
    );
    assert_eq!(state.status, RunStatus::Failed);
    assert!(
        state
            .error
            .expect("error")
            .contains("not a memory owner of this run")
    );
    // A query naming another session's owner reads nothing of it.
    let flow = json!({"id": "kg", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("q", "memory_kg_query", true, &["exec-out"], &["owner_id", "query_text"], &["items", "ok"],
            json!({"pinDefaults": {"owner_id": "session_memory_victim"}}))],
      "edges": [edge("s", "exec-out", "q", "exec-in")]});
    let (state, ledger) = run(&host, dir.path(), flow, json!({}));
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    let read = node_result(&ledger, "q");
    assert_eq!(read["ok"], false);
    assert!(
        read["raw"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a memory owner"),
        "{read}"
    );
}

#[test]
fn answer_user_records_the_seeds_effect_and_completes_like_it() {
    let fake = FakeLlm::start();
    let dir = tempfile::tempdir().expect("tmp");
    let host = host(&fake, dir.path());
    // start → answer_user (message wired from a literal dict, level "warning") → ask_user (a native effect).
    let flow = |then_ask: bool| {
        let mut nodes = vec![
            node(
                "s",
                "on_flow_start",
                false,
                &["exec-out"],
                &[],
                &[],
                json!({}),
            ),
            node(
                "lit",
                "literal_json",
                false,
                &[],
                &[],
                &["value"],
                json!({"literalValue": {"a": true}}),
            ),
            node(
                "say",
                "answer_user",
                true,
                &["exec-out"],
                &["message", "level"],
                &["message"],
                json!({"pinDefaults": {"level": "warning"}}),
            ),
        ];
        let mut edges = vec![
            edge("s", "exec-out", "say", "exec-in"),
            edge("lit", "value", "say", "message"),
        ];
        if then_ask {
            nodes.push(node(
                "ask",
                "ask_user",
                true,
                &["exec-out"],
                &["prompt"],
                &["response"],
                json!({}),
            ));
            edges.push(edge("say", "exec-out", "ask", "exec-in"));
        }
        json!({"id": "say", "entryNode": "s", "nodes": nodes, "edges": edges})
    };
    let (state, ledger) = run(&host, &dir.path().join("a"), flow(false), json!({}));
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    let result = json!({"message": "{'a': True}", "level": "warning"});
    // A run ending on it completes with the effect's result, as a native effect node.
    assert_eq!(
        state.output,
        Some(json!({"success": true, "result": result}))
    );
    let started = &ledger[0];
    let done = &ledger[1];
    assert_eq!(
        (started["node_id"].as_str(), started["status"].as_str()),
        (Some("say"), Some("started"))
    );
    assert_eq!(started["effect"]["type"], "answer_user");
    assert_eq!(
        done["effect"],
        json!({"type": "answer_user", "payload": {"type": "answer_user", "message": "{'a': True}", "level": "warning"},
               "result_key": "_temp.effects.say"})
    );
    assert_eq!(done["result"], result);
    assert!(done["idempotency_key"].is_string());
    assert_eq!(started["idempotency_key"], done["idempotency_key"]);

    // The native effect after it is the run's second effect, keyed as before the move.
    let (state, ledger) = run(&host, &dir.path().join("b"), flow(true), json!({}));
    assert_eq!(state.status, RunStatus::Waiting);
    let ask = ledger
        .iter()
        .find(|r| r["node_id"] == "ask" && r["status"] == "started")
        .expect("ask_user started");
    assert_ne!(ask["idempotency_key"], ledger[0]["idempotency_key"]);
    assert_eq!(state.vars["_runtime"]["effect_seq"], 2);
    assert_eq!(state.vars["_temp"]["effects"]["say"], result);
}

/// Equal but for the JSON pointers in `volatile` (`*` matches one list index or key; a pointer covers what is under
/// it, including its absence on either side). Returns each difference.
fn differences(want: &Value, got: &Value, volatile: &[&str], path: &str, out: &mut Vec<String>) {
    let covered = |p: &str| {
        volatile.iter().any(|v| {
            let (vs, ps): (Vec<&str>, Vec<&str>) = (v.split('/').collect(), p.split('/').collect());
            ps.len() >= vs.len() && vs.iter().zip(&ps).all(|(a, b)| *a == "*" || a == b)
        })
    };
    if covered(path) {
        return;
    }
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let p = format!("{path}/{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differences(x, y, volatile, &p, out),
                    _ if covered(&p) => {}
                    (x, y) => out.push(format!("{p}: {x:?} != {y:?}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} items != {}", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, volatile, &format!("{path}/{i}"), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

#[test]
fn an_agent_reports_the_turns_it_inherited_and_its_task_as_given_like_the_seed() {
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(
            abstractgateway_testkit::repo_root()
                .join("host/tests/fixtures/seed/agent-history.json"),
        )
        .expect("fixture"),
    )
    .expect("fixture json");
    let fake = FakeLlm::start();
    let dir = tempfile::tempdir().expect("tmp");
    let host = host(&fake, dir.path());
    let (state, _) = run(&host, dir.path(), fixture["flow"].clone(), json!({}));
    assert_eq!(state.status, RunStatus::Completed, "{:?}", state.error);
    let got = state.output.clone().expect("output");
    let sp = &got["scratchpad"];
    // The template's trailing whitespace stays in the task; the earlier agent's turns come first, tagged.
    assert_eq!(sp["task"], "REQUEST :  x \\nTASKS TO FULFILL :\n  ");
    let kinds: Vec<(&str, &str)> = sp["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["metadata"]["kind"].as_str().unwrap_or("-"),
                m["metadata"]["node_id"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("agent_turn", "a1"),
            ("agent_turn", "a1"),
            ("-", "-"),
            ("final_answer", "-")
        ]
    );
    let mut volatile: Vec<&str> = fixture["volatile"]
        .as_array()
        .expect("volatile")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The seed ran the flow from its bundle; here it is a loose flow, so the workflow id it names differs.
    assert_eq!(
        sp["workflow_id"], "visual_react_agent_agent_history_a2",
        "{sp}"
    );
    volatile.push("/scratchpad/workflow_id");
    let mut diffs = Vec::new();
    differences(&fixture["seed_output"], &got, &volatile, "", &mut diffs);
    assert!(diffs.is_empty(), "differs from the seed: {diffs:#?}");
}
