//! Durable commands (§1.1 #23): idempotent by `command_id`, validated before they are accepted, with the
//! outcome readable at `GET /api/gateway/commands/{command_id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::{AppState, SharedState};
use crate::store::NewCommand;
use crate::wire::commands::{CommandAccepted, CommandStatus, SubmitCommand};

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
    if !st.gw.store().run_exists(run_id)? {
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

/// Submit a durable command (idempotent by command_id).
///
/// Checked before it is accepted (the run exists, the payload fits the type), then applied by the runner; its
/// outcome is read at `GET /commands/{command_id}`.
#[utoipa::path(post, path = "/api/gateway/commands", tag = "commands",
    request_body = SubmitCommand,
    responses((status = 200, description = "Stored (or already stored)", body = CommandAccepted),
              (status = 400, description = "Unknown type, empty run id, a payload that does not fit the type, or a command the store refused", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody),
              (status = 503, description = "The cluster store cannot take writes now", body = ErrorBody)))]
pub async fn submit(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CommandAccepted>> {
    let SubmitCommand {
        command_id,
        run_id,
        r#type: kind,
        payload,
        ts,
        client_id,
    } = SubmitCommand::parse(&headers, &body)?;
    // An empty id gets a fresh one (as the seed does); such a command cannot be retried idempotently.
    let command_id = if command_id.trim().is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        command_id
    };
    let store = st.gw.store();
    if let Some((rec, _)) = store.get_command(&command_id)? {
        return Ok(Json(CommandAccepted {
            accepted: false,
            duplicate: true,
            seq: rec.seq,
        }));
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
    let appended = st.gw.clone().submit_command_async(cmd).await.map_err(|e| {
        // The seed answers 400 for a command it cannot append; a cluster store that cannot take writes now
        // answers 503, so that clients retry.
        let status = match crate::error::store_status(&e) {
            StatusCode::SERVICE_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, format!("Failed to append command: {e}"))
    })?;
    Ok(Json(CommandAccepted {
        accepted: !appended.duplicate,
        duplicate: appended.duplicate,
        seq: appended.seq,
    }))
}

/// A command and its outcome.
///
/// The outcome is null until the command is applied.
#[utoipa::path(get, path = "/api/gateway/commands/{command_id}", tag = "commands",
    params(("command_id" = String, Path)),
    responses((status = 200, description = "The command", body = CommandStatus),
              (status = 404, description = "No such command", body = ErrorBody)))]
pub async fn get(
    State(st): State<SharedState>,
    Path(command_id): Path<String>,
) -> ApiResult<Json<CommandStatus>> {
    match st.gw.store().get_command(&command_id)? {
        Some((rec, outcome)) => Ok(Json(CommandStatus {
            command: rec,
            outcome,
        })),
        None => Err(ApiError::not_found(format!(
            "Command '{command_id}' not found"
        ))),
    }
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(submit))
        .documented(routes!(get))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::run::{CommandOutcome, CommandRecord};
    use crate::wire::commands::CommandStatus;

    #[test]
    fn a_command_answers_the_bytes_of_the_stored_record() {
        let rec = CommandRecord {
            command_id: "c1".into(),
            run_id: "r1".into(),
            kind: "resume".into(),
            payload: json!({"z": 1, "a": {"payload": "é"}}),
            ts: "2025-01-01T00:00:00+00:00".into(),
            client_id: None,
            seq: 7,
        };
        let outcome = CommandOutcome {
            command_id: "c1".into(),
            seq: 7,
            status: "rejected".into(),
            reason: None,
            runs: vec!["r1".into()],
            applied_at: "2025-01-01T00:00:01+00:00".into(),
        };
        for outcome in [None, Some(outcome)] {
            let old = serde_json::to_string(&json!({"command": rec, "outcome": outcome}));
            let typed = serde_json::to_string(&CommandStatus {
                command: rec.clone(),
                outcome,
            });
            assert_eq!(typed.ok(), old.ok());
        }
    }
}
