//! Run artifacts: files a run produces or consumes (audio from voice nodes, offloaded values), served by the
//! HTTP API and reachable by plugins through the WIT `artifacts` interface.
//!
//! Layout under `<data_dir>/artifacts/`: `blobs/<sha256>.bin` holds content once across runs;
//! `runs/<run key>/<artifact_id>.meta` holds the metadata of one run's artifact. The run key is a hash of the
//! run id, so no client string ever becomes part of a path.

mod fsio;
mod ids;
mod store;

pub use ids::{artifact_id, blob_id, is_artifact_id, is_blob_id};
pub use store::{
    ArtifactError, ArtifactMeta, ArtifactStore, BlobBucket, DEFAULT_MAX_BYTES, FILENAME_TAG,
    NewArtifact,
};

/// Environment variable overriding the per-artifact size cap (bytes).
pub const MAX_BYTES_ENV: &str = "ABSTRACTGATEWAY_MAX_ARTIFACT_BYTES";

/// The size cap from `ABSTRACTGATEWAY_MAX_ARTIFACT_BYTES`, else [`DEFAULT_MAX_BYTES`].
pub fn max_bytes_from_env() -> u64 {
    std::env::var(MAX_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_BYTES)
}

#[cfg(test)]
mod cluster_tests;
