//! `.flow` bundles: manifest, safe reading (zip or directory), namespacing, the loaded set,
//! install rules, packing and the author CLI helpers. Compiling flows lives elsewhere.

use abstractgateway_model::time;

pub mod archive;
pub mod cli;
pub mod error;
pub mod install;
pub mod manifest;
pub mod model;
pub mod namespace;
pub mod pack;
pub mod plugin;
pub mod registry;
pub mod version;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod plugin_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use archive::{Limits, MANIFEST_NAME, read_bundle, read_bundle_bytes, sha256_hex};
pub use cli::{Report, inspect, inspect_bundle, verify, verify_bundle};
pub use error::{BundleError, ResolveError, ResolveErrorKind};
pub use install::{
    install_bytes, install_file_name, sanitize_bundle_id, sanitize_bundle_version,
    validate_install_ids,
};
pub use manifest::{
    BUNDLE_FORMAT_VERSION, DEFAULT_BUNDLE_VERSION, Entrypoint, Manifest, PathMap, check_relpath,
    is_safe_relpath,
};
pub use model::{Bundle, BundleSource, EntryInput, entry_inputs_of, node_index_of};
pub use namespace::{
    SUBFLOW_ID_KEYS, event_listener_workflow_id, namespace_flow, namespaced_id, node_type,
    normalize_node_type, react_workflow_id, sanitize_id, subflow_target,
};
pub use pack::{PackOptions, pack, pack_dir, write_bundle_zip};
pub use plugin::{
    MAX_PLUGIN_NAME_LEN, PLUGIN_EXTENSION, PluginDecl, SHA256_AUTO, is_valid_plugin_name,
};
pub use registry::{BundleSet, LoadProblem};
pub use version::{pick_latest, split_bundle_ref};
