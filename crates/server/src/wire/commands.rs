//! Durable commands: submit one, read it back with its outcome.

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::parse_body;
use crate::run::{COMMAND_TYPES, CommandOutcome, CommandRecord};

/// The body of `POST /commands`.
#[derive(ToSchema)]
pub struct SubmitCommand {
    /// Makes the submit idempotent: a second submit of the same id is answered `duplicate` and not applied
    /// again. Empty: a fresh id (such a command cannot be retried idempotently).
    pub command_id: String,
    /// The run the command acts on (`emit_event`: the session id the event is for, unless its scope says
    /// otherwise).
    pub run_id: String,
    /// `pause`, `resume`, `cancel`, `emit_event`, `update_schedule` or `compact_memory`.
    pub r#type: String,
    /// What the type needs (`emit_event`: `name`, `scope`, `payload`…; `resume`: `payload`, `wait_key`…).
    #[schema(required = false, value_type = Object)]
    pub payload: Map<String, Value>,
    /// The client's timestamp (ISO 8601); default: when it is stored.
    pub ts: Option<String>,
    /// Who sent it.
    pub client_id: Option<String>,
}

impl SubmitCommand {
    /// Parses and validates the body (FastAPI's 422 for a missing or wrong field; 400 for an unknown type or an
    /// empty run id, as the seed).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let req = parse_body(headers, body, |f| SubmitCommand {
            command_id: f.req_str("command_id"),
            run_id: f.req_str("run_id"),
            r#type: f.req_str("type"),
            payload: f.obj_or_empty("payload"),
            ts: f.opt_str("ts"),
            client_id: f.opt_str("client_id"),
        })?;
        if !COMMAND_TYPES.contains(&req.r#type.as_str()) {
            return Err(ApiError::bad_request(
                "type must be one of pause|resume|cancel|emit_event|update_schedule|compact_memory",
            ));
        }
        if req.run_id.trim().is_empty() {
            return Err(ApiError::bad_request(
                "Failed to append command: run_id is required",
            ));
        }
        Ok(req)
    }
}

/// The answer of `POST /commands`.
#[derive(Serialize, ToSchema)]
pub struct CommandAccepted {
    /// Whether this submit stored the command (false for a duplicate).
    pub accepted: bool,
    /// Whether a command of this id was already stored.
    pub duplicate: bool,
    /// The command's place in the inbox (the first submit's for a duplicate).
    pub seq: u64,
}

/// `GET /commands/{command_id}`.
#[derive(Serialize, ToSchema)]
pub struct CommandStatus {
    pub command: CommandRecord,
    /// Null until the command is applied (or rejected).
    pub outcome: Option<CommandOutcome>,
}
