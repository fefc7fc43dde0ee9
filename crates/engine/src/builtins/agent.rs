//! Agent/context envelopes: `make_context`, `make_meta`, `make_scratchpad`,
//! `format_tool_results`, `agent_trace_report`, the pure `add_message`, `system_datetime`.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{BuiltinCtx, PyResult, input};
use pycompat::repr::{
    DumpOptions, float_to_int, parse_py_float, py_json_dumps, py_str, py_strip, py_truthy,
};

fn obj_copy(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

fn wrap(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), v);
    Value::Object(m)
}

/// `None` → `""`, str as is, anything else `str()`.
fn task_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => py_str(other),
    }
}

/// A list as is, `None` → `[]`, anything else `[x]`.
fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Sets `task` (as text) then `messages` (as a list), the pair both context builders carry.
fn insert_task_messages(out: &mut Map<String, Value>, inputs: &Map<String, Value>) {
    out.insert(
        "task".into(),
        Value::String(task_text(input(inputs, "task"))),
    );
    out.insert(
        "messages".into(),
        Value::Array(as_list(input(inputs, "messages"))),
    );
}

/// `make_context(task, messages, context_extra)` → `{context: {...extra, task, messages}}`.
pub fn make_context(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let mut out = obj_copy(input(inputs, "context_extra"));
    insert_task_messages(&mut out, inputs);
    Ok(wrap("context", Value::Object(out)))
}

fn non_empty_str(v: &Value) -> Option<String> {
    v.as_str()
        .map(py_strip)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// `int(x)` for numbers, `int(float(s))` for non-blank strings; `None` where Python raises
/// or the value is a bool/absent. Integers beyond 64 bits are kept as their float value.
fn lenient_count(v: &Value) -> Option<Value> {
    match v {
        Value::Number(n) if !n.is_f64() => Some(Value::Number(n.clone())),
        Value::Number(n) => n.as_f64().and_then(int_of_float),
        Value::String(s) if !py_strip(s).is_empty() => parse_py_float(s).and_then(int_of_float),
        _ => None,
    }
}

/// Python `int(f)` as JSON; `None` for `inf`/`nan` (Python raises).
fn int_of_float(f: f64) -> Option<Value> {
    float_to_int(f).ok()?;
    let t = f.trunc();
    if t.abs() < 9.0e18 {
        Some(pycompat::repr::int_value(t as i128))
    } else {
        Some(pycompat::repr::float_value(t))
    }
}

/// `make_meta(...)` → `{meta: {...extra, schema, version, output_mode, provider, model, ...}}`.
pub fn make_meta(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let mut out = obj_copy(input(inputs, "extra"));
    let schema = non_empty_str(input(inputs, "schema"))
        .unwrap_or_else(|| "abstractcode.agent.v1.meta".into());
    out.insert("schema".into(), Value::String(schema));
    let version = match input(inputs, "version") {
        Value::Bool(_) => Value::from(1),
        v => lenient_count(v).unwrap_or_else(|| Value::from(1)),
    };
    out.insert("version".into(), version);
    if let Some(mode) = non_empty_str(input(inputs, "output_mode")) {
        out.insert("output_mode".into(), Value::String(mode));
    }
    for key in ["provider", "model"] {
        let v = input(inputs, key);
        let text = match v {
            Value::Null => None,
            Value::String(s) => Some(py_strip(s).to_string()),
            other => Some(py_strip(&py_str(other)).to_string()),
        };
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            out.insert(key.into(), Value::String(t));
        }
    }
    if let Some(id) = non_empty_str(input(inputs, "sub_run_id")) {
        out.insert("sub_run_id".into(), Value::String(id));
    }
    for key in ["iterations", "tool_calls", "tool_results"] {
        if let Some(n) = lenient_count(input(inputs, key)) {
            out.insert(key.into(), n);
        }
    }
    if let Some(reason) = non_empty_str(input(inputs, "finish_reason")) {
        out.insert("finish_reason".into(), Value::String(reason));
    }
    for key in ["gen_time", "ttft_ms"] {
        let v = input(inputs, key);
        if !v.is_null() && !v.is_boolean() {
            out.insert(key.into(), v.clone());
        }
    }
    if let Value::Object(usage) = input(inputs, "usage") {
        out.insert("usage".into(), Value::Object(usage.clone()));
    }
    match input(inputs, "trace") {
        Value::Object(t) => {
            out.insert("trace".into(), Value::Object(t.clone()));
        }
        v => {
            if let Some(id) = non_empty_str(v) {
                out.insert("trace".into(), wrap("trace_id", Value::String(id)));
            }
        }
    }
    if let Some(id) = non_empty_str(input(inputs, "trace_id")) {
        let mut trace = obj_copy(out.get("trace").unwrap_or(&Value::Null));
        trace.insert("trace_id".into(), Value::String(id));
        out.insert("trace".into(), Value::Object(trace));
    }
    match input(inputs, "warnings") {
        Value::Array(items) => {
            let list = items
                .iter()
                .map(py_str)
                .filter(|w| !py_strip(w).is_empty())
                .map(Value::String)
                .collect();
            out.insert("warnings".into(), Value::Array(list));
        }
        v => {
            if let Some(w) = non_empty_str(v) {
                out.insert("warnings".into(), Value::Array(vec![Value::String(w)]));
            }
        }
    }
    let debug = input(inputs, "debug");
    if !debug.is_null() {
        out.insert("debug".into(), debug.clone());
    }
    Ok(wrap("meta", Value::Object(out)))
}

/// `make_scratchpad(...)` → `{scratchpad: {sub_run_id?, workflow_id?, task, messages, ...}}`.
pub fn make_scratchpad(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let mut out = Map::new();
    for key in ["sub_run_id", "workflow_id"] {
        if let Some(s) = non_empty_str(input(inputs, key)) {
            out.insert(key.into(), Value::String(s));
        }
    }
    insert_task_messages(&mut out, inputs);
    if let Value::Object(extra) = input(inputs, "context_extra") {
        out.insert("context_extra".into(), Value::Object(extra.clone()));
    }
    out.insert(
        "node_traces".into(),
        Value::Object(obj_copy(input(inputs, "node_traces"))),
    );
    for key in ["steps", "tool_calls", "tool_results"] {
        out.insert(key.into(), Value::Array(as_list(input(inputs, key))));
    }
    Ok(wrap("scratchpad", Value::Object(out)))
}

/// Primary-argument order of the default tools (AbstractCore `required_args`, sorted;
/// the declared parameters when none is required).
const TOOL_PRIMARY_KEYS: &[(&str, &[&str])] = &[
    (
        "list_files",
        &[
            "directory_path",
            "pattern",
            "recursive",
            "include_hidden",
            "head_limit",
        ],
    ),
    ("skim_folders", &["paths"]),
    ("search_files", &["pattern"]),
    ("analyze_code", &["file_path"]),
    ("skim_files", &["paths"]),
    ("read_file", &["file_path"]),
    ("write_file", &["content", "file_path"]),
    ("edit_file", &["file_path", "pattern"]),
    ("web_search", &["query"]),
    ("skim_websearch", &["query"]),
    ("fetch_url", &["url"]),
    ("skim_url", &["url"]),
    ("execute_command", &["command"]),
    (
        "open_attachment",
        &[
            "artifact_id",
            "handle",
            "expected_sha256",
            "start_line",
            "end_line",
            "max_chars",
        ],
    ),
];

fn clamp(text: &str, max_len: usize) -> String {
    let s = py_strip(text);
    if s.chars().count() <= max_len {
        return s.to_string();
    }
    let head: String = s.chars().take(max_len.saturating_sub(1)).collect();
    format!("{head}…")
}

fn one_line(text: &str) -> String {
    let s = text.replace("\r\n", "\n").replace('\r', "\n");
    let parts: Vec<&str> = s.split('\n').filter(|p| !py_strip(p).is_empty()).collect();
    py_strip(&parts.join(" ")).to_string()
}

fn format_value(v: &Value, max_len: usize) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(_) => py_str(v),
        Value::String(s) => clamp(&one_line(s), max_len),
        other => {
            let json = py_json_dumps(
                other,
                DumpOptions {
                    compact: true,
                    sort_keys: true,
                    ..Default::default()
                },
            );
            clamp(&one_line(&json), max_len)
        }
    }
}

fn primary_key_order(
    name: &str,
    args: &Map<String, Value>,
    out: &Map<String, Value>,
) -> Vec<String> {
    if let Some((_, keys)) = TOOL_PRIMARY_KEYS.iter().find(|(n, _)| *n == py_strip(name)) {
        return keys.iter().map(|k| k.to_string()).collect();
    }
    let mut order: Vec<String> = Vec::new();
    for k in args.keys().chain(out.keys()) {
        if !py_strip(k).is_empty() && !order.contains(k) {
            order.push(py_strip(k).to_string());
        }
    }
    order
}

fn signature(name: &str, args: &Map<String, Value>, out: &Map<String, Value>) -> String {
    let tool = match py_strip(name) {
        "" => "tool",
        t => t,
    };
    let order = primary_key_order(tool, args, out);
    let primary = order
        .iter()
        .find_map(|k| args.get(k).filter(|v| !v.is_null()))
        .or_else(|| {
            order
                .iter()
                .find_map(|k| out.get(k).filter(|v| !v.is_null()))
        });
    match primary {
        None => format!("{tool}()"),
        Some(v) => format!("{tool}({})", format_value(v, 160)),
    }
}

/// `format_tool_results(tool_results | results)`: one `- tool(arg) [STATUS] : observation`
/// line per result.
pub fn format_tool_results(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let mut raw = input(inputs, "tool_results");
    if raw.is_null() {
        raw = input(inputs, "results");
    }
    let empty = Map::new();
    let mut lines = Vec::new();
    for item in as_list(raw) {
        let Value::Object(it) = item else { continue };
        let field = |k: &str| it.get(k).unwrap_or(&Value::Null);
        let name_src = [field("name"), field("tool")]
            .into_iter()
            .find(|v| py_truthy(v));
        let name = name_src.map(py_str).unwrap_or_default();
        let name = match py_strip(&name) {
            "" => "tool".to_string(),
            n => n.to_string(),
        };
        let success = field("success").as_bool();
        let error = match field("error") {
            Value::Null => String::new(),
            e => py_strip(&py_str(e)).to_string(),
        };
        let output = field("output");
        let args = field("arguments").as_object().unwrap_or(&empty);
        let out_obj = output.as_object().unwrap_or(&empty);
        let sig = signature(&name, args, out_obj);
        let status = match success {
            Some(true) => "SUCCESS",
            Some(false) => "FAILURE",
            None => "DONE",
        };
        let mut obs = if success == Some(false) && !error.is_empty() {
            error
        } else {
            match output {
                Value::Object(o) => match o.get("rendered").and_then(Value::as_str).map(py_strip) {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ => format_value(output, 420),
                },
                Value::String(s) => clamp(&one_line(s), 420),
                Value::Null => "(no output)".into(),
                other => clamp(&one_line(&py_str(other)), 420),
            }
        };
        if py_strip(&obs).is_empty() {
            obs = "(no output)".into();
        }
        lines.push(format!("- {sig} [{status}] : {obs}"));
    }
    Ok(Value::String(py_strip(&lines.join("\n")).to_string()))
}

fn code_block(v: &Value, language: &str) -> String {
    let text = if language == "json" {
        py_json_dumps(
            v,
            DumpOptions {
                indent: Some(2),
                ..Default::default()
            },
        )
    } else if v.is_null() {
        String::new()
    } else {
        py_str(v)
    };
    format!("```{language}\n{text}\n```")
}

fn render_tool_call(call: &Map<String, Value>, result: Option<&Map<String, Value>>) -> String {
    let name = py_str(call.get("name").unwrap_or(&Value::Null));
    let call_id = [call.get("call_id"), call.get("id")]
        .into_iter()
        .flatten()
        .find(|v| py_truthy(v));
    let mut title = format!("#### Tool: `{name}`");
    if let Some(Value::String(id)) = call_id {
        title.push_str(&format!(" (call_id={id})"));
    }
    let args = call
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut lines = vec![
        title,
        String::new(),
        "**Arguments**".into(),
        code_block(&args, "json"),
    ];
    let Some(result) = result else {
        lines.extend([
            "".into(),
            "**Result**".into(),
            "_missing tool result in trace entry_".into(),
        ]);
        return lines.join("\n");
    };
    lines.push(String::new());
    lines.push("**Result**".into());
    if let Some(success) = result.get("success").and_then(Value::as_bool) {
        lines.push(format!("- **success**: {success}"));
    }
    if let Some(error) = result.get("error").filter(|e| !e.is_null()) {
        lines.push(format!("- **error**: {}", py_str(error)));
    }
    let output = result.get("output").unwrap_or(&Value::Null);
    let language = if output.is_string() { "text" } else { "json" };
    lines.push(code_block(output, language));
    lines.join("\n")
}

/// Renders an agent scratchpad's node traces as the runtime's Markdown report.
pub(crate) fn render_trace_report(scratchpad: &Value) -> String {
    let Value::Object(sp) = scratchpad else {
        return "# Agent Trace Report\n\n_No scratchpad provided._\n".into();
    };
    let wrapped;
    let node_traces = match sp.get("node_traces") {
        Some(Value::Object(nt)) => nt,
        _ if sp.contains_key("steps") && sp.contains_key("node_id") => {
            let mut m = Map::new();
            m.insert(py_str(&sp["node_id"]), scratchpad.clone());
            wrapped = m;
            &wrapped
        }
        _ => return "# Agent Trace Report\n\n_No node_traces found in scratchpad._\n".into(),
    };
    let mut header = vec!["# Agent Trace Report".to_string()];
    for key in ["sub_run_id", "workflow_id"] {
        if let Some(Value::String(s)) = sp
            .get(key)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            header.push(format!("- **{key}**: `{s}`"));
        }
    }
    header.push(String::new());
    let mut steps: Vec<(String, &String, &Map<String, Value>)> = Vec::new();
    for (node_id, trace) in node_traces {
        let Some(Value::Array(entries)) = trace.as_object().and_then(|t| t.get("steps")) else {
            continue;
        };
        for entry in entries.iter().filter_map(Value::as_object) {
            let ts = entry
                .get("ts")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            steps.push((ts, node_id, entry));
        }
    }
    steps.sort_by(|a, b| a.0.cmp(&b.0));
    if steps.is_empty() {
        header.extend(["_No trace steps found._".into(), String::new()]);
        return header.join("\n");
    }
    let mut lines = header;
    lines.extend(["## Timeline".into(), String::new()]);
    let empty = Map::new();
    for (idx, (_ts, node_id, entry)) in steps.iter().enumerate() {
        let status = entry.get("status").and_then(Value::as_str).unwrap_or("");
        let effect = entry
            .get("effect")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let effect_type = effect.get("type").and_then(Value::as_str).unwrap_or("");
        lines.push(format!(
            "### {}. `{node_id}` — `{effect_type}` ({status})",
            idx + 1
        ));
        let duration = match entry.get("duration_ms") {
            Some(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
            Some(Value::Number(n)) => n.as_f64(),
            _ => None,
        };
        if let Some(d) = duration.filter(|d| *d >= 0.0) {
            lines.push(format!("- **duration_ms**: {d:.3}"));
        }
        if status == "failed" {
            if let Some(err) = entry.get("error").filter(|e| !e.is_null()) {
                lines.extend(["".into(), "**Error**".into(), code_block(err, "text")]);
            }
            lines.push(String::new());
            continue;
        }
        let result = entry.get("result").and_then(Value::as_object);
        if effect_type == "llm_call" {
            let r = result.filter(|r| !r.is_empty());
            let get = |k: &str| r.and_then(|r| r.get(k));
            if let Some(model) = get("model")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                lines.push(format!("- **model**: `{model}`"));
            }
            if let Some(reason) = get("finish_reason")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                lines.push(format!("- **finish_reason**: `{reason}`"));
            }
            match get("tool_calls")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
            {
                Some(calls) => {
                    lines.push("- **tool_calls_requested**:".into());
                    for c in calls.iter().filter_map(Value::as_object) {
                        let Some(nm) = c
                            .get("name")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                        else {
                            continue;
                        };
                        let cid = c.get("call_id").filter(|v| py_truthy(v));
                        let suffix = match cid {
                            Some(Value::String(id)) => format!(" (call_id={id})"),
                            _ => String::new(),
                        };
                        lines.push(format!("  - `{nm}`{suffix}"));
                    }
                }
                None => lines.push("- **tool_calls_requested**: none".into()),
            }
            if let Some(content) =
                get("content").filter(|c| c.as_str().is_some_and(|s| !py_strip(s).is_empty()))
            {
                lines.extend([
                    "".into(),
                    "**Assistant content**".into(),
                    code_block(content, "markdown"),
                ]);
            }
            lines.push(String::new());
            continue;
        }
        if effect_type == "tool_calls" {
            let payload = effect
                .get("payload")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let calls = as_list(payload.get("tool_calls").unwrap_or(&Value::Null));
            let mut by_id: Map<String, Value> = Map::new();
            if let Some(Value::Array(rs)) = result.and_then(|r| r.get("results")) {
                for r in rs.iter().filter_map(Value::as_object) {
                    if let Some(id) = r
                        .get("call_id")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                    {
                        by_id.insert(id.to_string(), Value::Object(r.clone()));
                    }
                }
            }
            if calls.is_empty() {
                lines.extend(["- **tool_calls**: none".into(), String::new()]);
                continue;
            }
            lines.push(String::new());
            for call in calls.iter().filter_map(Value::as_object) {
                let id = call.get("call_id").and_then(Value::as_str).unwrap_or("");
                let r = if id.is_empty() {
                    None
                } else {
                    by_id.get(id).and_then(Value::as_object)
                };
                lines.push(render_tool_call(call, r));
                lines.push(String::new());
            }
            continue;
        }
        if let Some(r) = result {
            lines.extend([
                "".into(),
                "**Result (raw)**".into(),
                code_block(&Value::Object(r.clone()), "json"),
                String::new(),
            ]);
        }
    }
    format!("{}\n", lines.join("\n").trim_end())
}

/// `agent_trace_report(scratchpad)`: Markdown timeline of an agent's node traces.
pub fn agent_trace_report(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::String(render_trace_report(input(
        inputs,
        "scratchpad",
    ))))
}

/// Python `datetime.isoformat()` of a UTC instant (microseconds omitted when zero).
fn py_isoformat_utc(t: OffsetDateTime) -> String {
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.microsecond();
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// `add_message(role, content)` (pure variant) → `{message: {role, content, timestamp, metadata.message_id}}`.
pub fn add_message(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let role = match input(inputs, "role") {
        Value::Null => "user".to_string(),
        v => py_str(v),
    };
    let content = match input(inputs, "content") {
        Value::Null => String::new(),
        v => py_str(v),
    };
    let mut message = Map::new();
    message.insert("role".into(), Value::String(role));
    message.insert("content".into(), Value::String(content));
    message.insert(
        "timestamp".into(),
        Value::String(py_isoformat_utc(OffsetDateTime::now_utc())),
    );
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    message.insert("metadata".into(), wrap("message_id", Value::String(id)));
    Ok(wrap("message", Value::Object(message)))
}

/// Python's `locale.getlocale()[0]` under the process environment: the C/POSIX locale is
/// coerced to UTF-8 and reported as `en_US`.
fn locale_name() -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let ctype = env("LC_ALL")
        .or_else(|| env("LC_CTYPE"))
        .or_else(|| env("LANG"))
        .unwrap_or_default();
    let base = ctype.split(['.', '@']).next().unwrap_or("");
    match base {
        "" | "C" | "POSIX" => "en_US".into(),
        other => other.to_string(),
    }
}

/// `system_datetime` → `{iso, timezone, utc_offset_minutes, locale}`.
///
/// The host runs in UTC (as the reference deployment does with `TZ=UTC`), so the local
/// time is UTC.
pub fn system_datetime(_inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let mut out = Map::new();
    out.insert(
        "iso".into(),
        Value::String(py_isoformat_utc(OffsetDateTime::now_utc())),
    );
    out.insert("timezone".into(), Value::String("UTC".into()));
    out.insert("utc_offset_minutes".into(), Value::from(0));
    out.insert("locale".into(), Value::String(locale_name()));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::run;
    use serde_json::json;

    #[test]
    fn make_context_and_scratchpad() {
        assert_eq!(
            run("make_context", json!({"task": 5, "messages": {"role": "user"}, "context_extra": {"x": 1, "task": "old"}})).unwrap(),
            json!({"context": {"x": 1, "task": "5", "messages": [{"role": "user"}]}})
        );
        assert_eq!(
            run("make_context", json!({})).unwrap(),
            json!({"context": {"task": "", "messages": []}})
        );
        assert_eq!(
            run("make_scratchpad", json!({"sub_run_id": " r1 ", "workflow_id": "", "task": null, "steps": 3, "node_traces": [1], "context_extra": {"a": 1}})).unwrap(),
            json!({"scratchpad": {"sub_run_id": "r1", "task": "", "messages": [], "context_extra": {"a": 1},
                   "node_traces": {}, "steps": [3], "tool_calls": [], "tool_results": []}})
        );
    }

    #[test]
    fn make_meta_normalises_fields() {
        let out = run("make_meta", json!({
            "extra": {"schema": "x", "keep": true},
            "schema": "  ", "version": "2.9", "output_mode": " structured ", "provider": 7, "model": " m ",
            "sub_run_id": "", "iterations": 3.7, "tool_calls": true, "tool_results": "nope",
            "finish_reason": "stop", "gen_time": 1.5, "ttft_ms": false, "usage": {"t": 1},
            "trace": "abc", "trace_id": "def", "warnings": ["a", " ", 3], "debug": 0
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"meta": {"schema": "abstractcode.agent.v1.meta", "keep": true, "version": 2,
                   "output_mode": "structured", "provider": "7", "model": "m", "iterations": 3,
                   "finish_reason": "stop", "gen_time": 1.5, "usage": {"t": 1},
                   "trace": {"trace_id": "def"}, "warnings": ["a", "3"], "debug": 0}})
        );
        assert_eq!(
            run(
                "make_meta",
                json!({"iterations": 1e300, "tool_calls": "7.9", "version": "inf"})
            )
            .unwrap(),
            json!({"meta": {"schema": "abstractcode.agent.v1.meta", "version": 1, "iterations": 1e300, "tool_calls": 7}})
        );
        assert_eq!(
            run("make_meta", json!({"version": true, "warnings": " w "})).unwrap(),
            json!({"meta": {"schema": "abstractcode.agent.v1.meta", "version": 1, "warnings": ["w"]}})
        );
    }

    #[test]
    fn tool_results_digest() {
        let results = json!([
            {"call_id": "1", "name": "read_file", "success": true, "output": "line one\r\n\nline two", "arguments": {"file_path": "a.txt"}},
            {"name": "execute_command", "success": false, "error": " boom ", "output": {"command": "ls -la"}},
            {"tool": "custom", "success": true, "output": {"rendered": "  pretty  ", "x": 1}},
            {"name": "", "output": {"z": [1, 2], "a": "é"}},
            {"name": "web_search", "success": true, "output": null, "arguments": {"query": "rust\nlang"}},
            "not a dict",
            {"name": "write_file", "success": true, "output": 12, "arguments": {"file_path": "f", "content": "body"}}
        ]);
        let out = run("format_tool_results", json!({"results": results})).unwrap();
        assert_eq!(
            out.as_str().unwrap(),
            "- read_file(a.txt) [SUCCESS] : line one line two\n\
             - execute_command(ls -la) [FAILURE] : boom\n\
             - custom(pretty) [SUCCESS] : pretty\n\
             - tool([1,2]) [DONE] : {\"a\":\"é\",\"z\":[1,2]}\n\
             - web_search(rust lang) [SUCCESS] : (no output)\n\
             - write_file(body) [SUCCESS] : 12"
        );
        let long = "x".repeat(500);
        let out = run(
            "format_tool_results",
            json!({"tool_results": {"name": "t", "output": long}}),
        )
        .unwrap();
        let line = out.as_str().unwrap();
        assert!(line.ends_with('…'));
        assert_eq!(
            line.chars().count(),
            "- t() [DONE] : ".chars().count() + 420
        );
        assert_eq!(run("format_tool_results", json!({})).unwrap(), json!(""));
    }

    #[test]
    fn trace_report_shapes() {
        assert_eq!(
            run("agent_trace_report", json!({})).unwrap(),
            json!("# Agent Trace Report\n\n_No scratchpad provided._\n")
        );
        assert_eq!(
            run("agent_trace_report", json!({"scratchpad": {"x": 1}})).unwrap(),
            json!("# Agent Trace Report\n\n_No node_traces found in scratchpad._\n")
        );
        assert_eq!(
            run(
                "agent_trace_report",
                json!({"scratchpad": {"sub_run_id": "s", "node_traces": {}}})
            )
            .unwrap(),
            json!("# Agent Trace Report\n- **sub_run_id**: `s`\n\n_No trace steps found._\n")
        );
        let sp = json!({"workflow_id": "wf", "node_traces": {
            "act": {"steps": [{"ts": "2", "status": "completed", "duration_ms": 2,
                "effect": {"type": "tool_calls", "payload": {"tool_calls": [{"name": "read_file", "call_id": "c1", "arguments": {"file_path": "a"}}, {"name": "x", "call_id": "c2"}]}},
                "result": {"results": [{"call_id": "c1", "success": true, "output": "text", "error": null}]}}]},
            "reason": {"steps": [
                {"ts": "1", "status": "completed", "duration_ms": 1.23456,
                 "effect": {"type": "llm_call"}, "result": {"content": "hi", "model": "m", "finish_reason": "stop", "tool_calls": [{"name": "read_file", "call_id": "c1"}]}},
                {"ts": "3", "status": "failed", "error": "bad", "effect": {"type": "llm_call"}},
                {"ts": "4", "status": "completed", "effect": {"type": "emit_event"}, "result": {"ok": true}}
            ]}
        }});
        let report = run("agent_trace_report", json!({"scratchpad": sp})).unwrap();
        let expected = "# Agent Trace Report\n- **workflow_id**: `wf`\n\n## Timeline\n\n\
### 1. `reason` — `llm_call` (completed)\n- **duration_ms**: 1.235\n- **model**: `m`\n- **finish_reason**: `stop`\n\
- **tool_calls_requested**:\n  - `read_file` (call_id=c1)\n\n**Assistant content**\n```markdown\nhi\n```\n\n\
### 2. `act` — `tool_calls` (completed)\n- **duration_ms**: 2.000\n\n\
#### Tool: `read_file` (call_id=c1)\n\n**Arguments**\n```json\n{\n  \"file_path\": \"a\"\n}\n```\n\n**Result**\n- **success**: true\n```text\ntext\n```\n\n\
#### Tool: `x` (call_id=c2)\n\n**Arguments**\n```json\n{}\n```\n\n**Result**\n_missing tool result in trace entry_\n\n\
### 3. `reason` — `llm_call` (failed)\n\n**Error**\n```text\nbad\n```\n\n\
### 4. `reason` — `emit_event` (completed)\n\n**Result (raw)**\n```json\n{\n  \"ok\": true\n}\n```\n";
        assert_eq!(report.as_str().unwrap(), expected);
    }

    #[test]
    fn add_message_and_datetime() {
        let m = run("add_message", json!({"content": 5})).unwrap();
        let msg = &m["message"];
        assert_eq!(msg["role"], json!("user"));
        assert_eq!(msg["content"], json!("5"));
        let ts = msg["timestamp"].as_str().unwrap();
        assert!(ts.ends_with("+00:00") && ts.len() >= 25, "{ts}");
        let id = msg["metadata"]["message_id"].as_str().unwrap();
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        let dt = run("system_datetime", json!({})).unwrap();
        assert_eq!(dt["timezone"], json!("UTC"));
        assert_eq!(dt["utc_offset_minutes"], json!(0));
        assert!(dt["iso"].as_str().is_some_and(|s| s.ends_with("+00:00")));
        assert!(dt["locale"].as_str().is_some_and(|s| !s.is_empty()));
    }
}
