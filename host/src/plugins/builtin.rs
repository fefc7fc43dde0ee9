//! The components shipped inside the binary (built from `plugins/` by `host/build.rs`).

use super::Grants;

/// `(name, component bytes, grants)` of every built-in plugin.
pub fn components() -> Vec<(&'static str, &'static [u8], Grants)> {
    Vec::new()
}
