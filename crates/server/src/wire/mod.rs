//! The typed bodies of the HTTP API: the requests and query strings handlers parse, and the answers they send.
//!
//! `/openapi.json` is derived from these very types (see `crate::openapi`), and a test validates real answers
//! against it. Field order is the seed's key order: clients and the golden files see it. Requests are parsed by
//! the validators of `crate::extract`, which answer FastAPI's 422 shapes, not by serde: each request type has a
//! `parse` beside its fields.

pub mod artifacts;
pub mod attachments;
pub mod bundles;
pub mod commands;
pub mod discovery;
pub mod kg;
pub mod ledger;
pub mod misc;
pub mod observer;
pub mod runs;
pub mod voice;

use serde::Serialize;
use utoipa::ToSchema;

/// `{"run_id": ...}`: the answer of a start or a schedule.
#[derive(Serialize, ToSchema)]
pub struct RunId {
    pub run_id: String,
}
