//! Run artifacts: list and metadata (the content is the stored bytes).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::artifacts::ArtifactMeta;
use crate::error::ApiError;
use crate::extract::parse_query;

/// The query of `GET /runs/{run_id}/artifacts`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactListQuery {
    /// Most artifacts answered.
    #[param(minimum = 1, maximum = 2000, default = 200, required = false)]
    pub limit: i64,
}

impl ArtifactListQuery {
    /// Parses and validates the query (FastAPI's 422).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        parse_query(raw, |q| ArtifactListQuery {
            limit: q.int("limit", 200, Some(1), Some(2000)),
        })
    }
}

/// One artifact of `GET /runs/{run_id}/artifacts`.
#[derive(Serialize, ToSchema)]
pub struct ArtifactListItem {
    pub artifact_id: String,
    /// MIME type served with the content.
    pub content_type: String,
    pub size_bytes: u64,
    /// When the artifact was first stored.
    pub created_at: String,
    /// Free string labels (`kind`, `source`, `filename`…), sorted by name.
    pub tags: BTreeMap<String, String>,
}

impl From<ArtifactMeta> for ArtifactListItem {
    fn from(m: ArtifactMeta) -> Self {
        ArtifactListItem {
            artifact_id: m.artifact_id,
            content_type: m.content_type,
            size_bytes: m.size_bytes,
            created_at: m.created_at,
            tags: m.tags,
        }
    }
}

/// `GET /runs/{run_id}/artifacts`.
#[derive(Serialize, ToSchema)]
pub struct ArtifactList {
    /// Newest first.
    pub items: Vec<ArtifactListItem>,
}
