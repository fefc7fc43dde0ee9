//! The run's active context (`context.messages`) as the memory nodes read and rewrite it: the component
//! gets it as the invocation's run context and hands a rewritten list back as a `ContextEdit::Replace`.

use abstractgateway_plugin_sdk::{Error, Invocation, Map, Value, json};

use crate::host::Host;
use crate::store;
use crate::util::bounded;

/// The run's `context.messages` (empty when the run has none).
pub fn messages(inv: &Invocation) -> Vec<Value> {
    match inv.run_context().and_then(|c| c.get("messages")) {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    }
}

/// Whether the run has a `context` object at all (the seed's compaction requires one).
pub fn has_context(inv: &Invocation) -> bool {
    inv.run_context().is_none_or(Value::is_object)
}

fn message_key(m: &Value, dedup_by: &str) -> Option<String> {
    if dedup_by != "message_id" {
        return None;
    }
    m.get("metadata")
        .and_then(|md| md.get("message_id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn is_system(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some("system")
}

fn insertion_index(active: &[Value], span_id: &str, placement: &str) -> usize {
    let after_system = || active.iter().take_while(|m| is_system(m)).count();
    match placement {
        "end" => active.len(),
        "after_system" => after_system(),
        _ => active
            .iter()
            .position(|m| {
                let md = m.get("metadata");
                is_system(m)
                    && md.and_then(|x| x.get("kind")).and_then(Value::as_str)
                        == Some("memory_summary")
                    && md
                        .and_then(|x| x.get("source_artifact_id"))
                        .and_then(Value::as_str)
                        == Some(span_id)
            })
            .map(|i| i + 1)
            .unwrap_or_else(after_system),
    }
}

fn preview(inserted: &[Value]) -> String {
    let lines: Vec<String> = inserted
        .iter()
        .take(3)
        .filter_map(|m| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("").trim();
            let content = crate::util::text_of(m.get("content"));
            let content = content.trim();
            if content.is_empty() {
                None
            } else if content.starts_with("[MEMORY NOTE]") || role.is_empty() {
                Some(content.to_string())
            } else {
                Some(format!("{role}: {content}"))
            }
        })
        .collect();
    bounded(lines.join("\n").trim(), 360)
}

/// The messages a span's payload contributes: an archived conversation's messages, or a note as one
/// synthetic system message. `None` when the payload holds neither.
fn span_messages(payload: Option<&Value>, span_id: &str) -> Option<Vec<Value>> {
    if let Some(Value::Array(msgs)) = payload.and_then(|p| p.get("messages")) {
        return Some(msgs.clone());
    }
    let note = payload
        .and_then(|p| p.get("note"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())?;
    let created = payload
        .and_then(|p| p.get("created_at"))
        .map(|v| crate::util::text_of(Some(v)))
        .unwrap_or_default();
    Some(vec![json!({
        "role": "system",
        "content": format!("[MEMORY NOTE]\n{note}"),
        "timestamp": created,
        "metadata": {"kind": "memory_note", "rehydrated": true, "source_artifact_id": span_id,
            "message_id": format!("memory_note:{span_id}")},
    })])
}

/// What a rehydration did.
#[derive(Debug, Default)]
pub struct Rehydrated {
    /// Messages inserted over all spans.
    pub inserted: usize,
    /// Messages skipped as already present.
    pub skipped: usize,
    /// One record per span: `{artifact_id, inserted, skipped, error?, preview?}`.
    pub artifacts: Vec<Map<String, Value>>,
}

/// Inserts the messages of spans `ids` into `active` (the seed's `rehydrate_into_context`): placement
/// `after_summary` | `after_system` | `end`, dedup on `metadata.message_id`, at most `max_messages` in all.
pub fn rehydrate(
    h: &mut dyn Host,
    active: &mut Vec<Value>,
    ids: &[String],
    placement: &str,
    dedup_by: &str,
    max_messages: Option<i64>,
) -> Result<Rehydrated, Error> {
    let cap = max_messages.filter(|m| *m >= 0).map(|m| m as usize);
    let mut seen: Vec<String> = active
        .iter()
        .filter_map(|m| message_key(m, dedup_by))
        .collect();
    let mut out = Rehydrated::default();
    let entry = |id: &str, inserted: usize, skipped: usize, error: Option<&str>| {
        let mut e = Map::new();
        e.insert("artifact_id".into(), json!(id));
        e.insert("inserted".into(), json!(inserted));
        e.insert("skipped".into(), json!(skipped));
        if let Some(err) = error {
            e.insert("error".into(), json!(err));
        }
        e
    };
    for id in ids {
        if cap.is_some_and(|c| out.inserted >= c) {
            out.artifacts.push(entry(id, 0, 0, Some("max_messages")));
            continue;
        }
        let payload = store::payload(h, id)?;
        let Some(msgs) = span_messages(payload.as_ref(), id) else {
            out.artifacts
                .push(entry(id, 0, 0, Some("missing_messages")));
            continue;
        };
        let mut to_insert = Vec::new();
        let mut skipped = 0;
        for m in msgs {
            let Value::Object(mut m) = m else { continue };
            let md = m
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if !md.is_object() {
                *md = Value::Object(Map::new());
            }
            if let Value::Object(md) = md {
                md.entry("rehydrated").or_insert(Value::Bool(true));
                md.entry("source_artifact_id").or_insert(json!(id));
            }
            let m = Value::Object(m);
            if let Some(k) = message_key(&m, dedup_by) {
                if seen.contains(&k) {
                    skipped += 1;
                    continue;
                }
                seen.push(k);
            }
            to_insert.push(m);
        }
        if let Some(c) = cap {
            to_insert.truncate(c - out.inserted);
        }
        let at = insertion_index(active, id, placement);
        let n = to_insert.len();
        let pv = preview(&to_insert);
        active.splice(at..at, to_insert);
        out.inserted += n;
        out.skipped += skipped;
        let mut e = entry(id, n, skipped, None);
        if !pv.is_empty() {
            e.insert("preview".into(), json!(pv));
        }
        out.artifacts.push(e);
    }
    Ok(out)
}
