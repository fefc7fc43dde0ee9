//! Builders for VisualFlow JSON and unpacked bundles used by the in-process tests.

use std::path::Path;

use serde_json::{Value, json};

/// An execution pin.
pub fn exec(id: &str) -> Value {
    json!({"id": id, "label": "", "type": "execution"})
}
/// A data pin of type any.
pub fn pin(id: &str) -> Value {
    json!({"id": id, "label": id, "type": "any"})
}
/// A node: `ins`/`outs` are data pins; `exec_in`/`exec_outs` add execution pins.
pub fn node(
    id: &str,
    ty: &str,
    exec_in: bool,
    exec_outs: &[&str],
    ins: &[&str],
    outs: &[&str],
    extra: Value,
) -> Value {
    let mut inputs: Vec<Value> = if exec_in {
        vec![exec("exec-in")]
    } else {
        vec![]
    };
    inputs.extend(ins.iter().map(|p| pin(p)));
    let mut outputs: Vec<Value> = exec_outs.iter().map(|p| exec(p)).collect();
    outputs.extend(outs.iter().map(|p| pin(p)));
    let mut data = json!({"nodeType": ty, "label": id, "inputs": inputs, "outputs": outputs});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    json!({"id": id, "type": ty, "data": data})
}
/// An edge `source.handle -> target.handle`.
pub fn edge(s: &str, sh: &str, t: &str, th: &str) -> Value {
    json!({"id": format!("{s}.{sh}->{t}.{th}"), "source": s, "sourceHandle": sh, "target": t, "targetHandle": th})
}

/// Writes bundle `features@1.0.0` (an unpacked directory) with `flows`; returns its path.
pub fn write_bundle(dir: &Path, flows: &[(&str, Value)], entry: &str) -> std::path::PathBuf {
    let b = dir.join("features");
    std::fs::create_dir_all(b.join("flows")).expect("mkdir");
    let mut map = serde_json::Map::new();
    for (id, f) in flows {
        std::fs::write(b.join(format!("flows/{id}.json")), f.to_string()).expect("flow");
        map.insert(id.to_string(), json!(format!("flows/{id}.json")));
    }
    let entrypoints: Vec<Value> = flows.iter().map(|(id, _)| json!({"flow_id": id})).collect();
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "features", "bundle_version": "1.0.0",
        "entrypoints": entrypoints, "default_entrypoint": entry, "flows": map});
    std::fs::write(b.join("manifest.json"), manifest.to_string()).expect("manifest");
    b
}

/// start (pins `ins`) → `ty` → end (pins `outs`).
pub fn one_node_flow(id: &str, ty: &str, ins: &[&str], outs: &[&str]) -> Value {
    let mut edges = vec![
        edge("s", "exec-out", "p", "exec-in"),
        edge("p", "exec-out", "e", "exec-in"),
    ];
    edges.extend(ins.iter().map(|i| edge("s", i, "p", i)));
    edges.extend(outs.iter().map(|o| edge("p", o, "e", o)));
    json!({"id": id, "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], ins, json!({})),
        node("p", ty, true, &["exec-out"], ins, outs, json!({})),
        node("e", "on_flow_end", true, &[], outs, &[], json!({}))],
      "edges": edges})
}

/// seq → (loop over `items` [1, 2, 3] into `seen`, then for 0..3 into `is`); then while k < 4: k += 1. Ends with
/// `{seen, is, k}`; about 40 steps, so it spans several rounds at a small `max_steps`.
pub fn loops_flow() -> Value {
    json!({"id": "loops", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["items"], json!({"pinDefaults": {"items": [1, 2, 3]}})),
        node("seq", "sequence", true, &["then:0", "then:1"], &[], &[], json!({})),
        node("each", "loop", true, &["loop", "done"], &["items"], &["item", "index"], json!({})),
        node("push", "add_to_list", true, &["exec-out"], &["name", "item"], &["list"], json!({"pinDefaults": {"name": "seen"}})),
        node("count", "for", true, &["loop", "done"], &["start", "end"], &["i"], json!({"pinDefaults": {"start": 0, "end": 3}})),
        node("push2", "add_to_list", true, &["exec-out"], &["name", "item"], &["list"], json!({"pinDefaults": {"name": "is"}})),
        node("w", "while", true, &["loop", "done"], &["condition"], &[], json!({})),
        node("n", "get_var", false, &[], &["name", "default"], &["value"], json!({"pinDefaults": {"name": "k", "default": 0}})),
        node("lt", "compare", false, &[], &["a", "b", "op"], &["result"], json!({"pinDefaults": {"b": 4, "op": "<"}})),
        node("plus", "add", false, &[], &["a", "b"], &["result"], json!({"pinDefaults": {"b": 1}})),
        node("n2", "get_var", false, &[], &["name", "default"], &["value"], json!({"pinDefaults": {"name": "k", "default": 0}})),
        node("inc", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({"pinDefaults": {"name": "k"}})),
        node("seen", "get_var", false, &[], &["name"], &["value"], json!({"pinDefaults": {"name": "seen"}})),
        node("is", "get_var", false, &[], &["name"], &["value"], json!({"pinDefaults": {"name": "is"}})),
        node("kv", "get_var", false, &[], &["name"], &["value"], json!({"pinDefaults": {"name": "k"}})),
        node("e", "on_flow_end", true, &[], &["seen", "is", "k"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "seq", "exec-in"),
        edge("seq", "then:0", "each", "exec-in"), edge("s", "items", "each", "items"),
        edge("each", "loop", "push", "exec-in"), edge("each", "item", "push", "item"),
        edge("each", "done", "count", "exec-in"),
        edge("count", "loop", "push2", "exec-in"), edge("count", "i", "push2", "item"),
        edge("seq", "then:1", "w", "exec-in"),
        edge("n", "value", "lt", "a"), edge("lt", "result", "w", "condition"),
        edge("w", "loop", "inc", "exec-in"), edge("n2", "value", "plus", "a"), edge("plus", "result", "inc", "value"),
        edge("w", "done", "e", "exec-in"),
        edge("seen", "value", "e", "seen"), edge("is", "value", "e", "is"), edge("kv", "value", "e", "k")]})
}

/// start → end `{total}`, where `total` is the last of `depth` chained diamonds: each `add` takes both its inputs
/// from the one before, so a pull without a bound would evaluate 2^depth nodes (and a walk for pending data nodes
/// would visit as many paths).
pub fn diamonds_flow(depth: usize) -> Value {
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
            "d0",
            "add",
            false,
            &[],
            &["a", "b"],
            &["result"],
            json!({"pinDefaults": {"a": 1, "b": 1}}),
        ),
        node("e", "on_flow_end", true, &[], &["total"], &[], json!({})),
    ];
    let mut edges = vec![edge("s", "exec-out", "e", "exec-in")];
    for i in 1..=depth {
        let (prev, id) = (format!("d{}", i - 1), format!("d{i}"));
        nodes.push(node(
            &id,
            "add",
            false,
            &[],
            &["a", "b"],
            &["result"],
            json!({}),
        ));
        edges.push(edge(&prev, "result", &id, "a"));
        edges.push(edge(&prev, "result", &id, "b"));
    }
    edges.push(edge(&format!("d{depth}"), "result", "e", "total"));
    json!({"id": "diamonds", "entryNode": "s", "nodes": nodes, "edges": edges})
}
