//! `memact_compose`: MemAct Active Memory from a knowledge-graph query result (flow-format §4 C), as the seed's
//! `memact_compose` adapter, `memact_composer` and `active_memory` modules do it.
//!
//! The node reads `kg_result` (or a `raw` / `result` pin: `memory_kg_query`'s `raw` output), `stimulus` (or
//! `query_text`), `marker` and `max_items`. With a dict result it rebuilds the CURRENT CONTEXT module of the run's
//! Active Memory (`_runtime.active_memory`): the lines that carry the marker from an earlier composition go, one
//! line per knowledge-graph packet comes in, and the node answers the delta, a trace, the whole memory, its
//! blocks and the system prompt they render. Without a dict result it completes with `ok: false`, as the seed.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The memory's format version.
const VERSION: i64 = 1;

const MEMORY_BLUEPRINTS_MD: &str = "## MEMORY BLUEPRINTS

My Memory System is the coordination layer to my cognition, it is the backbone to all my thoughts and actions. Dynamical and selective memory is essential to my ability to focus and complete my tasks.

### MEMORY MODULES
- MY PERSONA : my core identity, self model and key purposes
- RELATIONSHIPS : the people and agent i interact with, our preferences, methods, shared goals and history
- MEMORY BLUEPRINTS : this module - describes the structure and purpose of my memory, how to use it and update it
- CURRENT TASKS : my short term memory describing my current plan - what I am doing now, how and why; keep ≤8, actionable
- CURRENT CONTEXT : dynamically reconstructed short term memory to deepen my understanding and support the completion of my current tasks
- CRITICAL INSIGHTS : my gathered experiences and knowledge to help me build upon winning strategies and avoid pitfalls
- REFERENCES : this is the foundational support to my long term memory : I keep durable pointers (GUPRIs/files/URLs/span_ids, artifact_ids) to memories that I can later recall on demand when needed
- HISTORY : append-only long term experiential episodic memories of my key events, successes and failures, as well as my key decisions, actions, results and evolution of relationships

### ACCESSING MY MEMORY
- Always remember MY PERSONA at all time, it is the cornerstone to all my thoughts and actions
- My short term memory are the modules CURRENT TASKS and CURRENT CONTEXT
- At each cycle, I must:
    - focus on the most relevant modules and memories to complete my CURRENT TASKS
    - dynamically reconstruct my short term memory in CURRENT CONTEXT to deepen my understanding of the CURRENT TASKS and take more informed decisions and actions
        - identify the relevant CRITICAL INSIGHTS that can help me complete my Current Tasks
        - identify if other long term memory from the REFERENCES module could be relevant
        - access the relevant ones
    - store the relevant information / updates in my CURRENT CONTEXT module
- If I want to remember what I did in the past, I review my HISTORY module

### UPDATING MY MEMORY
- Structured communication and response is essential
- Memory must be structured with care to enable both short and long term easy access, recall and update
- Each update must be unitary : 1 update = 1 statement for 1 module
- I can request multiple unitary updates at each cycle
";

const DEFAULT_PERSONA_MD: &str = "You are an autonomous coding agent inside AbstractFramework.

- You take action by calling tools (files/commands/web) when needed.
- You verify changes with targeted checks/tests when possible.
- You are truthful: only claim actions supported by tool outputs.";

/// The modules (list key, record id prefix) and their default sizes.
const MODULES: [(&str, &str, i64); 6] = [
    ("relationships", "rel", 40),
    ("current_tasks", "tsk", 8),
    ("current_context", "ctx", 60),
    ("critical_insights", "ins", 60),
    ("references", "ref", 80),
    ("history", "hist", 200),
];

const NO_RESULT: &str =
    "memact_compose requires a dict kg_result (connect memory_kg_query.raw or output)";

/// The clock a composition stamps records with (one reading per node execution).
struct Now {
    iso: String,
    compact: String,
}

impl Now {
    fn read() -> Now {
        let t = OffsetDateTime::now_utc();
        let two = |n: u8| format!("{n:02}");
        Now {
            iso: format!(
                "{:04}-{}-{}T{}:{}:{}+00:00",
                t.year(),
                two(u8::from(t.month())),
                two(t.day()),
                two(t.hour()),
                two(t.minute()),
                two(t.second())
            ),
            compact: format!(
                "{}/{}/{} {}:{}:{}",
                two((t.year().rem_euclid(100)) as u8),
                two(u8::from(t.month())),
                two(t.day()),
                two(t.hour()),
                two(t.minute()),
                two(t.second())
            ),
        }
    }
}

static TS_PREFIX: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\[\s*)?\d{2}/\d{2}/\d{2}\s+\d{2}:\d{2}:\d{2}(?:\s*\])?\s*").ok()
});

/// One statement: blanks collapsed, a leading `YY/MM/DD HH:MM:SS` stamp removed.
fn normalize_statement(text: &str) -> String {
    let s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match TS_PREFIX.as_ref() {
        Some(re) => re.replace(&s, "").trim().to_string(),
        None => s,
    }
}

fn match_key(text: &str) -> String {
    normalize_statement(text).to_lowercase()
}

fn new_record(text: &str, prefix: &str, now: &Now) -> Value {
    json!({"id": format!("{prefix}_{}", uuid::Uuid::new_v4().simple()), "text": normalize_statement(text),
        "ts": now.compact, "created_at": now.iso})
}

/// `ensure_memact_memory`: `vars._runtime.active_memory` with its version, persona, six lists of records and
/// limits, created if missing; returns it.
fn ensure_memory<'a>(vars: &'a mut Map<String, Value>, now: &Now) -> &'a mut Map<String, Value> {
    let runtime = vars
        .entry("_runtime")
        .and_modify(|v| {
            if !v.is_object() {
                *v = json!({});
            }
        })
        .or_insert_with(|| json!({}));
    let Value::Object(runtime) = runtime else {
        unreachable!("made an object above")
    };
    let mem = runtime
        .entry("active_memory")
        .and_modify(|v| {
            if !v.is_object() {
                *v = json!({});
            }
        })
        .or_insert_with(|| json!({}));
    let Value::Object(mem) = mem else {
        unreachable!("made an object above")
    };
    let version = match mem.get("version") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    if version != Some(VERSION) {
        mem.insert("version".into(), json!(VERSION));
    }
    if mem
        .get("persona")
        .and_then(Value::as_str)
        .is_none_or(|p| p.trim().is_empty())
    {
        mem.insert("persona".into(), json!(DEFAULT_PERSONA_MD));
    }
    for (key, _, _) in MODULES {
        let records: Vec<Value> = match mem.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(_) => Some(item.clone()),
                    Value::String(s) if !s.trim().is_empty() => Some(new_record(s, "m", now)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        mem.insert(key.into(), Value::Array(records));
    }
    let mut limits = Map::new();
    if let Some(Value::Object(given)) = mem.get("limits") {
        for (k, v) in given {
            let n = match v {
                Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                Value::String(s) => s.trim().parse().ok(),
                Value::Bool(b) => Some(i64::from(*b)),
                _ => None,
            };
            if !k.trim().is_empty()
                && let Some(n) = n.filter(|n| *n > 0)
            {
                limits.insert(k.trim().to_string(), json!(n));
            }
        }
    }
    for (key, _, default) in MODULES {
        limits.entry(key).or_insert_with(|| json!(default));
    }
    mem.insert("limits".into(), Value::Object(limits));
    if mem
        .get("created_at")
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        mem.insert("created_at".into(), json!(now.iso));
    }
    mem
}

fn text_of(record: &Value) -> &str {
    record.get("text").and_then(Value::as_str).unwrap_or("")
}

/// `_apply_delta_to_list`: removals by normalised text, additions on top (newest first) unless present, then
/// the module's limit. Returns (added, removed, trimmed).
fn apply_delta(
    records: &mut Vec<Value>,
    added: &[String],
    removed: &[String],
    limit: i64,
    prefix: &str,
    now: &Now,
) -> (usize, usize, usize) {
    let removed_keys: std::collections::HashSet<String> =
        removed.iter().map(|s| match_key(s)).collect();
    let before = records.len();
    if !removed_keys.is_empty() {
        records.retain(|r| !removed_keys.contains(&match_key(text_of(r))));
    }
    let removed_n = before - records.len();
    let mut existing: std::collections::HashSet<String> =
        records.iter().map(|r| match_key(text_of(r))).collect();
    let mut added_n = 0;
    for s in added {
        let key = match_key(s);
        if key.is_empty() || existing.contains(&key) {
            continue;
        }
        records.insert(0, new_record(s, prefix, now));
        existing.insert(key);
        added_n += 1;
    }
    let mut trimmed = 0;
    if limit > 0 && records.len() as i64 > limit {
        trimmed = records.len() - limit as usize;
        records.truncate(limit as usize);
    }
    (added_n, removed_n, trimmed)
}

fn clean_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![normalize_statement(s)],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(normalize_statement)
            .collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

/// `apply_memact_envelope` for the modules an envelope names (history is append-only).
fn apply_envelope(mem: &mut Map<String, Value>, envelope: &Value, now: &Now) -> Value {
    let mut applied = Map::new();
    for (key, prefix, default) in MODULES {
        let limit = mem
            .get("limits")
            .and_then(|l| l.get(key))
            .and_then(Value::as_i64)
            .filter(|n| *n > 0)
            .unwrap_or(default);
        let delta = envelope.get(key);
        let added = clean_list(delta.and_then(|d| d.get("added")));
        let removed = if key == "history" {
            Vec::new()
        } else {
            clean_list(delta.and_then(|d| d.get("removed")))
        };
        // Taken in place: removing the key would move it to the end of the object (the seed keeps its order).
        let mut records = match mem.get_mut(key) {
            Some(Value::Array(a)) => std::mem::take(a),
            _ => Vec::new(),
        };
        let (a, r, t) = apply_delta(&mut records, &added, &removed, limit, prefix, now);
        mem.insert(key.into(), Value::Array(records));
        applied.insert(
            key.into(),
            if key == "history" {
                json!({"added": a, "trimmed": t})
            } else {
                json!({"added": a, "removed": r, "trimmed": t})
            },
        );
    }
    mem.insert("updated_at".into(), json!(now.iso));
    json!({"ok": true, "applied": applied})
}

/// `render_memact_blocks`.
fn blocks(mem: &Map<String, Value>) -> Vec<Value> {
    let list = |key: &str| {
        let lines: Vec<String> = mem
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let text = item.get("text")?.as_str()?.trim();
                        if text.is_empty() {
                            return None;
                        }
                        let ts = item
                            .get("ts")
                            .and_then(Value::as_str)
                            .map(str::trim)
                            .unwrap_or("");
                        Some(if ts.is_empty() {
                            format!("- {text}")
                        } else {
                            format!("- [{ts}] {text}")
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if lines.is_empty() {
            "(empty)".to_string()
        } else {
            lines.join("\n").trim().to_string()
        }
    };
    let persona = mem
        .get("persona")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PERSONA_MD);
    let block = |id: &str, title: &str, content: String| json!({"component_id": id, "title": title, "content": content});
    vec![
        block(
            "memory_blueprints",
            "MEMORY BLUEPRINTS",
            MEMORY_BLUEPRINTS_MD.trim().to_string(),
        ),
        block("persona", "MY PERSONA", persona.to_string()),
        block("relationships", "RELATIONSHIPS", list("relationships")),
        block("current_tasks", "CURRENT TASKS", list("current_tasks")),
        block(
            "current_context",
            "CURRENT CONTEXT",
            list("current_context"),
        ),
        block(
            "critical_insights",
            "CRITICAL INSIGHTS",
            list("critical_insights"),
        ),
        block("references", "REFERENCES", list("references")),
        block("history", "HISTORY", list("history")),
    ]
}

/// `render_memact_system_prompt`: the blueprints, then `## TITLE\ncontent` per module.
fn system_prompt(blocks: &[Value]) -> String {
    let mut parts = Vec::new();
    for b in blocks {
        let content = b["content"].as_str().unwrap_or("").trim_end();
        if content.is_empty() {
            continue;
        }
        if b["component_id"] == "memory_blueprints" {
            parts.push(content.trim().to_string());
            continue;
        }
        parts.push(
            format!("## {}\n{content}", b["title"].as_str().unwrap_or(""))
                .trim_end()
                .to_string(),
        );
    }
    parts.join("\n\n").trim().to_string()
}

fn packet_statement(pkt: &Map<String, Value>) -> String {
    if let Some(s) = pkt
        .get("statement")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        return s.to_string();
    }
    let part = |k: &str| {
        pkt.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    match (part("subject"), part("predicate"), part("object")) {
        (Some(s), Some(p), Some(o)) => format!("{s} —{p}→ {o}"),
        _ => String::new(),
    }
}

fn dict_list(v: Option<&Value>) -> Vec<Map<String, Value>> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_object().cloned()).collect())
        .unwrap_or_default()
}

/// The packets of a result: its own, else its items packetized (subject, predicate and object cleaned,
/// duplicates by case dropped).
fn packets_of(kg: &Map<String, Value>) -> (Vec<Map<String, Value>>, &'static str) {
    let packets = dict_list(kg.get("packets"));
    if !packets.is_empty() {
        return (packets, "kg_result.packets");
    }
    let items = dict_list(kg.get("items"));
    if items.is_empty() {
        return (Vec::new(), "none");
    }
    let clean = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.split_whitespace().collect::<Vec<_>>().join(" "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let (s, p, o) = (
            clean(item.get("subject")),
            clean(item.get("predicate")),
            clean(item.get("object")),
        );
        if s.is_empty() || p.is_empty() || o.is_empty() {
            continue;
        }
        let at = clean(item.get("observed_at"));
        if !seen.insert((
            s.to_lowercase(),
            p.to_lowercase(),
            o.to_lowercase(),
            at.clone(),
        )) {
            continue;
        }
        let mut pkt = Map::new();
        pkt.insert("statement".into(), json!(format!("{s} —{p}→ {o}")));
        if !at.is_empty() {
            pkt.insert("observed_at".into(), json!(at));
        }
        let prov = item.get("provenance");
        for k in ["span_id", "writer_workflow_id"] {
            let v = clean(prov.and_then(|p| p.get(k)));
            if !v.is_empty() {
                pkt.insert(k.into(), json!(v));
            }
        }
        if let Some(score) = item
            .get("attributes")
            .and_then(|a| a.get("_retrieval"))
            .and_then(|r| r.get("score"))
            .filter(|s| s.is_number())
        {
            pkt.insert("retrieval_score".into(), score.clone());
        }
        out.push(pkt);
    }
    (out, "packetize_assertions(items)")
}

/// `memact_compose` with its inputs resolved: updates `vars._runtime.active_memory` and returns the node's output.
pub fn compose(inputs: &Map<String, Value>, vars: &mut Map<String, Value>) -> Value {
    let kg_result = ["kg_result", "raw", "result"]
        .iter()
        .find_map(|k| inputs.get(*k).filter(|v| !v.is_null()));
    let Some(Value::Object(kg)) = kg_result else {
        return json!({"ok": false, "error": NO_RESULT, "delta": {}, "trace": {}, "active_memory": {},
            "memact_system_prompt": "", "memact_blocks": []});
    };
    let stimulus = match inputs
        .get("stimulus")
        .filter(|v| !v.is_null())
        .or_else(|| inputs.get("query_text"))
    {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let marker = match inputs.get("marker") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => "KG:".to_string(),
    };
    let max_items = match inputs.get("max_items") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .map(|f| f as i64)
    .filter(|n| *n > 0);
    let now = Now::read();
    let mem = ensure_memory(vars, &now);
    let removed: Vec<String> = mem
        .get("current_context")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r.get("text").and_then(Value::as_str))
                .filter(|t| {
                    let t = t.trim();
                    !t.is_empty() && t.to_lowercase().starts_with(&marker.to_lowercase())
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let (mut packets, source) = packets_of(kg);
    if let Some(max) = max_items {
        packets.truncate(max as usize);
    }
    let mut added = Vec::new();
    let mut selected = Vec::new();
    for pkt in &packets {
        let statement = packet_statement(pkt);
        if statement.is_empty() {
            continue;
        }
        let mut suffix = Vec::new();
        for (k, label) in [("span_id", "span"), ("writer_workflow_id", "wf")] {
            if let Some(v) = pkt
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                suffix.push(format!("{label}:{v}"));
            }
        }
        let suffix = if suffix.is_empty() {
            String::new()
        } else {
            format!(" ({})", suffix.join("; "))
        };
        added.push(format!("{marker} {statement}{suffix}").trim().to_string());
        if selected.len() < 50 {
            let get = |k: &str| pkt.get(k).cloned().unwrap_or(Value::Null);
            selected.push(json!({"statement": statement, "span_id": get("span_id"),
                "observed_at": get("observed_at"), "retrieval_score": get("retrieval_score")}));
        }
    }
    let delta = json!({"current_context": {"added": added, "removed": removed}});
    let applied = apply_envelope(mem, &delta, &now);
    let kg_get = |k: &str| kg.get(k).cloned().unwrap_or(Value::Null);
    let trace = json!({
        "stimulus": stimulus,
        "marker": marker,
        "packet_source": source,
        "kg": {
            "ok": kg.get("ok").map(|v| json!(pycompat::repr::py_truthy(v))).unwrap_or(Value::Null),
            "count": kg_get("count"),
            "packed_count": kg_get("packed_count"),
            "estimated_tokens": kg_get("estimated_tokens"),
            "dropped": kg_get("dropped"),
            "effort": kg_get("effort"),
            "warnings": kg_get("warnings"),
        },
        "delta_preview": {"removed": removed.len(), "added": added.len()},
        "selected": selected,
        "applied": applied,
    });
    let blocks = blocks(mem);
    let prompt = system_prompt(&blocks);
    json!({"ok": true, "delta": delta, "trace": trace, "active_memory": Value::Object(mem.clone()),
        "memact_system_prompt": prompt, "memact_blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_dict_result_it_reports_the_seeds_error() {
        for inputs in [
            json!({}),
            json!({"kg_result": "text"}),
            json!({"kg_result": [1], "stimulus": "hi"}),
        ] {
            let mut vars = Map::new();
            let out = compose(inputs.as_object().expect("object"), &mut vars);
            assert_eq!(out["ok"], false);
            assert_eq!(out["error"], NO_RESULT);
            assert_eq!(out["memact_blocks"], json!([]));
            assert!(vars.is_empty(), "no memory is made without a result");
        }
    }

    #[test]
    fn composes_current_context_from_a_kg_result_as_the_seed() {
        let mut vars = Map::new();
        vars.insert(
            "_runtime".into(),
            json!({"active_memory": {"current_context": ["keep me", "KG: stale line"]}}),
        );
        let kg = json!({"ok": true, "count": 2, "items": [
            {"subject": "ex:a", "predicate": "rdf:type", "object": "schema:Person"},
            {"subject": "ex:a", "predicate": "schema:name", "object": "alice",
             "provenance": {"span_id": "sp1", "writer_workflow_id": "wf1"}}]});
        let inputs = json!({"raw": kg, "stimulus": " who is alice "});
        let out = compose(inputs.as_object().expect("object"), &mut vars);
        assert_eq!(out["ok"], true, "{out}");
        assert_eq!(
            out["delta"],
            json!({"current_context": {"added": [
                "KG: ex:a —rdf:type→ schema:Person",
                "KG: ex:a —schema:name→ alice (span:sp1; wf:wf1)"],
                "removed": ["KG: stale line"]}})
        );
        assert_eq!(out["trace"]["packet_source"], "packetize_assertions(items)");
        assert_eq!(out["trace"]["stimulus"], "who is alice");
        assert_eq!(
            out["trace"]["applied"]["applied"]["current_context"],
            json!({"added": 2, "removed": 1, "trimmed": 0})
        );
        let ctx: Vec<&str> = vars["_runtime"]["active_memory"]["current_context"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["text"].as_str().expect("text"))
            .collect();
        // Newly added lines go on top, in reverse order, as on the seed.
        assert_eq!(
            ctx,
            [
                "KG: ex:a —schema:name→ alice (span:sp1; wf:wf1)",
                "KG: ex:a —rdf:type→ schema:Person",
                "keep me"
            ]
        );
        let mem = &vars["_runtime"]["active_memory"];
        let keys: Vec<&String> = mem.as_object().expect("memory").keys().collect();
        assert_eq!(
            keys,
            [
                "current_context",
                "version",
                "persona",
                "relationships",
                "current_tasks",
                "critical_insights",
                "references",
                "history",
                "limits",
                "created_at",
                "updated_at"
            ]
        );
        assert_eq!(mem["version"], 1);
        assert_eq!(mem["limits"]["history"], 200);
        assert!(
            mem["current_context"][0]["id"]
                .as_str()
                .expect("id")
                .starts_with("ctx_")
        );
        let blocks = out["memact_blocks"].as_array().expect("blocks");
        assert_eq!(blocks.len(), 8);
        assert_eq!(blocks[2]["content"], "(empty)");
        let prompt = out["memact_system_prompt"].as_str().expect("prompt");
        assert!(prompt.starts_with("## MEMORY BLUEPRINTS\n\nMy Memory System"));
        assert!(prompt.contains("## MY PERSONA\nYou are an autonomous coding agent"));
        assert!(prompt.contains("\n\n## CURRENT CONTEXT\n- ["), "{prompt}");
        // A second composition replaces the marked lines and keeps the rest.
        let again = compose(inputs.as_object().expect("object"), &mut vars);
        assert_eq!(
            again["trace"]["delta_preview"],
            json!({"removed": 2, "added": 2})
        );
        assert_eq!(
            vars["_runtime"]["active_memory"]["current_context"]
                .as_array()
                .map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn statements_lose_their_stamp_and_blanks() {
        assert_eq!(normalize_statement(" [26/12/06 20:08:01]  a\n b "), "a b");
        assert_eq!(match_key("26/12/06 20:08:01 KG: X"), "kg: x");
    }
}
