//! Scheduled runs (`POST /runs/schedule`, `update_schedule`): a generated wrapper flow
//! `scheduled:<uuid>` waits for the start time, runs the target as a child run, and repeats on an
//! interval, all with ordinary nodes so it is as durable as any other run.

use serde_json::{Value, json};

use crate::run::Obj;
use crate::time;

/// Most executions one schedule may make (the seed's cap).
pub const MAX_EXECUTIONS: u64 = 10_000;

/// What to schedule, already resolved to a loaded workflow.
#[derive(Debug, Clone, Default)]
pub struct ScheduleSpec {
    pub target_workflow_id: String,
    pub target_bundle_id: String,
    pub target_bundle_version: String,
    pub target_flow_id: String,
    pub input: Obj,
    /// ISO time or `now`/absent.
    pub start_at: Option<String>,
    /// Relative duration such as `15m`.
    pub interval: Option<String>,
    pub repeat_count: Option<i64>,
    pub repeat_until: Option<String>,
    pub share_context: bool,
    pub session_id: Option<String>,
}

/// A schedule refused by [`plan`] (the seed's rules and messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("Invalid start_at: {0:?} (expected ISO 8601 or 'now')")]
    StartAt(String),
    #[error("Invalid interval: {0:?} (expected e.g. '15m', '1h', '0.5s')")]
    Interval(String),
    #[error("repeat_count must be >= 1")]
    RepeatCountBelowOne,
    #[error("repeat_count > 1 requires interval")]
    RepeatCountWithoutInterval,
    #[error("repeat_count must be <= {MAX_EXECUTIONS}")]
    RepeatCountAboveMax,
    #[error("repeat_until cannot be combined with repeat_count")]
    RepeatUntilWithCount,
    #[error("repeat_until requires interval")]
    RepeatUntilWithoutInterval,
    #[error("Invalid repeat_until: {0:?}")]
    RepeatUntil(String),
    #[error("repeat_until must be after start_at")]
    RepeatUntilBeforeStart,
    /// `repeat_until` would make more than [`MAX_EXECUTIONS`] runs (`0`: how many).
    #[error("repeat_until requires {0} runs (max {MAX_EXECUTIONS})")]
    RepeatUntilTooMany(u64),
}

/// A validated schedule: its wrapper flow and the parent run's variables.
pub struct Plan {
    pub flow: Value,
    pub vars: Obj,
}

/// Parses an interval the way the runner does: `^\d+(\.\d+)?\s*(ms|s|m|h|d)$`, strictly positive.
pub fn parse_interval(s: &str) -> Option<f64> {
    let re = regex::Regex::new(r"^\d+(\.\d+)?\s*(ms|s|m|h|d)$").ok()?;
    let t = s.trim();
    if !re.is_match(t) {
        return None;
    }
    time::parse_duration_s(&t.replace(' ', "")).filter(|v| *v > 0.0)
}

/// Checks a schedule with the seed's rules and messages; builds its wrapper flow.
pub fn plan(id: &str, spec: &ScheduleSpec) -> Result<Plan, ScheduleError> {
    let start_at = match spec.start_at.as_deref().map(str::trim) {
        None | Some("") | Some("now") => None,
        Some(s) => {
            Some(time::normalize_iso(s).ok_or_else(|| ScheduleError::StartAt(s.to_string()))?)
        }
    };
    let interval_s = match &spec.interval {
        None => None,
        Some(i) => Some(parse_interval(i).ok_or_else(|| ScheduleError::Interval(i.clone()))?),
    };
    if let Some(n) = spec.repeat_count {
        if n <= 0 {
            return Err(ScheduleError::RepeatCountBelowOne);
        }
        if n > 1 && interval_s.is_none() {
            return Err(ScheduleError::RepeatCountWithoutInterval);
        }
        if n as u64 > MAX_EXECUTIONS {
            return Err(ScheduleError::RepeatCountAboveMax);
        }
        if spec.repeat_until.is_some() {
            return Err(ScheduleError::RepeatUntilWithCount);
        }
    }
    let mut count = spec.repeat_count.map(|n| n as u64);
    if let Some(u) = &spec.repeat_until {
        let Some(step) = interval_s else {
            return Err(ScheduleError::RepeatUntilWithoutInterval);
        };
        let until = time::parse_iso(u).ok_or_else(|| ScheduleError::RepeatUntil(u.clone()))?;
        let begin = start_at
            .as_deref()
            .and_then(time::parse_iso)
            .unwrap_or_else(::time::OffsetDateTime::now_utc);
        if until < begin {
            return Err(ScheduleError::RepeatUntilBeforeStart);
        }
        let span = (until - begin).as_seconds_f64();
        let n = 1 + (span / step).floor() as u64;
        if n > MAX_EXECUTIONS {
            return Err(ScheduleError::RepeatUntilTooMany(n));
        }
        count = Some(n);
    }
    // No interval: one shot. Interval without count: forever.
    let count = if interval_s.is_none() { Some(1) } else { count };
    let session_prefix =
        (!spec.share_context).then(|| format!("scheduled:{}", uuid::Uuid::new_v4().simple()));
    let flow = wrapper_flow(
        id,
        spec,
        start_at.as_deref(),
        interval_s,
        count,
        session_prefix.as_deref(),
    );
    let now = time::now_iso();
    let mut vars = Obj::new();
    vars.insert("vars".into(), Value::Object(spec.input.clone()));
    vars.insert("executions".into(), json!(0));
    vars.insert(
        "_meta".into(),
        json!({"schedule": {
            "kind": "scheduled_run", "target_workflow_id": spec.target_workflow_id,
            "target_bundle_id": spec.target_bundle_id, "target_bundle_version": spec.target_bundle_version,
            "target_bundle_ref": format!("{}@{}", spec.target_bundle_id, spec.target_bundle_version),
            "target_flow_id": spec.target_flow_id, "start_at": start_at, "interval": spec.interval,
            "repeat_count": count.filter(|_| interval_s.is_some()).or(spec.repeat_count.map(|n| n as u64)),
            "repeat_until": spec.repeat_until, "share_context": spec.share_context,
            "session_prefix": session_prefix, "created_at": now, "updated_at": now,
        }}),
    );
    if let Some(p) = spec.input.get("prompt") {
        vars.insert("prompt".into(), p.clone());
    }
    Ok(Plan { flow, vars })
}

fn pins(ids: &[(&str, &str)]) -> Value {
    Value::Array(
        ids.iter()
            .map(|(id, ty)| json!({"id": id, "label": id, "type": ty}))
            .collect(),
    )
}

fn node(
    id: &str,
    ty: &str,
    inputs: &[(&str, &str)],
    outputs: &[(&str, &str)],
    extra: Value,
) -> Value {
    let mut data =
        json!({"nodeType": ty, "label": id, "inputs": pins(inputs), "outputs": pins(outputs)});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    json!({"id": id, "type": ty, "data": data})
}

fn edge(s: &str, sh: &str, t: &str, th: &str) -> Value {
    json!({"id": format!("{s}:{sh}->{t}:{th}"), "source": s, "sourceHandle": sh, "target": t, "targetHandle": th})
}

const X: &str = "execution";

/// The wrapper: `start → [wait_start] → run_target → bump → (check → wait_interval → run_target)* → end`.
fn wrapper_flow(
    id: &str,
    spec: &ScheduleSpec,
    start_at: Option<&str>,
    interval_s: Option<f64>,
    count: Option<u64>,
    session_prefix: Option<&str>,
) -> Value {
    let mut nodes = vec![
        node(
            "start",
            "on_flow_start",
            &[],
            &[("exec-out", X), ("vars", "object")],
            json!({}),
        ),
        node(
            "run_target",
            "subflow",
            &[("exec-in", X), ("input", "object")],
            &[("exec-out", X), ("output", "object")],
            json!({"subflowId": spec.target_workflow_id, "effectConfig": {"sessionPrefix": session_prefix}}),
        ),
        node(
            "executions",
            "get_var",
            &[("name", "string"), ("default", "number")],
            &[("value", "number")],
            json!({"pinDefaults": {"name": "executions", "default": 0}}),
        ),
        node(
            "plus_one",
            "add",
            &[("a", "number"), ("b", "number")],
            &[("result", "number")],
            json!({"pinDefaults": {"b": 1}}),
        ),
        node(
            "bump",
            "set_var",
            &[("exec-in", X), ("name", "string"), ("value", "number")],
            &[("exec-out", X)],
            json!({"pinDefaults": {"name": "executions"}}),
        ),
        node(
            "done_count",
            "get_var",
            &[("name", "string")],
            &[("value", "number")],
            json!({"pinDefaults": {"name": "executions"}}),
        ),
        node(
            "end",
            "on_flow_end",
            &[("exec-in", X), ("executions", "number")],
            &[],
            json!({}),
        ),
    ];
    let mut edges = vec![
        edge("start", "vars", "run_target", "input"),
        edge("run_target", "exec-out", "bump", "exec-in"),
        edge("executions", "value", "plus_one", "a"),
        edge("plus_one", "result", "bump", "value"),
        edge("done_count", "value", "end", "executions"),
    ];
    match start_at {
        Some(at) => {
            nodes.push(node("wait_start", "wait_until", &[("exec-in", X), ("duration", "string")], &[("exec-out", X)], json!({"pinDefaults": {"duration": at}, "effectConfig": {"durationType": "timestamp"}})));
            edges.push(edge("start", "exec-out", "wait_start", "exec-in"));
            edges.push(edge("wait_start", "exec-out", "run_target", "exec-in"));
        }
        None => edges.push(edge("start", "exec-out", "run_target", "exec-in")),
    }
    if let Some(step) = interval_s {
        nodes.push(node(
            "wait_interval",
            "wait_until",
            &[("exec-in", X), ("duration", "number")],
            &[("exec-out", X)],
            json!({"pinDefaults": {"duration": step}}),
        ));
        edges.push(edge("wait_interval", "exec-out", "run_target", "exec-in"));
        match count {
            Some(n) => {
                nodes.push(node(
                    "left",
                    "get_var",
                    &[("name", "string"), ("default", "number")],
                    &[("value", "number")],
                    json!({"pinDefaults": {"name": "executions", "default": 0}}),
                ));
                nodes.push(node(
                    "more",
                    "compare",
                    &[("a", "number"), ("op", "string"), ("b", "number")],
                    &[("result", "boolean")],
                    json!({"pinDefaults": {"op": "<", "b": n}}),
                ));
                nodes.push(node(
                    "check",
                    "if",
                    &[("exec-in", X), ("condition", "boolean")],
                    &[("true", X), ("false", X)],
                    json!({}),
                ));
                edges.push(edge("bump", "exec-out", "check", "exec-in"));
                edges.push(edge("left", "value", "more", "a"));
                edges.push(edge("more", "result", "check", "condition"));
                edges.push(edge("check", "true", "wait_interval", "exec-in"));
                edges.push(edge("check", "false", "end", "exec-in"));
            }
            None => edges.push(edge("bump", "exec-out", "wait_interval", "exec-in")),
        }
    } else {
        edges.push(edge("bump", "exec-out", "end", "exec-in"));
    }
    json!({"id": id, "name": format!("schedule of {}", spec.target_workflow_id), "entryNode": "start", "nodes": nodes, "edges": edges})
}

/// The wrapper with a new interval (`update_schedule`).
pub fn with_interval(mut flow: Value, seconds: f64) -> Value {
    if let Some(nodes) = flow.get_mut("nodes").and_then(Value::as_array_mut) {
        for n in nodes {
            if n.get("id").and_then(Value::as_str) == Some("wait_interval") {
                n["data"]["pinDefaults"]["duration"] = json!(seconds);
            }
        }
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(spec: ScheduleSpec) -> ScheduleError {
        match plan("scheduled:x", &spec) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn refusals_keep_the_seed_messages() {
        let base = ScheduleSpec {
            target_workflow_id: "b:f".into(),
            ..Default::default()
        };
        let cases = [
            (
                ScheduleSpec {
                    start_at: Some("soon".into()),
                    ..base.clone()
                },
                "Invalid start_at: \"soon\" (expected ISO 8601 or 'now')",
            ),
            (
                ScheduleSpec {
                    interval: Some("often".into()),
                    ..base.clone()
                },
                "Invalid interval: \"often\" (expected e.g. '15m', '1h', '0.5s')",
            ),
            (
                ScheduleSpec {
                    repeat_count: Some(0),
                    ..base.clone()
                },
                "repeat_count must be >= 1",
            ),
            (
                ScheduleSpec {
                    repeat_count: Some(2),
                    ..base.clone()
                },
                "repeat_count > 1 requires interval",
            ),
            (
                ScheduleSpec {
                    repeat_count: Some(10_001),
                    interval: Some("1s".into()),
                    ..base.clone()
                },
                "repeat_count must be <= 10000",
            ),
            (
                ScheduleSpec {
                    repeat_until: Some("2030-01-01T00:00:00Z".into()),
                    ..base.clone()
                },
                "repeat_until requires interval",
            ),
            (
                ScheduleSpec {
                    repeat_until: Some("2000-01-01T00:00:00Z".into()),
                    interval: Some("1s".into()),
                    ..base.clone()
                },
                "repeat_until must be after start_at",
            ),
            (
                ScheduleSpec {
                    repeat_until: Some("2000-01-02T00:00:00Z".into()),
                    start_at: Some("2000-01-01T00:00:00Z".into()),
                    interval: Some("1s".into()),
                    ..base.clone()
                },
                "repeat_until requires 86401 runs (max 10000)",
            ),
        ];
        for (spec, text) in cases {
            assert_eq!(refused(spec).to_string(), text);
        }
    }
}
