//! `memory_tag`: merges (or replaces) the tags of an existing span in the run's, session's or global index.

use abstractgateway_plugin_sdk::{Error, Invocation, Outputs, Value, json, outputs};

use crate::host::Host;
use crate::store::{self, RunIds};
use crate::util::{clean_tags, coerce_bool, iso_utc, py_dumps_sorted};

/// Runs one `memory_tag` node.
pub fn run(h: &mut dyn Host, inv: &Invocation) -> Result<Outputs, Error> {
    let ids = RunIds::from_config(inv.config())?;
    let input = inv.inputs();
    let scope = match input.get("scope") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_lowercase(),
        _ => "run".into(),
    };
    if !matches!(scope.as_str(), "run" | "session" | "global" | "all") {
        return Err(Error::invalid_input(format!(
            "Unknown memory_tag scope: {scope}"
        )));
    }
    let span_id = input
        .get("span_id")
        .filter(|v| !v.is_null())
        .or(input.get("spanId").filter(|v| !v.is_null()))
        .ok_or_else(|| Error::invalid_input("MEMORY_TAG requires payload.span_id"))?;
    let raw_tags = match input.get("tags") {
        Some(Value::Object(t)) if !t.is_empty() => t,
        _ => {
            return Err(Error::invalid_input(
                "MEMORY_TAG requires payload.tags as a non-empty dict[str,str]",
            ));
        }
    };
    let merge = input.get("merge").is_none_or(|v| coerce_bool(Some(v)));
    let tags = clean_tags(Some(&Value::Object(raw_tags.clone())));
    if tags.is_empty() {
        return Err(Error::invalid_input(
            "MEMORY_TAG requires at least one non-empty string tag",
        ));
    }
    let (artifact_id, index) = match span_id {
        Value::Number(n) if n.is_i64() => (None, n.as_i64()),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Err(Error::invalid_input(
                    "MEMORY_TAG requires a non-empty span_id",
                ));
            }
            if s.bytes().all(|b| b.is_ascii_digit()) {
                (None, s.parse::<i64>().ok())
            } else {
                (Some(s.to_string()), None)
            }
        }
        _ => {
            return Err(Error::invalid_input(
                "MEMORY_TAG requires span_id as str or int",
            ));
        }
    };
    if scope == "all" && index.is_some() {
        return Err(Error::invalid_input(
            "memory_tag scope='all' requires span_id as artifact id (no indices)",
        ));
    }
    let owners = match scope.as_str() {
        "all" => ids.all_owners(),
        s => vec![ids.owner(s).map_err(Error::invalid_input)?],
    };
    let now = iso_utc(h.now_ms());
    let mut applied = Vec::new();
    for owner in &owners {
        let spans = store::list(h, owner)?;
        let found = match (index, &artifact_id) {
            (Some(i), _) => usize::try_from(i - 1).ok().and_then(|i| spans.get(i)),
            (None, Some(id)) => spans.iter().find(|e| e.id() == id),
            (None, None) => None,
        };
        let Some(entry) = found.filter(|e| !e.id().is_empty()) else {
            continue;
        };
        let mut entry = entry.clone();
        let mut merged = match (merge, entry.span.get("tags")) {
            (true, Some(Value::Object(t))) => t.clone(),
            _ => Default::default(),
        };
        merged.extend(tags.clone());
        entry
            .span
            .insert("tags".into(), Value::Object(merged.clone()));
        entry.span.insert("tagged_at".into(), json!(now));
        if let Some(a) = &ids.actor_id {
            entry.span.insert("tagged_by".into(), json!(a));
        }
        store::save(h, &entry)?;
        applied.push(json!({"run_id": owner, "artifact_id": entry.id(), "tags": merged}));
    }
    let Some(first) = applied.first() else {
        return Err(Error::invalid_input(match (&artifact_id, index) {
            (Some(id), _) => format!("Unknown span_id: {id}"),
            (None, Some(i)) => format!("Unknown span index: {i}"),
            _ => "Could not resolve span_id".into(),
        }));
    };
    let runs: Vec<&str> = applied
        .iter()
        .filter_map(|a| a["run_id"].as_str())
        .collect();
    let text = format!(
        "Tagged span_id={} scope={scope} runs=[{}] tags={}",
        first["artifact_id"].as_str().unwrap_or_default(),
        runs.join(","),
        py_dumps_sorted(&first["tags"])
    );
    let results = json!([{"call_id": "memory", "name": "remember", "success": true, "output": text,
        "error": null, "meta": {"applied": applied}}]);
    let raw = json!({"mode": "executed", "results": results});
    Ok(outputs! { "rendered" => text, "success" => true, "results" => results, "raw" => raw })
}
