//! `memory_compact`: archives the older part of the run's conversation as a span, asks the model for a
//! summary, and leaves `system messages + summary + recent messages` as the run's `context.messages`.

use abstractgateway_plugin_sdk::llm::Request;
use abstractgateway_plugin_sdk::{
    ContextEdit, Error, Invocation, Map, NodeResult, Outputs, Value, json, outputs, serde_json,
};

use crate::context;
use crate::host::Host;
use crate::store::{self, RunIds};
use crate::util::{int_of, iso_utc, sha256_hex, text_of};

fn tool_result(text: String, meta: Option<Value>) -> Outputs {
    let mut first = json!({"call_id": "memory", "name": "compact_memory", "success": true,
        "output": text, "error": null});
    if let Some(m) = meta {
        first["meta"] = m;
    }
    let raw = json!({"mode": "executed", "results": [first]});
    let span_id = raw["results"][0]["meta"]["span_id"].clone();
    outputs! { "span_id" => span_id, "raw" => raw }
}

/// A message id that is the same on every replay of this node (the seed draws a random one).
fn message_id(run_id: &str, node_id: &str, salt: &str) -> String {
    let digest = sha256_hex(format!("{run_id}\0{node_id}\0{salt}").as_bytes());
    format!("msg_{}", &digest[..32])
}

/// Copies of `messages` with a role, string content, a `metadata.message_id` and a timestamp each.
fn normalize(
    messages: &[Value],
    ids: &RunIds,
    node_id: &str,
    now: &str,
) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let Value::Object(m) = m else { continue };
        let mut m = m.clone();
        let role = match m.get("role") {
            Some(v) if crate::util::truthy(Some(v)) => text_of(Some(v)),
            _ => "user".into(),
        };
        m.insert("role".into(), json!(role));
        let content = text_of(m.get("content"));
        m.insert("content".into(), json!(content));
        let md = m
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !md.is_object() {
            *md = Value::Object(Map::new());
        }
        if let Value::Object(md) = md
            && md
                .get("message_id")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            md.insert(
                "message_id".into(),
                json!(message_id(&ids.run_id, node_id, &format!("{i}:{content}"))),
            );
        }
        if m.get("timestamp")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            m.insert("timestamp".into(), json!(now));
        }
        out.push(m);
    }
    out
}

/// The summary request: the seed runtime's own compaction prompt.
fn prompt(older: &[Map<String, Value>], mode: &str, focus: Option<&str>) -> String {
    let older_text: Vec<String> = older
        .iter()
        .map(|m| format!("{}: {}", text_of(m.get("role")), text_of(m.get("content"))))
        .collect();
    let focus_line = focus.map(|f| format!("Focus: {f}\n")).unwrap_or_default();
    format!(
        "You are compressing older conversation context for an agent runtime.\n\
         Write a faithful, compact summary that preserves decisions, constraints, names, file paths, commands, and open questions.\n\
         Do NOT invent details. If something is unknown, say so.\n\
         Compression mode: {mode}\n\
         {focus_line}\
         Return STRICT JSON with keys: summary (string), key_points (array of strings), confidence (number 0..1).\n\n\
         OLDER MESSAGES (to be archived):\n\
         {}\n",
        older_text.join("\n")
    )
}

/// Runs one `memory_compact` node.
pub fn run(h: &mut dyn Host, inv: &Invocation) -> Result<NodeResult, Error> {
    let ids = RunIds::from_config(inv.config())?;
    let input = inv.inputs();
    // The seed reads `int(x or 6)`: absent, 0 and unparsable all mean 6.
    let preserve = match input.get("preserve_recent").and_then(|v| int_of(Some(v))) {
        None | Some(0) => 6,
        Some(n) => n.max(0),
    };
    let mode = match input.get("compression_mode") {
        Some(Value::String(s))
            if matches!(
                s.trim().to_lowercase().as_str(),
                "light" | "standard" | "heavy"
            ) =>
        {
            s.trim().to_lowercase()
        }
        _ => "standard".into(),
    };
    let focus = match input.get("focus") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    };
    if !context::has_context(inv) {
        return Err(Error::invalid_input(
            "MEMORY_COMPACT requires vars.context to be a dict",
        ));
    }
    let raw_messages = context::messages(inv);
    if raw_messages.is_empty() {
        return Ok(tool_result("No messages to compact.".into(), None).into());
    }
    let now = iso_utc(h.now_ms());
    let messages = normalize(&raw_messages, &ids, inv.node_id(), &now);
    let is_system =
        |m: &&Map<String, Value>| m.get("role").and_then(Value::as_str) == Some("system");
    let system: Vec<&Map<String, Value>> = messages.iter().filter(is_system).collect();
    let convo: Vec<&Map<String, Value>> = messages.iter().filter(|m| !is_system(m)).collect();
    let keep = preserve as usize;
    if keep > 0 && convo.len() <= keep {
        return Ok(tool_result(
            format!("Nothing to compact (non-system messages <= preserve_recent={preserve})."),
            None,
        )
        .into());
    }
    let split = convo.len() - keep.min(convo.len());
    let older: Vec<Map<String, Value>> = convo[..split].iter().map(|m| (*m).clone()).collect();
    let recent: Vec<Map<String, Value>> = convo[split..].iter().map(|m| (*m).clone()).collect();

    let reply = h.complete(Request::prompt(prompt(&older, &mode, focus.as_deref())))?;
    let content = reply.content.trim().to_string();
    let lowered = content.to_lowercase();
    if [
        "operation not permitted",
        "failed to connect",
        "connection refused",
        "timed out",
        "timeout",
        "not running",
        "model not found",
    ]
    .iter()
    .any(|k| lowered.contains(k))
    {
        return Err(Error::unavailable(format!(
            "Compaction LLM unavailable: {content}"
        )));
    }
    let mut summary = content.clone();
    let mut key_points: Vec<Value> = Vec::new();
    let mut confidence = Value::Null;
    if !content.is_empty() {
        let mut candidate = content.as_str();
        if content.contains("```")
            && let (Some(s), Some(e)) = (content.find('{'), content.rfind('}'))
            && s < e
        {
            candidate = &content[s..=e];
        }
        if let Ok(Value::Object(parsed)) = serde_json::from_str::<Value>(candidate) {
            if let Some(s) = parsed.get("summary").filter(|v| !v.is_null()) {
                let s = text_of(Some(s)).trim().to_string();
                if !s.is_empty() {
                    summary = s;
                }
            }
            if let Some(Value::Array(kp)) = parsed.get("key_points") {
                key_points = kp
                    .iter()
                    .filter(|x| x.is_string() || x.is_number())
                    .take(20)
                    .map(|x| json!(text_of(Some(x))))
                    .collect();
            }
            if let Some(c) = parsed.get("confidence").filter(|c| c.is_number()) {
                confidence = json!(c.as_f64());
            }
        }
    }
    let summary = match summary.trim() {
        "" => "(summary unavailable)".to_string(),
        s => s.to_string(),
    };

    let first = &older[0];
    let last = &older[older.len() - 1];
    let mid = |m: &Map<String, Value>| m.get("metadata").and_then(|x| x.get("message_id")).cloned();
    let span_meta = json!({"from_timestamp": first.get("timestamp"), "to_timestamp": last.get("timestamp"),
        "from_message_id": mid(first), "to_message_id": mid(last), "message_count": older.len()});
    let mut tags = Map::new();
    tags.insert("kind".into(), json!("conversation_span"));
    tags.insert("compression_mode".into(), json!(mode));
    tags.insert("preserve_recent".into(), json!(preserve.to_string()));
    if let Some(f) = &focus {
        tags.insert("focus".into(), json!(f));
    }
    let data = json!({"messages": older, "span": span_meta, "created_at": now});
    let span_id = store::put_payload(h, &ids.run_id, &data, &tags)?;

    let summary_id = message_id(&ids.run_id, inv.node_id(), &format!("summary:{span_id}"));
    let mut summary_md = json!({"message_id": summary_id, "kind": "memory_summary",
        "compression_mode": mode, "preserve_recent": preserve, "source_artifact_id": span_id,
        "source_message_count": older.len(), "source_from_timestamp": span_meta["from_timestamp"],
        "source_to_timestamp": span_meta["to_timestamp"],
        "source_from_message_id": span_meta["from_message_id"],
        "source_to_message_id": span_meta["to_message_id"]});
    if let Some(f) = &focus {
        summary_md["focus"] = json!(f);
    }
    let summary_message = json!({"role": "system",
        "content": format!("[CONVERSATION HISTORY SUMMARY span_id={span_id}]: {summary}"),
        "timestamp": now, "metadata": summary_md});
    let mut new_messages: Vec<Value> = system.iter().map(|m| Value::Object((*m).clone())).collect();
    new_messages.push(summary_message);
    new_messages.extend(recent.into_iter().map(Value::Object));

    let mut span = Map::new();
    span.insert("kind".into(), json!("conversation_span"));
    span.insert("artifact_id".into(), json!(span_id));
    span.insert("created_at".into(), json!(now));
    span.insert("summary_message_id".into(), json!(summary_id));
    for k in [
        "from_timestamp",
        "to_timestamp",
        "from_message_id",
        "to_message_id",
    ] {
        span.insert(k.into(), span_meta[k].clone());
    }
    span.insert("message_count".into(), json!(older.len()));
    span.insert("compression_mode".into(), json!(mode));
    span.insert("focus".into(), json!(focus));
    if let Some(a) = &ids.actor_id {
        span.insert("created_by".into(), json!(a));
    }
    store::append(h, &ids.run_id, span, tags)?;

    let meta = json!({"llm_run_id": null, "span_id": span_id, "summary_message_id": summary_id,
        "preserve_recent": preserve, "compression_mode": mode, "focus": focus,
        "key_points": key_points, "confidence": confidence});
    let out = tool_result(
        format!("Compacted {} messages into span_id={span_id}.", older.len()),
        Some(meta),
    );
    Ok(NodeResult::from(out).with_context_edit(ContextEdit::Replace(new_messages)))
}
