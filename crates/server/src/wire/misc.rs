//! Health, readiness and the audit tail.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::parse_query;

/// `GET /api/health`: the seed's body, plus `warnings` when some bundle did not load.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy`.
    pub status: &'static str,
    /// Always `abstractgateway`.
    pub service: &'static str,
    /// Why some bundle or flow did not load.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `GET /api/ready`.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    /// Always `abstractgateway`.
    pub service: &'static str,
    /// What the node sees: one machine `{store: "embedded", runner}`; a cluster node its connection, the
    /// journal sequence its replica applied and the shard count.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub detail: Map<String, Value>,
    /// The shards this node's runner steps now (one machine: `[0]` with a runner).
    pub shards: Vec<u32>,
}

/// The query of `GET /audit/tail`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditTailQuery {
    /// Most bytes answered, from the end of the log (cut at a line start).
    #[param(minimum = 1024, maximum = 400000, default = 80000, required = false)]
    pub max_bytes: i64,
}

impl AuditTailQuery {
    /// Parses and validates the query (FastAPI's 422).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        parse_query(raw, |q| AuditTailQuery {
            max_bytes: q.int("max_bytes", 80_000, Some(1024), Some(400_000)),
        })
    }
}

/// The end of the audit log (JSON lines).
#[derive(Serialize, ToSchema)]
pub struct AuditTail {
    /// Always true.
    pub ok: bool,
    pub bytes: usize,
    /// Whether the log holds more than `content`.
    pub truncated: bool,
    /// One JSON object per line.
    pub content: String,
}
