//! Files produced or consumed by a run, downloadable through the HTTP API.

use crate::bindings::node::abstractgateway::plugin::artifacts as wit;
use crate::error::Error;

/// What the host knows about one artifact.
pub use wit::ArtifactInfo;

/// Stores `data` as a new artifact of the run.
pub fn put(content_type: &str, data: &[u8], name: Option<&str>) -> Result<ArtifactInfo, Error> {
    Ok(wit::put(content_type, data, name)?)
}

/// The bytes of artifact `id`.
pub fn get(id: &str) -> Result<Vec<u8>, Error> {
    Ok(wit::get(id)?)
}

/// The metadata of artifact `id`.
pub fn info(id: &str) -> Result<ArtifactInfo, Error> {
    Ok(wit::info(id)?)
}
