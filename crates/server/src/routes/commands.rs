//! Durable commands (§1.1 #23): idempotent by `command_id`, validated before they are accepted, with the
//! outcome readable at `GET /api/gateway/commands/{command_id}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, json_response};
use crate::extract::{BodyFields, json_object};
use crate::run::COMMAND_TYPES;
use crate::state::{AppState, SharedState};
use crate::store::NewCommand;

fn ok(v: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &v))
}

/// Checks what can be checked before accepting: the run exists (except for `emit_event`, whose target is a
/// session id) and the payload fits the type.
fn validate(
    st: &AppState,
    kind: &str,
    run_id: &str,
    payload: &serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    let str_field = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if kind == "emit_event" {
        if str_field("name").is_none() {
            return Err(ApiError::bad_request("emit_event requires payload.name"));
        }
        let scope = str_field("scope").unwrap_or("session");
        if !["session", "workflow", "run", "global"].contains(&scope) {
            return Err(ApiError::bad_request(format!(
                "emit_event scope must be session|workflow|run|global (got '{scope}')"
            )));
        }
        if scope == "workflow" && str_field("workflow_id").is_none() {
            return Err(ApiError::bad_request(
                "emit_event with scope 'workflow' requires payload.workflow_id",
            ));
        }
        return Ok(());
    }
    if st.gw.store().get_run(run_id)?.is_none() {
        return Err(ApiError::run_not_found(run_id));
    }
    if kind == "resume"
        && let Some(inner) = payload.get("payload")
        && !inner.is_object()
    {
        return Err(ApiError::bad_request(
            "resume payload.payload must be an object",
        ));
    }
    for k in ["reason", "wait_key"] {
        if payload
            .get(k)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            return Err(ApiError::bad_request(format!(
                "payload.{k} must be a string"
            )));
        }
    }
    Ok(())
}

/// `POST /api/gateway/commands`.
pub async fn submit(State(st): State<SharedState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let obj = json_object(&headers, &body)?;
    let mut f = BodyFields::new(&obj);
    let command_id = f.req_str("command_id");
    let run_id = f.req_str("run_id");
    let kind = f.req_str("type");
    let payload = f.obj_or_empty("payload");
    let ts = f.opt_str("ts");
    let client_id = f.opt_str("client_id");
    f.finish()?;
    if !COMMAND_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::bad_request(
            "type must be one of pause|resume|cancel|emit_event|update_schedule|compact_memory",
        ));
    }
    if run_id.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Failed to append command: run_id is required",
        ));
    }
    // An empty id gets a fresh one (as the seed does); such a command cannot be retried idempotently.
    let command_id = if command_id.trim().is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        command_id
    };
    let store = st.gw.store();
    if let Some((rec, _)) = store.get_command(&command_id)? {
        return ok(json!({"accepted": false, "duplicate": true, "seq": rec.seq}));
    }
    validate(&st, &kind, &run_id, &payload)?;
    let cmd = NewCommand {
        command_id,
        run_id,
        kind,
        payload: Value::Object(payload),
        ts,
        client_id,
    };
    let appended = store.append_command_async(cmd).await.map_err(|e| {
        // The seed answers 400 for a command it cannot append; a cluster store that cannot take writes now
        // answers 503, so that clients retry.
        let status = match crate::error::store_status(&e) {
            StatusCode::SERVICE_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, format!("Failed to append command: {e}"))
    })?;
    if !appended.duplicate {
        st.gw.notify_commands();
    }
    ok(
        json!({"accepted": !appended.duplicate, "duplicate": appended.duplicate, "seq": appended.seq}),
    )
}

/// `GET /api/gateway/commands/{command_id}`: `{command, outcome}` (outcome null until applied).
pub async fn get(State(st): State<SharedState>, Path(command_id): Path<String>) -> ApiResult {
    match st.gw.store().get_command(&command_id)? {
        Some((rec, outcome)) => ok(json!({"command": rec, "outcome": outcome})),
        None => Err(ApiError::not_found(format!(
            "Command '{command_id}' not found"
        ))),
    }
}
