//! Builtins run on the shared fixtures: real flows and the seed's golden records.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::{BuiltinCtx, lookup_py};

fn shared_dir() -> PathBuf {
    let dir = abstractgateway_testkit::shared_dir();
    assert!(
        dir.join("fixtures").is_dir(),
        "shared fixtures not found at {} (set AG_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn read_json(rel: &str) -> Value {
    let path = shared_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn node<'a>(flow: &'a Value, id: &str) -> &'a Value {
    flow["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("node {id} missing"))
}

fn pin_ids(data: &Value, key: &str) -> Vec<String> {
    data[key]
        .as_array()
        .map(|pins| {
            pins.iter()
                .filter(|p| p["type"] != "execution")
                .filter_map(|p| p["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Pulls a pure node the way the reference executor does (§3.3): wired inputs first
/// (a dict output is read by key, a scalar through `result`/`output`), then unwired
/// `pinDefaults`; exec nodes contribute the outputs given in `exec_outputs`.
fn pull(flow: &Value, id: &str, exec_outputs: &Map<String, Value>) -> Value {
    if let Some(out) = exec_outputs.get(id) {
        return out.clone();
    }
    let n = node(flow, id);
    let data = &n["data"];
    let mut inputs = Map::new();
    let mut wired = Vec::new();
    for e in flow["edges"].as_array().into_iter().flatten() {
        if e["target"] != id || e["targetHandle"] == "exec-in" {
            continue;
        }
        let (src, handle, pin) = (
            e["source"].as_str().unwrap_or(""),
            e["sourceHandle"].as_str().unwrap_or(""),
            e["targetHandle"].as_str().unwrap_or(""),
        );
        wired.push(pin.to_string());
        let out = pull(flow, src, exec_outputs);
        if let Some(v) = out.as_object().and_then(|o| o.get(handle)) {
            inputs.insert(pin.into(), v.clone());
        } else if handle == "result" || handle == "output" {
            inputs.insert(pin.into(), out);
        }
    }
    if let Some(defaults) = data["pinDefaults"].as_object() {
        for (k, v) in defaults {
            if !wired.contains(k) {
                inputs.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    let node_type = n["type"].as_str().unwrap_or("");
    let f = lookup_py(node_type).unwrap_or_else(|| panic!("{node_type} is not a builtin"));
    let pin_order = pin_ids(data, "inputs");
    let output_pins = pin_ids(data, "outputs");
    let vars = Map::new();
    let ctx = BuiltinCtx {
        node_type,
        node_id: id,
        data: data.as_object().expect("a node's data is an object"),
        pin_order: &pin_order,
        output_pins: &output_pins,
        vars: &vars,
    };
    f(&inputs, &ctx).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn outputs(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[test]
fn echo_upper_bundle_matches_the_seed() {
    let flow = read_json("fixtures/bundles/no-llm/src/echo-upper@1.0.0/flows/echo.json");
    let exec = outputs(json!({"start": {"name": "Alice"}}));
    // The seed answered {"response":"HELLO,  ALICE","length":13} for {"name":"Alice"}.
    assert_eq!(pull(&flow, "up", &exec), json!("HELLO,  ALICE"));
    assert_eq!(pull(&flow, "len", &exec), json!(13));
    let default_name = outputs(json!({"start": {"name": "world"}}));
    assert_eq!(pull(&flow, "up", &default_name), json!("HELLO,  WORLD"));
}

#[test]
fn ask_user_bundle_concatenates_like_the_seed() {
    let flow = read_json("fixtures/bundles/no-llm/src/ask-user@1.0.0/flows/ask.json");
    let exec = outputs(json!({"start": {"name": "Bob"}, "ask": {"response": "blue"}}));
    assert_eq!(pull(&flow, "c2", &exec), json!("Bob  answered:  blue"));
}

/// Golden runs that ended with `Invalid JSON: …`: the message comes from `parse_json` on
/// the deterministic LLM reply recorded next to it.
#[test]
fn parse_json_errors_match_golden_runs() {
    let golden_dir = shared_dir().join("fixtures/flows/golden");
    let mut checked = 0;
    let entries =
        std::fs::read_dir(&golden_dir).unwrap_or_else(|e| panic!("{}: {e}", golden_dir.display()));
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let Ok(golden) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(error) = golden["output"]["error"].as_str() else {
            continue;
        };
        if !error.starts_with("Invalid JSON:") {
            continue;
        }
        let Some(reply) = golden["llm_requests"]
            .as_array()
            .and_then(|r| r.last())
            .and_then(|r| r["content"].as_str())
        else {
            continue;
        };
        let f = lookup_py("parse_json").expect("parse_json");
        let data = Map::new();
        let vars = Map::new();
        let ctx = BuiltinCtx {
            node_type: "parse_json",
            node_id: "n",
            data: &data,
            pin_order: &[],
            output_pins: &[],
            vars: &vars,
        };
        let err = f(&outputs(json!({"text": reply})), &ctx).expect_err("the reply is not JSON");
        assert_eq!(err.message, error, "{}", entry.path().display());
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected the masm/role goldens, checked {checked}"
    );
}

fn is_exec_node(n: &Value) -> bool {
    ["inputs", "outputs"].iter().any(|k| {
        n["data"][k]
            .as_array()
            .is_some_and(|pins| pins.iter().any(|p| p["type"] == "execution"))
    })
}

/// Whether `id` is computable from pure builtins over the given exec nodes.
fn pure_closure(flow: &Value, id: &str, sources: &[&str], depth: usize) -> bool {
    if sources.contains(&id) {
        return true;
    }
    let n = node(flow, id);
    let ty = n["type"].as_str().unwrap_or("");
    if depth > 32
        || is_exec_node(n)
        || lookup_py(ty).is_none()
        || ty.starts_with("get_")
        || ty.ends_with("_var")
        || ty == "var_decl"
    {
        return false;
    }
    flow["edges"].as_array().into_iter().flatten().all(|e| {
        e["target"] != id
            || e["targetHandle"] == "exec-in"
            || pure_closure(flow, e["source"].as_str().unwrap_or(""), sources, depth + 1)
    })
}

/// Golden runs whose outputs come from pure nodes over the start input and a single LLM
/// reply: recomputing those outputs from the recorded reply must give the recorded values.
#[test]
fn pure_outputs_of_golden_llm_flows() {
    let dir = shared_dir().join("fixtures/flows");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let golden_path = dir.join("golden").join(entry.file_name());
        let (Ok(flow_text), Ok(golden_text)) = (
            std::fs::read_to_string(&path),
            std::fs::read_to_string(&golden_path),
        ) else {
            continue;
        };
        let (Ok(flow), Ok(golden)) = (
            serde_json::from_str::<Value>(&flow_text),
            serde_json::from_str::<Value>(&golden_text),
        ) else {
            continue;
        };
        let output = &golden["output"];
        if golden["final_status"] != "completed" || output["success"] != true {
            continue;
        }
        let nodes = flow["nodes"].as_array().cloned().unwrap_or_default();
        let llms: Vec<&Value> = nodes.iter().filter(|n| n["type"] == "llm_call").collect();
        let replies = golden["llm_requests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (Some(start), [llm], [reply]) = (
            flow["entryNode"].as_str(),
            llms.as_slice(),
            replies.as_slice(),
        ) else {
            continue;
        };
        let llm_id = llm["id"].as_str().unwrap_or("");
        let content = reply["content"].as_str().unwrap_or("");
        // The raw LLM result (`result` pin) carries the reply and its parsed JSON as `data`.
        let parsed = serde_json::from_str::<Value>(content).unwrap_or(Value::Null);
        let start_node = node(&flow, start);
        let mut start_out = Map::new();
        for pin in pin_ids(&start_node["data"], "outputs") {
            let v = golden["input"]
                .get(&pin)
                .or_else(|| start_node["data"]["pinDefaults"].get(&pin));
            start_out.insert(pin, v.cloned().unwrap_or(Value::Null));
        }
        let mut exec = Map::new();
        exec.insert(start.into(), Value::Object(start_out));
        exec.insert(
            llm_id.into(),
            json!({"response": content, "result": {"content": content, "data": parsed}}),
        );
        for end in nodes.iter().filter(|n| n["type"] == "on_flow_end") {
            for e in flow["edges"].as_array().into_iter().flatten() {
                let (src, handle, pin) = (
                    e["source"].as_str().unwrap_or(""),
                    e["sourceHandle"].as_str().unwrap_or(""),
                    e["targetHandle"].as_str().unwrap_or(""),
                );
                if e["target"] != end["id"] || pin == "exec-in" || src == start || src == llm_id {
                    continue;
                }
                // Objects can carry LLM-layer normalisation (schema fields filled with null,
                // provider traces) that is not the builtins' doing; compare the rest.
                if !pure_closure(&flow, src, &[start, llm_id], 0)
                    || output.get(pin).is_none_or(Value::is_object)
                {
                    continue;
                }
                let out = pull(&flow, src, &exec);
                let got = match out.as_object().and_then(|o| o.get(handle)) {
                    Some(v) => v.clone(),
                    None => out,
                };
                assert_eq!(
                    &got,
                    &output[pin],
                    "{} {src}.{handle} -> {pin}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} golden outputs checked");
}
