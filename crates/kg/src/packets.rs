//! Active memory: assertions as compact packets, and the token-budgeted text block a model reads (the seed's
//! `packetize_assertions` and `pack_active_memory_text`).

use serde_json::{Map, Value, json};

use crate::tokens;

fn clean(v: Option<&Value>) -> String {
    let s = match v {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One packet per distinct (subject, predicate, object, observed_at) of `items` (assertion dicts).
pub fn packetize(items: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let Value::Object(d) = item else { continue };
        let (s, p, o) = (
            clean(d.get("subject")),
            clean(d.get("predicate")),
            clean(d.get("object")),
        );
        if s.is_empty() || p.is_empty() || o.is_empty() {
            continue;
        }
        let observed_at = clean(d.get("observed_at"));
        let key = (
            s.to_lowercase(),
            p.to_lowercase(),
            o.to_lowercase(),
            observed_at.clone(),
        );
        if !seen.insert(key) {
            continue;
        }
        let score = d
            .get("attributes")
            .and_then(|a| a.get("_retrieval"))
            .and_then(|r| r.get("score"))
            .and_then(Value::as_f64);
        let prov = d.get("provenance");
        let mut pkt = Map::new();
        pkt.insert("version".into(), json!(0));
        pkt.insert("statement".into(), json!(format!("{s} —{p}→ {o}")));
        pkt.insert("subject".into(), json!(s));
        pkt.insert("predicate".into(), json!(p));
        pkt.insert("object".into(), json!(o));
        let optional = [
            ("observed_at", observed_at),
            ("scope", clean(d.get("scope"))),
            ("owner_id", clean(d.get("owner_id"))),
            ("span_id", clean(prov.and_then(|p| p.get("span_id")))),
            (
                "writer_run_id",
                clean(prov.and_then(|p| p.get("writer_run_id"))),
            ),
            (
                "writer_workflow_id",
                clean(prov.and_then(|p| p.get("writer_workflow_id"))),
            ),
        ];
        for (k, v) in optional {
            if !v.is_empty() {
                pkt.insert(k.into(), json!(v));
            }
        }
        if let Some(score) = score {
            pkt.insert("retrieval_score".into(), json!(score));
        }
        out.push(Value::Object(pkt));
    }
    out
}

/// What packing kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub text: String,
    pub kept: Vec<Value>,
    pub estimated_tokens: usize,
    pub dropped: usize,
}

/// The `## KG ACTIVE MEMORY` block: a header, then one line per packet in order until the next line would pass
/// `budget` tokens.
pub fn pack(
    packets: &[Value],
    scope: &str,
    budget: i64,
    model: Option<&str>,
    include_scores: bool,
) -> Packed {
    if budget <= 0 {
        return Packed {
            text: String::new(),
            kept: Vec::new(),
            estimated_tokens: 0,
            dropped: 0,
        };
    }
    let scope = clean(Some(&json!(scope)));
    let scope = if scope.is_empty() {
        "session".into()
    } else {
        scope
    };
    let order = if include_scores {
        "similarity-desc"
    } else {
        "observed_at-desc"
    };
    let mut lines = vec![
        "## KG ACTIVE MEMORY".to_string(),
        format!("(scope={scope}; order={order}; budget={budget} max_input_tokens)"),
        String::new(),
    ];
    let mut used = tokens::estimate(&lines.join("\n"), model) as i64;
    let mut kept = Vec::new();
    let packets: Vec<&Value> = packets.iter().filter(|p| p.is_object()).collect();
    for pkt in &packets {
        let statement = clean(pkt.get("statement"));
        if statement.is_empty() {
            continue;
        }
        let ts = clean(pkt.get("observed_at"));
        let prefix = if ts.is_empty() {
            String::new()
        } else {
            format!("[{ts}] ")
        };
        let mut parts = Vec::new();
        let span = clean(pkt.get("span_id"));
        if !span.is_empty() {
            parts.push(format!("span:{span}"));
        }
        if include_scores && let Some(score) = pkt.get("retrieval_score").and_then(Value::as_f64) {
            parts.push(format!("score:{score:.3}"));
        }
        let suffix = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join("; "))
        };
        let line = format!("- {prefix}{statement}{suffix}");
        let add = tokens::estimate(&format!("\n{line}"), model) as i64;
        if used + add > budget {
            break;
        }
        used += add;
        lines.push(line);
        kept.push((*pkt).clone());
    }
    let dropped = packets.len().saturating_sub(kept.len());
    if kept.is_empty() {
        return Packed {
            text: String::new(),
            kept,
            estimated_tokens: 0,
            dropped,
        };
    }
    Packed {
        text: lines.join("\n").trim().to_string(),
        kept,
        estimated_tokens: used as usize,
        dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_within_the_budget_as_the_seed() {
        let items = vec![
            json!({"subject": "ex:alice", "predicate": "schema:name", "object": "alice",
                "observed_at": "2026-01-01T00:00:00+00:00", "provenance": {"span_id": "sp1"}}),
            json!({"subject": "ex:alice", "predicate": "schema:name", "object": "ALICE",
                "observed_at": "2026-01-01T00:00:00+00:00"}),
            json!({"subject": "ex:alice", "predicate": "rdf:type", "object": "schema:person"}),
        ];
        let packets = packetize(&items);
        assert_eq!(packets.len(), 2, "the second is the first, case-folded");
        assert_eq!(packets[0]["statement"], "ex:alice —schema:name→ alice");
        assert_eq!(packets[0]["span_id"], "sp1");
        let p = pack(&packets, "session", 200, None, false);
        assert_eq!(p.kept.len(), 2);
        assert_eq!(
            p.text,
            "## KG ACTIVE MEMORY\n(scope=session; order=observed_at-desc; budget=200 max_input_tokens)\n\n\
             - [2026-01-01T00:00:00+00:00] ex:alice —schema:name→ alice (span:sp1)\n\
             - ex:alice —rdf:type→ schema:person"
        );
        let tight = pack(&packets, "session", 40, None, false);
        assert_eq!((tight.kept.len(), tight.dropped), (0, 2));
        assert_eq!(tight.text, "");
        assert_eq!(pack(&packets, "run", 0, None, false).dropped, 0);
    }
}
