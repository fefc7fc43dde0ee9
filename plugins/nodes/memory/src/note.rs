//! `memory_note` ("Memorize"): stores a note as a span of the run, its session or the global memory.

use abstractgateway_plugin_sdk::{
    ContextEdit, Error, Invocation, Map, NodeResult, Value, json, outputs,
};

use crate::context;
use crate::host::Host;
use crate::store::{self, RunIds};
use crate::util::{bounded, clean_tags, coerce_bool, iso_utc, py_dumps_sorted, text_of};

fn str_list(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(Value::Array(items)) = v {
        for item in items {
            let s = match item {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                _ => continue,
            };
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Runs one `memory_note` node.
pub fn run(h: &mut dyn Host, inv: &Invocation) -> Result<NodeResult, Error> {
    let ids = RunIds::from_config(inv.config())?;
    let input = inv.inputs();
    let scope = match input.get("scope") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_lowercase(),
        _ => "run".into(),
    };
    let owner = ids.owner(&scope).map_err(Error::invalid_input)?;
    let note = text_of(input.get("content")).trim().to_string();
    if note.is_empty() {
        return Err(Error::invalid_input(
            "MEMORY_NOTE requires payload.note (non-empty string)",
        ));
    }
    let location = match input.get("location") {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => String::new(),
    };
    let tags = clean_tags(input.get("tags"));
    let sources = match input.get("sources") {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    let source_run = match sources.get("run_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => ids.run_id.clone(),
    };
    let span_ids = str_list(sources.get("span_ids"));
    let message_ids = str_list(sources.get("message_ids"));
    // An explicit pin wins over the editor's checkbox in the node config.
    let keep = match input.get("keep_in_context").or(input.get("keepInContext")) {
        Some(v) => coerce_bool(Some(v)),
        None => coerce_bool(
            inv.config()
                .get("keep_in_context")
                .or(inv.config().get("keepInContext")),
        ),
    };

    let created_at = iso_utc(h.now_ms());
    let mut data = Map::new();
    data.insert("note".into(), json!(note));
    data.insert(
        "sources".into(),
        json!({"run_id": source_run, "span_ids": span_ids, "message_ids": message_ids}),
    );
    data.insert("created_at".into(), json!(created_at));
    if !location.is_empty() {
        data.insert("location".into(), json!(location));
    }
    if let Some(a) = &ids.actor_id {
        data.insert("actor_id".into(), json!(a));
    }
    if let Some(s) = &ids.session_id {
        data.insert("session_id".into(), json!(s));
    }
    let mut artifact_tags = Map::new();
    artifact_tags.insert("kind".into(), json!("memory_note"));
    artifact_tags.extend(tags.clone());
    let span_id = store::put_payload(h, &owner, &Value::Object(data), &artifact_tags)?;

    let preview = bounded(&note, 160);
    let mut span = Map::new();
    span.insert("kind".into(), json!("memory_note"));
    span.insert("artifact_id".into(), json!(span_id));
    span.insert("created_at".into(), json!(created_at));
    span.insert("from_timestamp".into(), json!(created_at));
    span.insert("to_timestamp".into(), json!(created_at));
    span.insert("message_count".into(), json!(0));
    span.insert("note_preview".into(), json!(preview));
    if !location.is_empty() {
        span.insert("location".into(), json!(location));
    }
    if !tags.is_empty() {
        span.insert("tags".into(), Value::Object(tags.clone()));
    }
    if !span_ids.is_empty() || !message_ids.is_empty() {
        span.insert(
            "sources".into(),
            json!({"run_id": source_run, "span_ids": span_ids, "message_ids": message_ids}),
        );
    }
    if let Some(a) = &ids.actor_id {
        span.insert("created_by".into(), json!(a));
    }
    store::append(h, &owner, span, artifact_tags)?;

    let mut meta = Map::new();
    meta.insert("span_id".into(), json!(span_id));
    meta.insert("created_at".into(), json!(created_at));
    meta.insert("note_preview".into(), json!(preview));
    let mut edit = None;
    if keep {
        // The note becomes visible to later model calls: one synthetic system message at the end.
        let mut active = context::messages(inv);
        let done = context::rehydrate(
            h,
            &mut active,
            std::slice::from_ref(&span_id),
            "end",
            "message_id",
            Some(1),
        )?;
        meta.insert(
            "kept_in_context".into(),
            json!({"inserted": done.inserted, "skipped": done.skipped}),
        );
        if done.inserted > 0 {
            edit = Some(ContextEdit::Replace(active));
        }
    }
    let tags_text = if tags.is_empty() {
        "{}".to_string()
    } else {
        py_dumps_sorted(&Value::Object(tags))
    };
    let raw = json!({"mode": "executed", "results": [{
        "call_id": "memory", "name": "remember_note", "success": true,
        "output": format!("Stored memory_note span_id={span_id} tags={tags_text}"),
        "error": null, "meta": meta}]});
    Ok(NodeResult {
        context_edit: edit,
        ..outputs! { "note_id" => span_id, "raw" => raw }.into()
    })
}
