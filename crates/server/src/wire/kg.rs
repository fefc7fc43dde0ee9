//! The knowledge-graph memory query.

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::parse_body;

fn blank_to_none(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The body of `POST /kg/query`. The owners read follow `scope`: a run's, a session's, the global one, or
/// (`all`) the three of a run or a session; `owner_id` names one directly, `all_owners` reads every owner of
/// the scope.
#[derive(ToSchema)]
pub struct KgQuery {
    /// The run whose owner is read (`scope` `run`, or `session`/`all` without a `session_id`).
    pub run_id: Option<String>,
    /// The session whose owner is read.
    pub session_id: Option<String>,
    /// `run`, `session` (default), `global` or `all`.
    #[schema(required = false, default = "session")]
    pub scope: String,
    /// Read this owner (not with `scope` `all` or `all_owners`).
    pub owner_id: Option<String>,
    pub subject: Option<String>,
    pub predicate: Option<String>,
    pub object: Option<String>,
    /// Observed at or after (ISO 8601).
    pub since: Option<String>,
    /// Observed at or before (ISO 8601).
    pub until: Option<String>,
    /// Valid at this time (ISO 8601).
    pub active_at: Option<String>,
    /// Similarity search (needs an embedder, which this gateway has not: a non-blank text only answers a warning).
    pub query_text: Option<String>,
    /// By observation time: `desc` (default) or `asc`.
    #[schema(required = false, default = "desc")]
    pub order: String,
    /// Read every owner of the scope.
    #[schema(required = false, default = false)]
    pub all_owners: bool,
    /// Most assertions answered (0 or -1: no limit).
    #[schema(required = false, minimum = -1, maximum = 10000, default = 500)]
    pub limit: i64,
}

impl KgQuery {
    /// Parses and validates the body (FastAPI's 422 for a wrong type; 400 for an unknown scope or a
    /// combination the seed refuses). Blank ids are absent; the scope is trimmed and lowercased.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let req = parse_body(headers, body, |f| KgQuery {
            run_id: blank_to_none(f.opt_str("run_id")),
            session_id: blank_to_none(f.opt_str("session_id")),
            scope: f
                .opt_str("scope")
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "session".into()),
            owner_id: blank_to_none(f.opt_str("owner_id")),
            subject: f.opt_str("subject"),
            predicate: f.opt_str("predicate"),
            object: f.opt_str("object"),
            since: f.opt_str("since"),
            until: f.opt_str("until"),
            active_at: f.opt_str("active_at"),
            query_text: f.opt_str("query_text"),
            order: f.opt_str("order").unwrap_or_else(|| "desc".into()),
            all_owners: f.bool_or("all_owners", false),
            limit: f.opt_int("limit", Some(-1), Some(10_000)).unwrap_or(500),
        })?;
        if !["run", "session", "global", "all"].contains(&req.scope.as_str()) {
            return Err(ApiError::bad_request(
                "scope must be one of run|session|global|all",
            ));
        }
        if req.scope == "all" && req.owner_id.is_some() {
            return Err(ApiError::bad_request(
                "owner_id is not supported when scope=all",
            ));
        }
        if req.owner_id.is_some() && req.all_owners {
            return Err(ApiError::bad_request(
                "all_owners cannot be combined with owner_id",
            ));
        }
        Ok(req)
    }
}

/// One assertion: a triple and what is known of it. Optional parts are absent when unknown.
#[derive(Serialize, ToSchema)]
pub struct KgAssertion {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion_id: Option<String>,
    pub subject: String,
    pub predicate: String,
    pub object: String,
    /// `run`, `session` or `global`.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// ISO 8601.
    pub observed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Where it came from (run, span, writer…).
    #[schema(value_type = Object)]
    pub provenance: Map<String, Value>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

impl From<abstractgateway_kg::Assertion> for KgAssertion {
    fn from(a: abstractgateway_kg::Assertion) -> Self {
        // Every field named: a field added to the assertion must be added here too.
        let abstractgateway_kg::Assertion {
            assertion_id,
            subject,
            predicate,
            object,
            scope,
            owner_id,
            observed_at,
            valid_from,
            valid_until,
            confidence,
            provenance,
            attributes,
        } = a;
        KgAssertion {
            assertion_id,
            subject,
            predicate,
            object,
            scope,
            owner_id,
            observed_at,
            valid_from,
            valid_until,
            confidence,
            provenance,
            attributes,
        }
    }
}

/// The answer of `POST /kg/query`.
#[derive(Serialize, ToSchema)]
pub struct KgQueryResult {
    /// Always true.
    pub ok: bool,
    /// The scope asked for (trimmed, lowercased).
    pub scope: String,
    /// The owner read (null with scope `all` or `all_owners`).
    pub owner_id: Option<String>,
    /// How many items.
    pub count: usize,
    /// The assertions, by observation time (`order`).
    pub items: Vec<KgAssertion>,
    /// What could not be read, or was left out (null when none).
    pub warnings: Option<Vec<String>>,
}
