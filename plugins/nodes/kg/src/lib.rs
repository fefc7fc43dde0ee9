//! Knowledge-graph memory nodes (shipped built-in): `memory_kg_assert`, `memory_kg_query`, `memory_kg_resolve`
//! (flow-format §4 L). Each maps its pins to the seed's MEMORY_KG_* effect payload (as the seed's VisualFlow
//! executor does), makes one `kg` host call, and maps the result to its output pins. The host keeps the triples
//! durably and decides which memory owners the run may reach.

use abstractgateway_plugin_sdk::{
    Error, Invocation, Map, Node, NodeResult, NodeType, Outputs, Value, export_node, json, kg,
};

/// The plugin.
pub struct KgNodes;

impl Node for KgNodes {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("memory_kg_query")
                .label("KG Query")
                .description("Reads assertions from the knowledge-graph memory, packed as active memory under a token budget.")
                .input("query_text", "string")
                .input("subject", "string")
                .input("predicate", "string")
                .input("object", "string")
                .input("since", "string")
                .input("until", "string")
                .input("active_at", "string")
                .input("scope", "string")
                .input("recall_level", "string")
                .input("owner_id", "string")
                .input("min_score", "number")
                .input("max_input_tokens", "number")
                .input("model", "string")
                .input("order", "string")
                .input("limit", "number")
                .output("items", "array")
                .output("count", "number")
                .output("ok", "boolean")
                .output("packets", "array")
                .output("active_memory_text", "string")
                .output("packed_count", "number")
                .output("dropped", "number")
                .output("estimated_tokens", "number")
                .output("raw", "object")
                .effect("memory_kg_query"),
            NodeType::new("memory_kg_assert")
                .label("KG Assert")
                .description("Stores subject–predicate–object assertions in the knowledge-graph memory.")
                .input("assertions", "array")
                .input("scope", "string")
                .input("span_id", "string")
                .input("owner_id", "string")
                .input("attributes_defaults", "object")
                .input("allow_custom_predicates", "boolean")
                .output("assertion_ids", "array")
                .output("count", "number")
                .output("ok", "boolean")
                .output("raw", "object")
                .effect("memory_kg_assert"),
            NodeType::new("memory_kg_resolve")
                .label("KG Resolve")
                .description("Finds the entities of the knowledge-graph memory that a label names.")
                .input("label", "string")
                .input("expected_type", "string")
                .input("scope", "string")
                .input("recall_level", "string")
                .input("owner_id", "string")
                .input("min_score", "number")
                .input("max_candidates", "number")
                .input("include_semantic", "boolean")
                .output("candidates", "array")
                .output("count", "number")
                .output("ok", "boolean")
                .output("raw", "object")
                .effect("memory_kg_resolve"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        match inv.node_type() {
            "memory_kg_assert" => assert_node(&inv),
            "memory_kg_query" => query_node(&inv),
            _ => resolve_node(&inv),
        }
    }
}

/// A non-blank string pin, trimmed.
fn text(inv: &Invocation, pin: &str) -> Option<String> {
    inv.input(pin)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A number pin (a bool is not a number; a numeric string is).
fn number(inv: &Invocation, pin: &str) -> Option<f64> {
    match inv.input(pin)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn put_texts(p: &mut Map<String, Value>, inv: &Invocation, pins: &[&str]) {
    for pin in pins {
        if let Some(v) = text(inv, pin) {
            p.insert((*pin).into(), json!(v));
        }
    }
}

fn assert_node(inv: &Invocation) -> Result<NodeResult, Error> {
    let list = ["assertions", "triples", "items"]
        .iter()
        .find_map(|k| inv.input(k).filter(|v| !v.is_null()));
    let assertions: Vec<Value> = match list {
        Some(Value::Array(a)) => a.iter().filter(|v| v.is_object()).cloned().collect(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let mut p = Map::new();
    p.insert("assertions".into(), Value::Array(assertions));
    put_texts(&mut p, inv, &["scope", "owner_id", "span_id"]);
    if let Some(Value::Object(d)) = inv.input("attributes_defaults")
        && !d.is_empty()
    {
        p.insert("attributes_defaults".into(), Value::Object(d.clone()));
    }
    if let Some(Value::Bool(b)) = inv.input("allow_custom_predicates") {
        p.insert("allow_custom_predicates".into(), json!(b));
    }
    let raw = kg::add(&Value::Object(p))?;
    let ids = raw
        .get("assertion_ids")
        .filter(|v| v.is_array())
        .cloned()
        .unwrap_or_else(|| json!([]));
    let mut out = Outputs::new();
    out.insert("assertion_ids".into(), ids);
    out.insert(
        "count".into(),
        raw.get("count").cloned().unwrap_or(Value::Null),
    );
    out.insert("ok".into(), raw.get("ok").cloned().unwrap_or(Value::Null));
    out.insert("raw".into(), raw);
    Ok(out.into())
}

fn query_node(inv: &Invocation) -> Result<NodeResult, Error> {
    let mut p = Map::new();
    put_texts(
        &mut p,
        inv,
        &[
            "subject",
            "predicate",
            "object",
            "recall_level",
            "scope",
            "owner_id",
            "since",
            "until",
            "active_at",
            "query_text",
            "order",
            "model",
        ],
    );
    if let Some(b) = number(inv, "max_input_tokens").or_else(|| number(inv, "max_in_tokens")) {
        p.insert("max_input_tokens".into(), json!(b as i64));
    }
    if let Some(s) = number(inv, "min_score") {
        p.insert("min_score".into(), json!(s));
    }
    if let Some(Value::Number(n)) = inv.input("limit")
        && let Some(l) = n.as_f64()
    {
        p.insert("limit".into(), json!(l as i64));
    }
    let raw = kg::query(&Value::Object(p))?;
    let mut out = Outputs::new();
    let get = |k: &str| raw.get(k).cloned();
    out.insert(
        "items".into(),
        get("items")
            .filter(Value::is_array)
            .unwrap_or_else(|| json!([])),
    );
    out.insert("count".into(), get("count").unwrap_or(json!(0)));
    out.insert("ok".into(), get("ok").unwrap_or(json!(false)));
    for k in [
        "packets_version",
        "packets",
        "packed_count",
        "active_memory_text",
        "estimated_tokens",
        "dropped",
        "warnings",
    ] {
        if let Some(v) = get(k) {
            out.insert(k.into(), v);
        }
    }
    out.insert("raw".into(), raw);
    Ok(out.into())
}

fn resolve_node(inv: &Invocation) -> Result<NodeResult, Error> {
    let mut p = Map::new();
    put_texts(
        &mut p,
        inv,
        &[
            "label",
            "expected_type",
            "recall_level",
            "scope",
            "owner_id",
        ],
    );
    for pin in ["include_semantic", "includeSemantic"] {
        if let Some(Value::Bool(b)) = inv.input(pin) {
            p.insert("include_semantic".into(), json!(b));
            break;
        }
    }
    if let Some(s) = number(inv, "min_score").or_else(|| number(inv, "minScore")) {
        p.insert("min_score".into(), json!(s));
    }
    if let Some(m) = ["max_candidates", "maxCandidates", "limit"]
        .iter()
        .find_map(|k| number(inv, k))
    {
        p.insert("max_candidates".into(), json!(m as i64));
    }
    let raw = kg::resolve(&Value::Object(p))?;
    let mut out = Outputs::new();
    out.insert(
        "candidates".into(),
        raw.get("candidates")
            .filter(|v| v.is_array())
            .cloned()
            .unwrap_or_else(|| json!([])),
    );
    out.insert(
        "count".into(),
        raw.get("count").cloned().unwrap_or(json!(0)),
    );
    out.insert("ok".into(), raw.get("ok").cloned().unwrap_or(json!(false)));
    if let Some(w) = raw.get("warnings") {
        out.insert("warnings".into(), w.clone());
    }
    out.insert("raw".into(), raw);
    Ok(out.into())
}

export_node!(KgNodes);
