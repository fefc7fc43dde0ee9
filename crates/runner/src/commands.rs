//! Applies inbox commands with the seed's semantics, except that every command ends with a durable
//! outcome (applied, or rejected with a reason) and every control transition is in the ledger.

use serde_json::{Value, json};

use super::world::{ResumeError, World, cancel, deliver};
use crate::flow::CompileError;
use crate::run::{
    CommandOutcome, CommandRecord, RunState, RunStatus, StepRecord, WaitReason, WaitState,
};
use crate::time;

/// Why a command was rejected; its text is the outcome's durable `reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("compact_memory needs LLM nodes, which this gateway does not run yet")]
    CompactMemory,
    #[error("Unknown command type '{0}'")]
    UnknownType(String),
    #[error("Run '{0}' is not active (unknown or already terminal)")]
    NotActive(String),
    #[error("Run '{0}' is already paused")]
    AlreadyPaused(String),
    #[error("Run '{0}' is not paused")]
    NotPaused(String),
    #[error("resume payload.payload must be an object")]
    PayloadNotObject,
    #[error("Run vanished")]
    Vanished,
    #[error("Run is paused")]
    Paused,
    #[error("Run is not waiting")]
    NotWaiting,
    #[error("wait_key mismatch: run waits on {waits:?}, command gave {given:?}")]
    WaitKeyMismatch {
        waits: Option<String>,
        given: String,
    },
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error("emit_event requires payload.name")]
    EventName,
    #[error("emit_event with scope 'workflow' requires payload.workflow_id")]
    EventWorkflowId,
    #[error("emit_event scope must be session|workflow|run|global (got '{0}')")]
    EventScope(String),
    #[error(
        "Run '{0}' is not part of an active scheduled run (update_schedule applies to runs started by /runs/schedule)"
    )]
    NotScheduled(String),
    #[error("update_schedule requires payload.interval")]
    IntervalMissing,
    #[error("Invalid interval {0:?}: expected e.g. '30s', '15m', '1.5h', '250ms'")]
    Interval(String),
    #[error("Scheduled run '{0}' is not recurrent (it has no interval)")]
    NotRecurrent(String),
    #[error("update_schedule needs a gateway runner")]
    NoRunner,
    #[error("Workflow '{0}' has no generated flow")]
    NoGeneratedFlow(String),
    #[error("Run '{0}' not found")]
    RunNotFound(String),
    #[error("Run '{0}' cannot be read: {1}")]
    RunUnreadable(String, String),
    #[error(
        "gateway.record_event needs payload.{0} as a non-empty string of at most 256 characters"
    )]
    RecordField(&'static str),
    /// The schedule's updated wrapper flow does not compile.
    #[error(transparent)]
    Flow(#[from] CompileError),
}

pub(crate) type Applied = Result<Vec<String>, Rejection>;

/// Applies one command; the outcome is committed with the state it changed.
pub fn apply(world: &mut World, cmd: &CommandRecord) -> CommandOutcome {
    let result = match cmd.kind.to_ascii_lowercase().as_str() {
        "pause" => pause(world, cmd),
        "resume" => resume(world, cmd),
        "cancel" => cancel_cmd(world, cmd),
        "emit_event" => emit(world, cmd),
        "update_schedule" => update_schedule(world, cmd),
        "compact_memory" => Err(Rejection::CompactMemory),
        other => Err(Rejection::UnknownType(other.to_string())),
    };
    outcome(cmd, result)
}

/// The durable outcome of `cmd` from what applying it gave.
pub(crate) fn outcome(cmd: &CommandRecord, result: Applied) -> CommandOutcome {
    let (status, reason, runs) = match result {
        Ok(runs) => ("applied", None, runs),
        Err(r) => ("rejected", Some(r.to_string()), vec![]),
    };
    crate::metrics::command(&cmd.kind.to_ascii_lowercase(), status);
    CommandOutcome {
        command_id: cmd.command_id.clone(),
        seq: cmd.seq,
        status: status.into(),
        reason,
        runs,
        applied_at: time::now_iso(),
    }
}

fn payload_str(cmd: &CommandRecord, key: &str) -> Option<String> {
    cmd.payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A ledger record for a control-plane transition (the seed writes none; replay clients need them).
fn control_record(run: &RunState, kind: &str, cmd: &CommandRecord, result: Value) -> StepRecord {
    let node = run.current_node.clone().unwrap_or_default();
    let mut rec = StepRecord::new(run, &node, "completed");
    rec.effect = Some(
        json!({"type": kind, "payload": {"command_id": cmd.command_id, "payload": cmd.payload}, "result_key": null}),
    );
    rec.result = Some(result);
    rec.idempotency_key = Some(format!("command:{}:{}", kind, cmd.command_id));
    rec
}

fn require_active(world: &World, cmd: &CommandRecord) -> Result<(), Rejection> {
    if world.runs.contains_key(&cmd.run_id) {
        Ok(())
    } else {
        Err(Rejection::NotActive(cmd.run_id.clone()))
    }
}

fn pause(world: &mut World, cmd: &CommandRecord) -> Applied {
    require_active(world, cmd)?;
    let reason = payload_str(cmd, "reason");
    let mut changed = Vec::new();
    for id in world.tree(&cmd.run_id) {
        let did = world.with_run(&id, |run, recs, _| {
            if run.status.is_terminal() || run.control.paused {
                return false;
            }
            run.control.paused = true;
            run.control.paused_at = Some(time::now_iso());
            run.control.pause_reason = reason.clone();
            if run.status == RunStatus::Running {
                let mut w = WaitState::new(WaitReason::User);
                w.wait_key = Some(format!("pause:{}", run.run_id));
                w.resume_to_node = run.current_node.clone();
                w.prompt = Some("Paused".into());
                w.allow_free_text = false;
                w.details = Some(json!({"kind": "pause"}));
                run.status = RunStatus::Waiting;
                run.waiting = Some(w);
            }
            recs.push(control_record(
                run,
                "pause",
                cmd,
                json!({"paused": true, "reason": reason}),
            ));
            true
        });
        if did == Some(true) {
            changed.push(id);
        }
    }
    if changed.is_empty() {
        return Err(Rejection::AlreadyPaused(cmd.run_id.clone()));
    }
    Ok(changed)
}

fn resume(world: &mut World, cmd: &CommandRecord) -> Applied {
    require_active(world, cmd)?;
    let Some(inner) = cmd.payload.get("payload") else {
        return unpause(world, cmd);
    };
    if !inner.is_object() {
        return Err(Rejection::PayloadNotObject);
    }
    let wait_key = payload_str(cmd, "wait_key").or_else(|| payload_str(cmd, "waitKey"));
    let run = world.runs.get(&cmd.run_id).ok_or(Rejection::Vanished)?;
    if run.control.paused {
        return Err(Rejection::Paused);
    }
    let Some(w) = run
        .waiting
        .as_ref()
        .filter(|_| run.status == RunStatus::Waiting)
    else {
        return Err(Rejection::NotWaiting);
    };
    if let Some(k) = wait_key
        && w.wait_key.as_deref() != Some(k.as_str())
    {
        return Err(Rejection::WaitKeyMismatch {
            waits: w.wait_key.clone(),
            given: k,
        });
    }
    world.resume(&cmd.run_id, inner.clone())?;
    Ok(vec![cmd.run_id.clone()])
}

fn unpause(world: &mut World, cmd: &CommandRecord) -> Applied {
    let mut changed = Vec::new();
    let mut buffered = Vec::new();
    for id in world.tree(&cmd.run_id) {
        let did = world.with_run(&id, |run, recs, _| {
            if !run.control.paused {
                return None;
            }
            run.control.paused = false;
            run.control.pause_reason = None;
            run.control.resumed_at = Some(time::now_iso());
            if run.waiting.as_ref().is_some_and(WaitState::is_pause) {
                let to = run.waiting.take().and_then(|w| w.resume_to_node);
                run.status = RunStatus::Running;
                run.current_node = to.or(run.current_node.take());
            }
            recs.push(control_record(
                run,
                "resume",
                cmd,
                json!({"resumed": true, "unpaused": true}),
            ));
            Some(std::mem::take(&mut run.control.pending_events))
        });
        if let Some(Some(events)) = did {
            changed.push(id.clone());
            buffered.push((id, events));
        }
    }
    // Events that arrived while paused are delivered now, in order.
    for (id, events) in buffered {
        for ev in events {
            let _ = world.resume(&id, ev);
        }
    }
    // Resuming a recurrent schedule fires its next execution now (seed semantics).
    if let Some(root) = scheduled_root(world, &cmd.run_id).filter(|_| !changed.is_empty()) {
        world.with_run(&root, |run, _, _| {
            if run.current_node.as_deref() == Some("wait_interval")
                && let Some(w) = run
                    .waiting
                    .as_mut()
                    .filter(|w| w.reason == WaitReason::Until)
            {
                w.until = Some(time::now_iso());
            }
        });
    }
    // A due timer of a run paused past its deadline fires now.
    world.fire_timers();
    if changed.is_empty() {
        return Err(Rejection::NotPaused(cmd.run_id.clone()));
    }
    Ok(changed)
}

fn cancel_cmd(world: &mut World, cmd: &CommandRecord) -> Applied {
    require_active(world, cmd)?;
    let reason = payload_str(cmd, "reason").unwrap_or_else(|| "Cancelled".into());
    let mut changed = Vec::new();
    for id in world.tree(&cmd.run_id) {
        if world.with_run(&id, |run, recs, _| cancel(run, recs, &reason, "api")) == Some(true) {
            changed.push(id);
        }
    }
    Ok(changed)
}

fn emit(world: &mut World, cmd: &CommandRecord) -> Applied {
    let Some(name) = payload_str(cmd, "name") else {
        return Err(Rejection::EventName);
    };
    let scope = payload_str(cmd, "scope").unwrap_or_else(|| "session".into());
    let session = payload_str(cmd, "session_id")
        .or_else(|| payload_str(cmd, "sessionId"))
        .unwrap_or_else(|| cmd.run_id.clone());
    let scope_id = match scope.as_str() {
        "session" => session.clone(),
        "workflow" => payload_str(cmd, "workflow_id").ok_or(Rejection::EventWorkflowId)?,
        "run" => payload_str(cmd, "run_id").unwrap_or_else(|| cmd.run_id.clone()),
        "global" => "global".into(),
        other => {
            return Err(Rejection::EventScope(other.to_string()));
        }
    };
    let inner = match cmd.payload.get("payload") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(other) => json!({"value": other}),
    };
    let envelope = json!({
        "event_id": payload_str(cmd, "event_id").unwrap_or_else(|| cmd.command_id.clone()),
        "name": name, "scope": scope, "session_id": session, "payload": inner,
        "emitted_at": payload_str(cmd, "emitted_at").unwrap_or_else(|| cmd.ts.clone()),
        "emitter": {"source": "external", "client_id": cmd.client_id},
    });
    let keys = [
        format!("evt:{scope}:{scope_id}:{name}"),
        format!("evt:{scope}:{scope_id}:*"),
    ];
    Ok(deliver(world, &keys, &envelope))
}

/// The scheduled root of `run_id`'s tree (the run itself or an active ancestor).
fn scheduled_root(world: &World, run_id: &str) -> Option<String> {
    let mut cur = world.runs.get(run_id)?;
    loop {
        if cur.workflow_id.starts_with("scheduled:") {
            return Some(cur.run_id.clone());
        }
        cur = world.runs.get(cur.parent_run_id.as_deref()?)?;
    }
}

fn update_schedule(world: &mut World, cmd: &CommandRecord) -> Applied {
    let root = scheduled_root(world, &cmd.run_id)
        .ok_or_else(|| Rejection::NotScheduled(cmd.run_id.clone()))?;
    let raw = payload_str(cmd, "interval")
        .or_else(|| payload_str(cmd, "schedule"))
        .ok_or(Rejection::IntervalMissing)?;
    let seconds =
        super::schedule::parse_interval(&raw).ok_or_else(|| Rejection::Interval(raw.clone()))?;
    let immediately = cmd
        .payload
        .get("apply_immediately")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let recurrent = world.runs.get(&root).is_some_and(|r| {
        r.vars
            .get("_meta")
            .and_then(|m| m.get("schedule"))
            .and_then(|s| s.get("interval"))
            .is_some_and(|i| !i.is_null())
    });
    if !recurrent {
        return Err(Rejection::NotRecurrent(root));
    }
    let Some(shared) = world.shared.clone() else {
        return Err(Rejection::NoRunner);
    };
    let workflow_id = world
        .runs
        .get(&root)
        .map(|r| r.workflow_id.clone())
        .unwrap_or_default();
    let flow = shared
        .dynamic(&workflow_id)
        .ok_or_else(|| Rejection::NoGeneratedFlow(workflow_id.clone()))?;
    let flow = super::schedule::with_interval(flow, seconds);
    shared.put_dynamic(&workflow_id, flow.clone())?;
    world.flows = shared.get();
    world.meta_writes.push((
        format!("dynamic_flow:{workflow_id}"),
        serde_json::to_vec(&flow).unwrap_or_default(),
    ));
    let now = time::now_iso();
    world.with_run(&root, |run, recs, _| {
        let sched = crate::engine::state::obj_mut(
            crate::engine::state::obj_mut(&mut run.vars, "_meta"),
            "schedule",
        );
        sched.insert("interval".into(), Value::String(raw.clone()));
        sched.insert("updated_at".into(), Value::String(now.clone()));
        let update = json!({"command_id": cmd.command_id, "interval": raw, "updated_at": now,
                            "requested_run_id": cmd.run_id, "scheduled_root_run_id": run.run_id});
        crate::engine::state::obj_mut(&mut run.vars, "_runtime")
            .insert("last_schedule_update".into(), update.clone());
        // A pending interval wait is re-armed from now with the new interval.
        if immediately
            && run.current_node.as_deref() == Some("wait_interval")
            && let Some(w) = run
                .waiting
                .as_mut()
                .filter(|w| w.reason == WaitReason::Until)
        {
            w.until = Some(time::iso_after(seconds));
        }
        recs.push(control_record(run, "update_schedule", cmd, update));
    });
    Ok(vec![root])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rejection's reason is stored durably and read by clients: its text does not change.
    #[test]
    fn rejections_keep_their_reasons() {
        let cases = [
            (
                Rejection::NotActive("r1".into()),
                "Run 'r1' is not active (unknown or already terminal)",
            ),
            (
                Rejection::WaitKeyMismatch {
                    waits: Some("evt:a".into()),
                    given: "evt:b".into(),
                },
                "wait_key mismatch: run waits on Some(\"evt:a\"), command gave \"evt:b\"",
            ),
            (
                Rejection::Resume(ResumeError::NotActive("r2".into())),
                "Run 'r2' is not active",
            ),
            (
                Rejection::Resume(ResumeError::Engine(crate::engine::ResumeError::NotWaiting)),
                "Run is not waiting",
            ),
            (
                Rejection::Interval("soon".into()),
                "Invalid interval \"soon\": expected e.g. '30s', '15m', '1.5h', '250ms'",
            ),
            (
                Rejection::EventScope("team".into()),
                "emit_event scope must be session|workflow|run|global (got 'team')",
            ),
        ];
        for (r, text) in cases {
            assert_eq!(r.to_string(), text);
        }
    }
}
