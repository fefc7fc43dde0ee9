//! The components shipped inside the binary, built from `plugins/builtin` and `plugins/nodes` by `host/build.rs`.

use super::Grants;
use super::grants::GrantsError;

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// `(name, component bytes, grants)` of every built-in plugin; a grants file that does not parse is reported.
pub fn components() -> Vec<(&'static str, &'static [u8], Result<Grants, GrantsError>)> {
    COMPONENTS
        .iter()
        .map(|(name, bytes, grants)| {
            let g = serde_json::from_str(grants)
                .map_err(|e| GrantsError::Invalid(e.to_string()))
                .and_then(|v| Grants::parse(&v));
            (*name, *bytes, g)
        })
        .collect()
}
