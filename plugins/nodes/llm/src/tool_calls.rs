//! `tool_calls` and the deprecated `call_tool`: run tool-call requests under the gateway's tool mode
//! (`local` executes, `passthrough`/`approval_required` waits for a person first; flow-format §3.10, §6.2).

use abstractgateway_plugin_sdk::durability::Wait;
use abstractgateway_plugin_sdk::{Error, Invocation, Map, NodeResult, Value, json};

use crate::host::Host;
use crate::params::{Gateway, pick, tool_names};

/// One requested call, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The call id (given, else `call_<index>`).
    pub call_id: String,
    /// The tool name.
    pub name: String,
    /// The arguments object.
    pub arguments: Value,
}

/// Normalises `[{name, arguments, call_id|id}]` and OpenAI `{function: {name, arguments: "<json>"}}` items.
pub fn normalise(v: Option<&Value>) -> Vec<Call> {
    let items: Vec<&Value> = match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => vec![],
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let f = item.get("function").unwrap_or(item);
        let Some(name) = f.get("name").and_then(Value::as_str).map(str::trim) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let arguments = match f.get("arguments") {
            Some(Value::String(s)) => {
                abstractgateway_plugin_sdk::serde_json::from_str(s).unwrap_or_else(|_| json!({}))
            }
            Some(Value::Object(o)) => Value::Object(o.clone()),
            _ => json!({}),
        };
        let call_id = item
            .get("call_id")
            .or_else(|| item.get("id"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("call_{}", i + 1));
        out.push(Call {
            call_id,
            name: name.to_string(),
            arguments,
        });
    }
    out
}

/// One result in the seed's shape.
fn result(call: &Call, outcome: Result<Value, String>) -> Value {
    match outcome {
        Ok(output) => {
            json!({"call_id": call.call_id, "name": call.name, "success": true, "output": output, "error": null})
        }
        Err(e) => {
            json!({"call_id": call.call_id, "name": call.name, "success": false, "output": null, "error": e})
        }
    }
}

/// Executes the calls through the host; names outside a non-empty `allowed` list fail without a call.
pub fn execute(host: &mut dyn Host, calls: &[Call], allowed: &[String]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            if !allowed.is_empty() && !allowed.contains(&c.name) {
                return result(c, Err(format!("Tool '{}' is not allowed", c.name)));
            }
            result(
                c,
                host.invoke(&c.name, &c.arguments)
                    .map_err(|e| e.message.clone()),
            )
        })
        .collect()
}

/// Runs the calls under the tool mode: executes them (`local`), or waits on `key` for approval and then
/// executes, rejects, or takes the results a client executed itself.
pub fn run_calls(
    host: &mut dyn Host,
    mode: &str,
    key: &str,
    calls: &[Call],
    allowed: &[String],
) -> Result<Vec<Value>, Error> {
    if calls.is_empty() {
        return Ok(vec![]);
    }
    if mode == "local" {
        return Ok(execute(host, calls, allowed));
    }
    let listed: Vec<Value> = calls
        .iter()
        .map(|c| json!({"call_id": c.call_id, "name": c.name, "arguments": c.arguments}))
        .collect();
    let wait = Wait::user(key)
        .prompt("Approve tool calls?")
        .detail("mode", json!("approval_required"))
        .detail("tool_calls", Value::Array(listed));
    let answer = host.wait(&wait)?;
    if answer.get("mode").and_then(Value::as_str) == Some("executed") {
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        return Ok(results);
    }
    let approved = match answer.get("approved") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim(), "true" | "yes" | "approve" | "approved"),
        _ => answer
            .get("response")
            .and_then(Value::as_str)
            .is_some_and(|s| {
                matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "yes" | "y" | "approve" | "approved"
                )
            }),
    };
    if approved {
        Ok(execute(host, calls, allowed))
    } else {
        Ok(calls
            .iter()
            .map(|c| result(c, Err("rejected".into())))
            .collect())
    }
}

/// True when every result succeeded.
pub fn all_ok(results: &[Value]) -> bool {
    results
        .iter()
        .all(|r| r.get("success").and_then(Value::as_bool) == Some(true))
}

/// Runs one `tool_calls` or `call_tool` node.
pub fn run(host: &mut dyn Host, inv: &Invocation) -> Result<NodeResult, Error> {
    let empty = json!({});
    let effect = inv.config_value("effectConfig").unwrap_or(&empty);
    let cfg = [effect];
    let gw = Gateway::of(inv.config());
    let single = inv.node_type() == "call_tool";
    let calls = if single {
        normalise(pick(inv, "tool_call", &cfg))
            .into_iter()
            .take(1)
            .collect()
    } else {
        normalise(pick(inv, "tool_calls", &cfg))
    };
    let allowed = tool_names(pick(inv, "allowed_tools", &cfg));
    let key = format!("tools:{}:{}", gw.run_id, inv.node_id());
    let results = run_calls(host, &gw.tool_mode, &key, &calls, &allowed)?;
    let mut out = Map::new();
    if single {
        let first = results.first();
        let ok = first.is_some_and(|r| r.get("success").and_then(Value::as_bool) == Some(true));
        let value = match first {
            Some(r) if ok => r.get("output").cloned().unwrap_or(Value::Null),
            Some(r) => r.get("error").cloned().unwrap_or(Value::Null),
            None => Value::Null,
        };
        out.insert("result".into(), value);
        out.insert("success".into(), json!(ok));
    } else {
        let ok = all_ok(&results);
        out.insert("results".into(), Value::Array(results));
        out.insert("success".into(), json!(ok));
    }
    Ok(out.into())
}
