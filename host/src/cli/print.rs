//! Human-readable rendering of ledger records for the CLI.

use serde_json::Value;

fn short(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > max {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// One line per record: `#seq node status effect  detail`.
pub fn record_line(seq: u64, rec: &Value) -> String {
    let node = rec.get("node_id").and_then(Value::as_str).unwrap_or("");
    let status = rec.get("status").and_then(Value::as_str).unwrap_or("");
    let effect = rec
        .get("effect")
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    let detail = if let Some(e) = rec.get("error").filter(|e| !e.is_null()) {
        format!("error: {}", short(e, 160))
    } else if let Some(w) = rec.get("result").and_then(|r| r.get("wait")) {
        let reason = w.get("reason").and_then(Value::as_str).unwrap_or("");
        let key = w.get("wait_key").map(|k| short(k, 80)).unwrap_or_default();
        let until = w
            .get("until")
            .filter(|u| !u.is_null())
            .map(|u| format!(" until {}", short(u, 40)))
            .unwrap_or_default();
        let prompt = w
            .get("prompt")
            .filter(|p| !p.is_null())
            .map(|p| format!(" prompt {:?}", short(p, 80)))
            .unwrap_or_default();
        format!("waits on {reason} {key}{until}{prompt}")
    } else if let Some(o) = rec.get("result").and_then(|r| r.get("output")) {
        format!("output {}", short(o, 160))
    } else if let Some(r) = rec.get("result").filter(|r| !r.is_null()) {
        short(r, 120)
    } else {
        String::new()
    };
    format!("#{seq:<4} {node:<16} {status:<10} {effect:<18} {detail}")
}
