//! Images; they travel as run artifacts. Node plugins only, with the `image` grant.

use crate::bindings::node::abstractgateway::plugin::image as wit;
use crate::error::Error;

pub use wit::{EditRequest, Generation, Picture};

/// Text to image; the image becomes an artifact of the run.
pub fn generate(req: &Generation) -> Result<Picture, Error> {
    Ok(wit::generate(req)?)
}

/// An edited copy of an image artifact of the run, as a new artifact.
pub fn edit(req: &EditRequest) -> Result<Picture, Error> {
    Ok(wit::edit(req)?)
}
