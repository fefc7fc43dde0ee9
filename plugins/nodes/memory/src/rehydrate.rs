//! `memory_rehydrate` ("Recall into context"): inserts recalled spans (archived conversation messages, or a
//! note as one system message) into the run's `context.messages`, deduplicated by message id.

use abstractgateway_plugin_sdk::{
    ContextEdit, Error, Invocation, NodeResult, Outputs, Value, json, outputs,
};

use crate::context;
use crate::host::Host;
use crate::recall;
use crate::store::{self, RunIds};
use crate::util::int_of;

fn nothing() -> Outputs {
    let raw = json!({"inserted": 0, "skipped": 0, "artifacts": []});
    outputs! { "inserted" => 0, "skipped" => 0, "artifacts" => json!([]), "raw" => raw }
}

/// Runs one `memory_rehydrate` node.
pub fn run(h: &mut dyn Host, inv: &Invocation) -> Result<NodeResult, Error> {
    let ids = RunIds::from_config(inv.config())?;
    let input = inv.inputs();
    let requested: Vec<Value> = match input
        .get("span_ids")
        .filter(|v| !v.is_null())
        .or(input.get("span_id").filter(|v| !v.is_null()))
    {
        Some(Value::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
        None => vec![],
    };
    let placement = match input.get("placement") {
        Some(Value::String(s)) if matches!(s.trim(), "after_summary" | "after_system" | "end") => {
            s.trim().to_string()
        }
        _ => "after_summary".into(),
    };
    let level = recall::parse(input.get("recall_level").filter(|v| v.is_string()))
        .map_err(Error::invalid_input)?;
    if requested.is_empty() {
        // Recall found nothing: a valid no-op.
        return Ok(nothing().into());
    }
    let given = input.get("max_messages").filter(|v| !v.is_null());
    let mut max_messages = given.and_then(|v| int_of(Some(v)));
    let mut warnings: Vec<String> = Vec::new();
    let mut effort = Value::Null;
    if let Some(p) = level {
        let (default, max) = p.rehydrate_max_messages;
        let mut n = match given.filter(|v| !v.is_boolean()).and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        }) {
            Some(f) => f.trunc() as i64,
            None => default,
        };
        if n < 1 {
            warnings.push(format!(
                "recall_level={}: max_messages must be >=1; using {default}",
                p.name
            ));
            n = default;
        }
        if n > max {
            warnings.push(format!(
                "recall_level={}: clamped max_messages from {n} to {max}",
                p.name
            ));
            n = max;
        }
        max_messages = Some(n);
        effort = json!({"recall_level": p.name, "applied": {"max_messages": n}});
    }
    let spans = store::list(h, &ids.run_id)?;
    let resolved = store::resolve_ids(&requested, &spans);
    if resolved.is_empty() {
        return Ok(nothing().into());
    }
    let kind_of = |id: &str| -> Option<String> {
        spans
            .iter()
            .find(|e| e.id() == id)
            .map(|e| e.str("kind").trim().to_string())
            .filter(|k| !k.is_empty())
    };
    let mut wanted = Vec::new();
    let mut passed_over = Vec::new();
    for id in &resolved {
        match kind_of(id) {
            Some(k) if k != "conversation_span" && k != "memory_note" => passed_over.push(
                json!({"span_id": id, "inserted": 0, "skipped": 0, "error": null, "kind": k}),
            ),
            _ => wanted.push(id.clone()),
        }
    }
    let mut active = context::messages(inv);
    let done = context::rehydrate(
        h,
        &mut active,
        &wanted,
        &placement,
        "message_id",
        max_messages,
    )?;
    let mut artifacts: Vec<Value> = done
        .artifacts
        .iter()
        .map(|a| {
            let id = a
                .get("artifact_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"span_id": id, "inserted": a.get("inserted"), "skipped": a.get("skipped"),
                "error": a.get("error"), "kind": kind_of(id), "preview": a.get("preview")})
        })
        .collect();
    artifacts.extend(passed_over);
    let raw = json!({"inserted": done.inserted, "skipped": done.skipped, "artifacts": artifacts,
        "effort": effort, "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) }});
    let out: NodeResult = outputs! { "inserted" => done.inserted, "skipped" => done.skipped,
    "artifacts" => artifacts, "raw" => raw }
    .into();
    Ok(if done.inserted > 0 {
        out.with_context_edit(ContextEdit::Replace(active))
    } else {
        out
    })
}
