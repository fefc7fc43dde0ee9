//! Runs: start, schedule, summary, list, input data, history bundle, stream token.

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{BodyFields, json_object, parse_body, parse_query};
use crate::run::RunStatus;

/// The body of `POST /runs/start`. Bundle mode names a bundle entrypoint (each part defaults as the seed
/// resolves it); VisualFlow mode names a flow file by `flow_id`.
#[derive(ToSchema)]
pub struct StartRun {
    /// The bundle (optionally `id@version`); default: the only bundle, or the configured default one.
    pub bundle_id: Option<String>,
    /// The bundle's version; default: the latest.
    pub bundle_version: Option<String>,
    /// The entrypoint's flow; default: the bundle's default entrypoint.
    pub flow_id: Option<String>,
    /// Values of the entrypoint's start pins.
    #[schema(required = false, value_type = Object)]
    pub input_data: Map<String, Value>,
    /// The session the run belongs to (memory, events of scope `session`).
    pub session_id: Option<String>,
}

impl StartRun {
    /// Parses and validates the body (FastAPI's 422 for a wrong type).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| StartRun {
            bundle_id: f.opt_str("bundle_id"),
            bundle_version: f.opt_str("bundle_version"),
            flow_id: f.opt_str("flow_id"),
            input_data: f.obj_or_empty("input_data"),
            session_id: f
                .opt_str("session_id")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }
}

/// The body of `POST /runs/schedule`: a wrapper run starts the target at `start_at` and repeats it.
#[derive(ToSchema)]
pub struct ScheduleRun {
    pub bundle_id: String,
    pub bundle_version: Option<String>,
    pub flow_id: String,
    /// Values of the target's start pins.
    #[schema(required = false, value_type = Object)]
    pub input_data: Map<String, Value>,
    /// How many times the target runs (≥ 1); default: once, or forever with an `interval`.
    pub repeat_count: Option<i64>,
    /// Between two starts: `30s`, `5m`, `2h`, `1d` or seconds.
    pub interval: Option<String>,
    /// ISO 8601 time after which no new start happens.
    pub repeat_until: Option<String>,
    /// ISO 8601 time or `now` (default).
    pub start_at: Option<String>,
    pub session_id: Option<String>,
    /// Whether each start shares the schedule's session context (default true).
    #[schema(required = false)]
    pub share_context: bool,
}

impl ScheduleRun {
    /// Parses and validates the body (FastAPI's 422 for a missing or wrong field).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let obj = json_object(headers, body)?;
        let mut f = BodyFields::new(&obj);
        let req = ScheduleRun {
            bundle_id: f.req_str("bundle_id"),
            bundle_version: f.opt_str("bundle_version"),
            flow_id: f.req_str("flow_id"),
            input_data: f.obj_or_empty("input_data"),
            repeat_count: f.opt_int("repeat_count", None, None),
            interval: f.opt_str("interval"),
            repeat_until: f.opt_str("repeat_until"),
            start_at: f.opt_str("start_at"),
            session_id: f.opt_str("session_id"),
            // The seed reads it loosely: anything but a boolean is the default.
            share_context: obj
                .get("share_context")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        f.finish()?;
        Ok(req)
    }
}

/// A run's status.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl From<RunStatus> for Status {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Running => Status::Running,
            RunStatus::Waiting => Status::Waiting,
            RunStatus::Completed => Status::Completed,
            RunStatus::Failed => Status::Failed,
            RunStatus::Cancelled => Status::Cancelled,
        }
    }
}

/// What a waiting run waits for.
#[derive(Serialize, ToSchema)]
pub struct Waiting {
    /// `event`, `until`, `user`, `job` or `subworkflow`.
    pub reason: String,
    /// The key a `resume` command or an event must name.
    pub wait_key: Option<String>,
    /// ISO 8601 time a timed wait ends.
    pub until: Option<String>,
    /// The question of an `ask_user` or a tool approval.
    pub prompt: Option<String>,
    /// The answers offered, if any.
    pub choices: Option<Vec<Value>>,
    /// Whether an answer outside `choices` is accepted.
    pub allow_free_text: bool,
    /// What else the wait states (a tool approval's calls…).
    pub details: Option<Value>,
}

/// The token budget of a run (`limits.tokens`).
#[derive(Serialize, ToSchema)]
pub struct TokenLimits {
    pub estimated_used: Value,
    pub max_tokens: Value,
    pub max_input_tokens: Value,
    /// `estimated_used` in percent of `max_tokens`.
    pub pct: f64,
    pub warn_tokens_pct: Value,
}

/// A run's limits.
#[derive(Serialize, ToSchema)]
pub struct Limits {
    pub tokens: TokenLimits,
}

/// The seed's `RunSummary`, plus `output` (a deliberate addition).
#[derive(Serialize, ToSchema)]
pub struct RunSummary {
    pub run_id: String,
    pub workflow_id: String,
    pub status: Status,
    pub current_node: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub actor_id: Option<String>,
    pub session_id: Option<String>,
    pub parent_run_id: Option<String>,
    pub error: Option<String>,
    pub paused: bool,
    pub pause_reason: Option<String>,
    pub paused_at: Option<String>,
    pub resumed_at: Option<String>,
    pub waiting: Option<Waiting>,
    /// Whether this is a schedule's wrapper run (`scheduled:` workflow).
    pub is_scheduled: bool,
    /// A schedule's spec and progress.
    pub schedule: Option<Value>,
    pub limits: Limits,
    /// What the run returned (completed runs).
    pub output: Option<Value>,
}

/// One run of `GET /runs`: its summary, with the ledger's length and (`include_metrics`) step counts.
#[derive(Serialize, ToSchema)]
pub struct RunListItem {
    #[serde(flatten)]
    pub summary: RunSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_len: Option<u64>,
    /// Completed steps (null when the ledger is past what one listing reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_total: Option<Option<u64>>,
}

/// `GET /runs`.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    /// Most recent first.
    pub items: Vec<RunListItem>,
}

/// The query of `GET /runs`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Most runs answered.
    #[param(minimum = 1, maximum = 500, default = 50, required = false)]
    pub limit: i64,
    /// `running`, `waiting`, `completed`, `failed` or `cancelled`.
    pub status: Option<String>,
    /// Only this workflow's runs (internal `__` workflows are listed only when named).
    pub workflow_id: Option<String>,
    /// Only this session's runs.
    pub session_id: Option<String>,
    /// Only runs without a parent.
    #[param(default = false, required = false)]
    pub root_only: bool,
    /// Add each run's `ledger_len`.
    #[param(default = true, required = false)]
    pub include_ledger_len: bool,
    /// Add step counts (reads ledgers; bounded per listing).
    #[param(default = false, required = false)]
    pub include_metrics: bool,
}

impl RunListQuery {
    /// Parses and validates the query (FastAPI's 422; 400 for an unknown status, as the seed).
    pub fn parse(raw: Option<&str>) -> Result<(Self, Option<RunStatus>), ApiError> {
        let query = parse_query(raw, |q| RunListQuery {
            limit: q.int("limit", 50, Some(1), Some(500)),
            status: q.string("status"),
            workflow_id: q.string("workflow_id").filter(|s| !s.is_empty()),
            session_id: q.string("session_id").filter(|s| !s.is_empty()),
            root_only: q.bool("root_only", false),
            include_ledger_len: q.bool("include_ledger_len", true),
            include_metrics: q.bool("include_metrics", false),
        })?;
        let status = match query
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => Some(RunStatus::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid status (expected: running|waiting|completed|failed|cancelled)",
                )
            })?),
            None => None,
        };
        Ok((query, status))
    }
}

/// `GET /runs/{run_id}/input_data`: the values the run started with.
#[derive(Serialize, ToSchema)]
pub struct InputData {
    pub run_id: String,
    pub workflow_id: String,
    pub bundle_id: String,
    /// Present when the workflow id names a version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    pub flow_id: String,
    /// The entrypoint's start pins.
    pub pin_ids: Vec<String>,
    /// Their values (every public variable when the entrypoint declares no pins).
    #[schema(value_type = Object)]
    pub input_data: Map<String, Value>,
}

/// The query of `GET /runs/{run_id}/history_bundle`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Add the ledgers of child runs.
    #[param(default = true, required = false)]
    pub include_subruns: bool,
    /// Add the session (`{session_id, turns}`).
    #[param(default = false, required = false)]
    pub include_session: bool,
    /// Accepted for the seed's clients.
    #[param(minimum = 1, maximum = 500, default = 200, required = false)]
    pub session_turn_limit: i64,
    /// Records per ledger in `tail` mode (0: every record).
    #[param(minimum = 0, maximum = 20000, default = 2000, required = false)]
    pub ledger_max_items: i64,
    /// `tail` (the last records) or `full`.
    #[param(default = "tail", required = false)]
    pub ledger_mode: String,
}

impl HistoryQuery {
    /// Parses and validates the query (FastAPI's 422; 400 for an unknown mode).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let query = parse_query(raw, |q| HistoryQuery {
            include_subruns: q.bool("include_subruns", true),
            include_session: q.bool("include_session", false),
            session_turn_limit: q.int("session_turn_limit", 200, Some(1), Some(500)),
            ledger_max_items: q.int("ledger_max_items", 2000, Some(0), Some(20000)),
            ledger_mode: q
                .get("ledger_mode")
                .unwrap_or("tail")
                .trim()
                .to_ascii_lowercase(),
        })?;
        if query.ledger_mode != "tail" && query.ledger_mode != "full" {
            return Err(ApiError::bad_request(
                "ledger_mode must be 'tail' or 'full'",
            ));
        }
        Ok(query)
    }
}

/// `RunHistoryBundle` v1: a run tree's ledgers and timeline, for export.
#[derive(Serialize, ToSchema)]
pub struct HistoryBundle {
    /// Always 1.
    pub version: u32,
    pub generated_at: String,
    pub root_run_id: String,
    pub run: HistoryRun,
    /// Always null here.
    pub workflow_snapshot: Option<Value>,
    #[schema(value_type = Object)]
    pub input_data: Map<String, Value>,
    /// Per run id: the root first, then its descendants.
    #[schema(value_type = std::collections::HashMap<String, HistoryLedger>)]
    pub ledgers: Map<String, Value>,
    pub timeline: Vec<TimelineItem>,
    pub session: Option<HistorySession>,
}

/// The root run of a history bundle.
#[derive(Serialize, ToSchema)]
pub struct HistoryRun {
    pub run_id: String,
    pub workflow_id: String,
    pub status: Status,
    /// Empty when none.
    pub current_node: String,
    pub created_at: String,
    pub updated_at: String,
    pub actor_id: Option<String>,
    pub session_id: Option<String>,
    pub parent_run_id: Option<String>,
    pub error: Option<String>,
    /// The whole wait state, when waiting.
    pub waiting: Option<Value>,
}

/// One run's ledger in a history bundle.
#[derive(Serialize, ToSchema)]
pub struct HistoryLedger {
    pub run_id: String,
    /// Records the ledger holds.
    pub total: u64,
    pub cursor_start: u64,
    pub cursor_end: u64,
    pub items: Vec<HistoryItem>,
    /// Always empty here.
    pub artifacts: Vec<Value>,
    /// Present (true) when the bundle's caps stopped this ledger early.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One ledger record with its cursor.
#[derive(Serialize, ToSchema)]
pub struct HistoryItem {
    pub cursor: u64,
    /// The seed's `StepRecord`.
    pub record: Value,
}

/// One step of a history bundle's timeline.
#[derive(Serialize, ToSchema)]
pub struct TimelineItem {
    pub run_id: String,
    pub cursor: u64,
    pub node_id: Option<Value>,
    pub status: Option<Value>,
    pub effect_type: Value,
    pub started_at: Option<Value>,
    pub ended_at: Option<Value>,
    /// Milliseconds, 2 decimals.
    pub duration_ms: Option<f64>,
}

/// The session of a history bundle.
#[derive(Serialize, ToSchema)]
pub struct HistorySession {
    pub session_id: String,
    pub turns: Vec<Value>,
}

/// `POST /runs/{run_id}/stream_token`: a short-lived token for `?stream_token=` on this run's ledger stream.
#[derive(Serialize, ToSchema)]
pub struct StreamToken {
    pub token: String,
    /// ISO 8601.
    pub expires_at: String,
}
