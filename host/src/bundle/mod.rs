//! `.flow` bundles: manifest, safe reading (zip or directory), namespacing, the loaded set,
//! install rules, packing and the author CLI helpers. Compiling flows lives elsewhere.

pub mod error;
pub mod manifest;
pub mod namespace;
pub mod version;

pub use error::{BundleError, ResolveError, ResolveErrorKind};
pub use manifest::{
    BUNDLE_FORMAT_VERSION, DEFAULT_BUNDLE_VERSION, Entrypoint, Manifest, PathMap, check_relpath,
    is_safe_relpath,
};
pub use namespace::{
    event_listener_workflow_id, namespace_flow, namespaced_id, node_type, normalize_node_type,
    react_workflow_id, sanitize_id,
};
pub use version::{pick_latest, split_bundle_ref};
