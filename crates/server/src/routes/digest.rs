//! The execution digest of a ledger: what the run-summary and run-chat endpoints give the model, in the seed's
//! shape (counts, tokens, LLM calls, tool calls with one-line signatures, files/commands/URLs, errors), every text
//! clamped so that a huge ledger gives a bounded digest.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

/// LLM calls described in full, at most.
const MAX_LLM_DETAIL: usize = 60;
/// Tool calls described in full, at most (and files, commands, URLs each).
const MAX_TOOL_DETAIL: usize = 200;
/// Errors kept, at most.
const MAX_ERRORS: usize = 50;

/// `text` cut to `max` characters, ending with the seed's "… (truncated)" marker when cut.
pub fn clamp(text: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep: String = text.chars().take(max.saturating_sub(13)).collect();
    format!("{}… (truncated)", keep.trim_end())
}

/// The toolset the seed's default tools belong to (`files`, `web`, `system`), for the digest's categories.
fn toolset(name: &str) -> Option<&'static str> {
    match name {
        "list_files" | "skim_folders" | "search_files" | "analyze_code" | "analyze_media"
        | "skim_files" | "read_file" | "write_file" | "edit_file" => Some("files"),
        "skim_websearch" | "skim_url" | "web_search" | "fetch_url" | "browser_probe" => Some("web"),
        "execute_command" => Some("system"),
        _ => None,
    }
}

/// What the digest knows about tools: each tool's argument names in its schema's order.
#[derive(Default)]
pub struct ToolSpecs {
    params: HashMap<String, Vec<String>>,
}

impl ToolSpecs {
    /// From `(name, JSON schema text)` pairs.
    pub fn new<'a>(specs: impl IntoIterator<Item = (&'a str, &'a str)>) -> ToolSpecs {
        let params = specs
            .into_iter()
            .map(|(name, schema)| {
                let order = serde_json::from_str::<Value>(schema)
                    .ok()
                    .and_then(|s| s.get("properties").and_then(Value::as_object).cloned())
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                (name.to_string(), order)
            })
            .collect();
        ToolSpecs { params }
    }

    /// `args` in the tool's schema order, then any others in their own order.
    fn ordered<'a>(&self, name: &str, args: &'a Map<String, Value>) -> Vec<(&'a str, &'a Value)> {
        let mut out: Vec<(&str, &Value)> = Vec::new();
        if let Some(order) = self.params.get(name) {
            for k in order {
                if let Some((key, v)) = args.get_key_value(k.as_str())
                    && !out.iter().any(|(seen, _)| *seen == key.as_str())
                {
                    out.push((key.as_str(), v));
                }
            }
        }
        for (k, v) in args {
            if !k.is_empty() && !out.iter().any(|(seen, _)| *seen == k.as_str()) {
                out.push((k.as_str(), v));
            }
        }
        out
    }
}

fn arg_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => clamp(s.trim(), 160),
        other => clamp(&other.to_string(), 160),
    }
}

fn signature(specs: &ToolSpecs, name: &str, args: &Map<String, Value>) -> String {
    let name = if name.is_empty() { "tool" } else { name };
    let pairs = specs.ordered(name, args);
    match pairs.as_slice() {
        [] => format!("{name}()"),
        [(_, v)] => format!("{name}({})", arg_value(v)),
        [a, b, ..] => format!(
            "{name}({}={}, {}={})",
            a.0,
            arg_value(a.1),
            b.0,
            arg_value(b.1)
        ),
    }
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).map(str::trim).unwrap_or("")
}

fn int_of(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// When a record happened: its end, else its start (trimmed; empty when it names neither).
pub(crate) fn record_ts(rec: &Value) -> &str {
    match str_of(rec.get("ended_at")) {
        "" => str_of(rec.get("started_at")),
        t => t,
    }
}

/// The token usage an `llm_call` result reports (`usage`, else `token_usage`).
pub(crate) fn llm_usage(result: &Value) -> Option<&Value> {
    result
        .get("usage")
        .filter(|u| u.is_object())
        .or_else(|| result.get("token_usage").filter(|u| u.is_object()))
}

/// The answer text of an `llm_call` result: the text itself, else its `content`, else its `response` (trimmed).
pub(crate) fn llm_answer(result: &Value) -> String {
    match result {
        Value::String(s) => s.trim().to_string(),
        r => match str_of(r.get("content")) {
            "" => str_of(r.get("response")).to_string(),
            c => c.to_string(),
        },
    }
}

/// The prompt of an `llm_call` payload: its `prompt`, else its last user message with text.
pub(crate) fn llm_prompt(payload: &Value) -> String {
    let p = str_of(payload.get("prompt"));
    if !p.is_empty() {
        return p.to_string();
    }
    payload
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|msgs| {
            msgs.iter().rev().find_map(|m| {
                (m.get("role").and_then(Value::as_str) == Some("user"))
                    .then(|| str_of(m.get("content")))
                    .filter(|c| !c.is_empty())
            })
        })
        .unwrap_or("")
        .to_string()
}

/// The digest of `ledger` (records as JSON objects; anything else is skipped).
pub fn digest(ledger: &[Value], specs: &ToolSpecs) -> Value {
    let (mut steps, mut llm_calls, mut effects, mut calls_n) = (0u64, 0u64, 0u64, 0u64);
    let (mut tok_p, mut tok_c, mut tok_t) = (0i64, 0i64, 0i64);
    let (mut started, mut ended): (Option<String>, Option<String>) = (None, None);
    let mut tools_used = BTreeSet::new();
    let (mut files, mut commands, mut web) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tool_detail, mut llm_detail, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for rec in ledger.iter().filter(|r| r.is_object()) {
        steps += 1;
        let ts = record_ts(rec);
        if !ts.is_empty() {
            if started.as_deref().is_none_or(|s| ts < s) {
                started = Some(ts.to_string());
            }
            if ended.as_deref().is_none_or(|e| ts > e) {
                ended = Some(ts.to_string());
            }
        }
        match rec.get("error") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => errors.push(clamp(s, 400)),
            Some(other) => errors.push(clamp(&other.to_string(), 400)),
        }
        let effect = rec.get("effect").filter(|e| e.is_object());
        let kind = effect.map_or("", |e| str_of(e.get("type")));
        let node = str_of(rec.get("node_id"));
        let node = (!node.is_empty()).then_some(node);
        let payload = effect
            .and_then(|e| e.get("payload"))
            .unwrap_or(&Value::Null);
        let result = rec.get("result").unwrap_or(&Value::Null);
        if kind == "llm_call" {
            llm_calls += 1;
            let (mut p, mut c, mut t) = (0, 0, 0);
            if let Some(u) = llm_usage(result) {
                p = int_of(u.get("prompt_tokens").or_else(|| u.get("input_tokens")));
                c = int_of(
                    u.get("completion_tokens")
                        .or_else(|| u.get("output_tokens")),
                );
                t = match int_of(u.get("total_tokens")) {
                    0 => p + c,
                    n => n,
                };
                tok_p += p;
                tok_c += c;
                tok_t += t;
            }
            if llm_detail.len() < MAX_LLM_DETAIL {
                let content = llm_answer(result);
                llm_detail.push(json!({
                    "ts": ts, "node_id": node,
                    "provider": payload.is_object().then(|| str_of(payload.get("provider"))),
                    "model": payload.is_object().then(|| str_of(payload.get("model"))),
                    "prompt": clamp(&llm_prompt(payload), 800),
                    "response": clamp(&content, 800),
                    "missing_response": content.is_empty(),
                    "tokens": {"prompt": p, "completion": c, "total": t},
                }));
            }
        }
        if kind != "tool_calls" {
            continue;
        }
        effects += 1;
        let Some(calls) = payload.get("tool_calls").and_then(Value::as_array) else {
            continue;
        };
        calls_n += calls.len() as u64;
        let results: Vec<&Value> = result
            .get("results")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter(|x| x.is_object()).collect())
            .unwrap_or_default();
        let call_id = |v: &Value| match str_of(v.get("call_id")) {
            "" => str_of(v.get("id")).to_string(),
            id => id.to_string(),
        };
        let empty = Map::new();
        for (i, call) in calls.iter().enumerate().filter(|(_, c)| c.is_object()) {
            let name = str_of(call.get("name"));
            if name.is_empty() {
                continue;
            }
            tools_used.insert(name.to_string());
            let args = call
                .get("arguments")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let set = toolset(name);
            let primary = specs
                .ordered(name, args)
                .first()
                .map(|(_, v)| arg_value(v))
                .unwrap_or_default();
            if tool_detail.len() < MAX_TOOL_DETAIL {
                let id = call_id(call);
                let res = (!id.is_empty())
                    .then(|| results.iter().find(|r| call_id(r) == id))
                    .flatten()
                    .or_else(|| results.get(i))
                    .copied();
                let success = res.and_then(|r| r.get("success")).and_then(Value::as_bool);
                let error = res
                    .and_then(|r| r.get("error"))
                    .filter(|e| {
                        !e.is_null() && e.as_str() != Some("") && e.as_bool() != Some(false)
                    })
                    .map(|e| match e {
                        Value::String(s) => clamp(s, 500),
                        other => clamp(&other.to_string(), 500),
                    });
                let output = res
                    .and_then(|r| r.get("output"))
                    .filter(|o| !o.is_null())
                    .map(|o| match o {
                        Value::String(s) => clamp(s, 50_000),
                        other => clamp(
                            &serde_json::to_string_pretty(other).unwrap_or_default(),
                            50_000,
                        ),
                    });
                tool_detail.push(json!({
                    "ts": ts, "node_id": node, "name": name,
                    "signature": signature(specs, name, args),
                    "success": success, "error": error, "output": output, "toolset": set,
                }));
            }
            if primary.is_empty() {
                continue;
            }
            match set {
                Some("files") => files.push(json!({"tool": name, "file_path": primary, "ts": ts})),
                Some("system") => commands.push(json!({"command": primary, "ts": ts})),
                Some("web") => web.push(json!({"tool": name, "value": primary, "ts": ts})),
                _ => {}
            }
        }
    }
    files.truncate(MAX_TOOL_DETAIL);
    commands.truncate(MAX_TOOL_DETAIL);
    web.truncate(MAX_TOOL_DETAIL);
    errors.truncate(MAX_ERRORS);
    json!({
        "stats": {
            "steps": steps, "llm_calls": llm_calls, "tool_calls_effects": effects, "tool_calls": calls_n,
            "unique_tools": tools_used.len(),
            "tokens": {"prompt": tok_p, "completion": tok_c, "total": tok_t},
            "started_at": started, "ended_at": ended,
        },
        "tools_used": tools_used,
        "files": files,
        "commands": commands,
        "web": web,
        "tool_calls_detail": tool_detail,
        "llm_calls_detail": llm_detail,
        "errors": errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> ToolSpecs {
        let schema = r#"{"type":"object","properties":{"file_path":{"type":"string"},"start_line":{"type":"integer"},"end_line":{"type":"integer"}}}"#;
        ToolSpecs::new([("read_file", schema)])
    }

    #[test]
    fn counts_llm_and_tool_calls_as_the_seed_does() {
        let ledger = vec![
            json!({"node_id": "n1", "started_at": "2025-01-01T00:00:01", "ended_at": "2025-01-01T00:00:02",
                "effect": {"type": "llm_call", "payload": {"provider": "openai", "model": "m",
                    "messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
                                 {"role": "user", "content": " last question "}]}},
                "result": {"content": "an answer", "usage": {"input_tokens": 3, "output_tokens": 4}}}),
            json!({"node_id": "n2", "started_at": "2025-01-01T00:00:03",
                "effect": {"type": "tool_calls", "payload": {"tool_calls": [
                    {"name": "read_file", "call_id": "c1", "arguments": {"end_line": 9, "file_path": "a.txt", "start_line": 1}},
                    {"name": "execute_command", "arguments": {"command": "ls -la"}},
                    {"name": ""}, "junk"]}},
                "result": {"results": [{"call_id": "c1", "success": true, "output": {"k": 1}},
                                        {"success": false, "error": "denied"}]},
                "error": "boom"}),
            json!("not a record"),
        ];
        let d = digest(&ledger, &specs());
        assert_eq!(d["stats"]["steps"], 2);
        assert_eq!(d["stats"]["llm_calls"], 1);
        assert_eq!(d["stats"]["tool_calls_effects"], 1);
        assert_eq!(d["stats"]["tool_calls"], 4);
        assert_eq!(d["stats"]["unique_tools"], 2);
        assert_eq!(
            d["stats"]["tokens"],
            json!({"prompt": 3, "completion": 4, "total": 7})
        );
        assert_eq!(d["stats"]["started_at"], "2025-01-01T00:00:02");
        assert_eq!(d["stats"]["ended_at"], "2025-01-01T00:00:03");
        assert_eq!(d["tools_used"], json!(["execute_command", "read_file"]));
        let llm = &d["llm_calls_detail"][0];
        assert_eq!(llm["prompt"], "last question");
        assert_eq!(llm["response"], "an answer");
        assert_eq!(llm["missing_response"], false);
        let read = &d["tool_calls_detail"][0];
        assert_eq!(
            read["signature"],
            "read_file(file_path=a.txt, start_line=1)"
        );
        assert_eq!(read["success"], true);
        assert_eq!(read["output"], "{\n  \"k\": 1\n}");
        assert_eq!(read["toolset"], "files");
        let cmd = &d["tool_calls_detail"][1];
        assert_eq!(cmd["signature"], "execute_command(ls -la)");
        assert_eq!(cmd["success"], false);
        assert_eq!(cmd["error"], "denied");
        assert_eq!(
            d["files"],
            json!([{"tool": "read_file", "file_path": "a.txt", "ts": "2025-01-01T00:00:03"}])
        );
        assert_eq!(
            d["commands"],
            json!([{"command": "ls -la", "ts": "2025-01-01T00:00:03"}])
        );
        assert_eq!(d["errors"], json!(["boom"]));
    }

    #[test]
    fn clamps_like_the_seed() {
        assert_eq!(clamp("short", 10), "short");
        let long = "a".repeat(100);
        let c = clamp(&long, 20);
        assert_eq!(c.chars().count(), 7 + "… (truncated)".chars().count());
        assert!(c.ends_with("… (truncated)"));
        assert_eq!(clamp("x", 0), "");
    }

    #[test]
    fn a_hostile_ledger_gives_a_bounded_digest() {
        let rec = json!({"effect": {"type": "tool_calls", "payload": {"tool_calls": [
            {"name": "read_file", "arguments": {"file_path": "x".repeat(10_000)}}]}},
            "result": {"results": [{"output": "y".repeat(200_000)}]}, "error": "e".repeat(5_000)});
        let ledger = vec![rec; 500];
        let d = digest(&ledger, &specs());
        assert_eq!(d["tool_calls_detail"].as_array().map(Vec::len), Some(200));
        assert_eq!(d["errors"].as_array().map(Vec::len), Some(50));
        assert!(d.to_string().len() < 15_000_000);
        assert!(
            d["tool_calls_detail"][0]["signature"]
                .as_str()
                .is_some_and(|s| s.chars().count() < 200)
        );
    }
}
