//! Ledgers: a page after a cursor, pages of several runs, and the SSE stream's query.
//!
//! Records are stored pre-encoded (`crate::store::LedgerEntry`): the pages carry them as `RawValue`s, written out
//! verbatim, so answering a page never decodes or re-encodes a record.

use axum::http::HeaderMap;
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{BodyFields, json_object, parse_query};

/// Most runs one batch request may ask for (the seed has no cap).
pub const MAX_BATCH_RUNS: usize = 500;

/// The query of `GET /runs/{run_id}/ledger`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// The cursor of the last record the client has (0: from the start).
    #[param(minimum = 0, default = 0, required = false)]
    pub after: u64,
    /// Most records answered (a page also stops at 16 MiB of records, after at least one).
    #[param(minimum = 1, maximum = 2000, default = 200, required = false)]
    pub limit: u64,
}

impl LedgerQuery {
    /// Parses and validates the query (FastAPI's 422).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let (after, limit) = parse_query(raw, |q| {
            (
                q.int("after", 0, Some(0), None),
                q.int("limit", 200, Some(1), Some(2000)),
            )
        })?;
        // Both are within their (non-negative) bounds once `finish` passed.
        Ok(LedgerQuery {
            after: after.max(0) as u64,
            limit: limit.max(1) as u64,
        })
    }
}

/// A page of a run's ledger.
#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    /// The seed's `StepRecord`s after the cursor, in order, each as stored.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Box<RawValue>>,
    /// The cursor to ask the next page after (the cursor asked for plus the records answered).
    pub next_after: u64,
}

/// One run asked for by `POST /runs/ledger/batch`.
#[derive(ToSchema)]
pub struct LedgerBatchRun {
    pub run_id: String,
    /// The cursor of the last record the client has.
    #[schema(required = false, minimum = 0, default = 0)]
    pub after: u64,
}

/// The body of `POST /runs/ledger/batch`.
#[derive(ToSchema)]
pub struct LedgerBatch {
    /// The runs, each with its cursor (a run named twice is answered once, with its last cursor).
    #[schema(max_items = 500)]
    pub runs: Vec<LedgerBatchRun>,
    /// Most records answered per run (all the pages together also stop at 16 MiB of records).
    #[schema(required = false, minimum = 1, maximum = 2000, default = 200)]
    pub limit: u64,
}

impl LedgerBatch {
    /// Parses and validates the body (FastAPI's 422, with the issues of each run at its index).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let obj = json_object(headers, body)?;
        let mut f = BodyFields::new(&obj);
        let limit = f.opt_int("limit", Some(1), Some(2000)).unwrap_or(200);
        let mut runs = Vec::new();
        match obj.get("runs") {
            None => f.push(json!({"type": "missing", "loc": ["body", "runs"], "msg": "Field required", "input": Value::Object(obj.clone())})),
            Some(Value::Array(a)) => {
                for (i, r) in a.iter().enumerate() {
                    let rid = r.get("run_id").and_then(Value::as_str);
                    let after = r.get("after").map(|v| v.as_i64()).unwrap_or(Some(0));
                    match (rid, after) {
                        (Some(id), Some(n)) if n >= 0 => runs.push(LedgerBatchRun {
                            run_id: id.to_string(),
                            after: n as u64,
                        }),
                        (None, _) => f.push(json!({"type": "missing", "loc": ["body", "runs", i, "run_id"], "msg": "Field required", "input": r})),
                        (_, Some(n)) => f.push(json!({"type": "greater_than_equal", "loc": ["body", "runs", i, "after"], "msg": "Input should be greater than or equal to 0", "input": n, "ctx": {"ge": 0}})),
                        (_, None) => f.push(json!({"type": "int_type", "loc": ["body", "runs", i, "after"], "msg": "Input should be a valid integer", "input": r.get("after")})),
                    }
                }
                if a.len() > MAX_BATCH_RUNS {
                    f.push(json!({"type": "too_long", "loc": ["body", "runs"], "msg": format!("List should have at most {MAX_BATCH_RUNS} items after validation, not {}", a.len()), "input": null, "ctx": {"field_type": "List", "max_length": MAX_BATCH_RUNS, "actual_length": a.len()}}));
                }
            }
            Some(other) => f.push(json!({"type": "list_type", "loc": ["body", "runs"], "msg": "Input should be a valid list", "input": other})),
        }
        f.finish()?;
        // Within 1..=2000 once `finish` passed.
        Ok(LedgerBatch {
            runs,
            limit: limit.max(1) as u64,
        })
    }
}

/// The answer of `POST /runs/ledger/batch`.
#[derive(Serialize, ToSchema)]
pub struct LedgerBatchPages {
    /// Per run id, in the order asked: its page (an unknown run has an empty one).
    #[schema(value_type = std::collections::HashMap<String, LedgerPage>)]
    pub runs: RunPages,
}

/// Pages by run id, written as a JSON object in the order of the list (each id once).
pub struct RunPages(pub Vec<(String, LedgerPage)>);

impl Serialize for RunPages {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(id, page)| (id, page)))
    }
}

/// The query of `GET /runs/{run_id}/ledger/stream`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerStreamQuery {
    /// The cursor of the last record the client has (a valid `Last-Event-ID` header wins over it).
    #[param(minimum = 0, default = 0, required = false)]
    pub after: u64,
    /// Seconds without a record after which a keep-alive comment is sent (more than 0.1, at most 60).
    #[param(exclusive_minimum = 0.1, maximum = 60, default = 5.0, required = false)]
    pub heartbeat_s: f64,
}

impl LedgerStreamQuery {
    /// Parses and validates the query (FastAPI's 422).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        // Checked before `heartbeat_s` is used: a NaN, negative or huge value would make `Duration` panic.
        let (after, heartbeat_s) = parse_query(raw, |q| {
            (
                q.int("after", 0, Some(0), None),
                q.float("heartbeat_s", 5.0, 0.1, 60.0),
            )
        })?;
        Ok(LedgerStreamQuery {
            after: after.max(0) as u64,
            heartbeat_s,
        })
    }
}
