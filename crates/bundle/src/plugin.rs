//! `manifest.plugins`: the WebAssembly components a bundle ships next to its flows.
//!
//! The bundle layer only carries them: it checks the declarations and reads the bytes under the
//! archive limits. Compiling, digest verification and node registration belong to the component host,
//! so a digest mismatch is refused there with one uniform message.

use serde_json::{Map, Value, json};

use super::error::BundleError;
use super::manifest::{check_relpath, type_name};

/// Extension every plugin file must have.
pub const PLUGIN_EXTENSION: &str = ".wasm";

/// Value of `sha256` that asks the packer to fill in the real digest.
pub const SHA256_AUTO: &str = "auto";

/// Longest plugin name accepted.
pub const MAX_PLUGIN_NAME_LEN: usize = 64;

/// One entry of `manifest.plugins`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDecl {
    /// Bundle-relative path of the component (`plugins/x.wasm`).
    pub path: String,
    /// Lower-case hex sha256 the component must have (`""`/`"auto"` only in a source dir being packed).
    pub sha256: String,
    /// Explicit plugin name; [`PluginDecl::name`] falls back to the file stem.
    pub name: Option<String>,
    /// Capabilities granted to the plugin; always a JSON object (`{}` when absent).
    pub grants: Value,
}

impl PluginDecl {
    /// A declaration with no explicit name and no grants.
    pub fn new(path: impl Into<String>, sha256: impl Into<String>) -> Self {
        PluginDecl {
            path: path.into(),
            sha256: sha256.into(),
            name: None,
            grants: Value::Object(Map::new()),
        }
    }

    /// The plugin's name: the explicit one, else the file name without `.wasm`.
    pub fn name(&self) -> String {
        match self.name.as_deref() {
            Some(n) => n.to_string(),
            None => file_stem(&self.path).to_string(),
        }
    }

    /// True when `sha256` is a placeholder the packer replaces (`""` or `"auto"`).
    pub fn sha256_pending(&self) -> bool {
        let s = self.sha256.trim();
        s.is_empty() || s.eq_ignore_ascii_case(SHA256_AUTO)
    }

    /// The canonical JSON form (`name` omitted when not given explicitly).
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        out.insert("path".into(), json!(self.path));
        out.insert("sha256".into(), json!(self.sha256));
        if let Some(name) = &self.name {
            out.insert("name".into(), json!(name));
        }
        out.insert("grants".into(), self.grants.clone());
        Value::Object(out)
    }
}

/// The last path segment without the `.wasm` suffix.
fn file_stem(path: &str) -> &str {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    file.strip_suffix(PLUGIN_EXTENSION).unwrap_or(file)
}

fn manifest_err(msg: impl Into<String>) -> BundleError {
    BundleError::Manifest(msg.into())
}

/// Reads `manifest.plugins` (absent or `null` = none), checking JSON types only.
pub(crate) fn parse_plugins(raw: Option<&Value>) -> Result<Vec<PluginDecl>, BundleError> {
    let items = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(manifest_err(format!(
                "manifest.plugins must be a list (got {})",
                type_name(other)
            )));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_plugin(i, item))
        .collect()
}

fn parse_plugin(i: usize, raw: &Value) -> Result<PluginDecl, BundleError> {
    let field = format!("manifest.plugins[{i}]");
    let obj = raw.as_object().ok_or_else(|| {
        manifest_err(format!(
            "{field} must be an object (got {})",
            type_name(raw)
        ))
    })?;
    let text = |key: &str| -> Result<Option<String>, BundleError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(manifest_err(format!(
                "{field}.{key} must be a string (got {})",
                type_name(other)
            ))),
        }
    };
    let grants = match obj.get("grants") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(manifest_err(format!(
                "{field}.grants must be an object (got {})",
                type_name(other)
            )));
        }
    };
    Ok(PluginDecl {
        path: text("path")?.unwrap_or_default(),
        // Lower case so consumers can compare with a freshly computed hex digest directly.
        sha256: text("sha256")?.unwrap_or_default().to_ascii_lowercase(),
        name: text("name")?,
        grants,
    })
}

/// True when `name` matches `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_plugin_name(name: &str) -> bool {
    (1..=MAX_PLUGIN_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Applies the plugin rules; `pending_ok` admits `""`/`"auto"` digests (a source dir being packed).
pub(crate) fn validate_plugins(
    plugins: &[PluginDecl],
    pending_ok: bool,
) -> Result<(), BundleError> {
    let mut paths: Vec<String> = Vec::with_capacity(plugins.len());
    let mut names: Vec<String> = Vec::with_capacity(plugins.len());
    for (i, p) in plugins.iter().enumerate() {
        let field = format!("manifest.plugins[{i}]");
        if p.path.trim().is_empty() {
            return Err(manifest_err(format!(
                "{field}.path must be a non-empty string"
            )));
        }
        if let Err(why) = check_relpath(&p.path) {
            return Err(manifest_err(format!(
                "{field}.path: unsafe path \"{}\" ({why})",
                p.path
            )));
        }
        if !p.path.ends_with(PLUGIN_EXTENSION) {
            return Err(manifest_err(format!(
                "{field}.path \"{}\" must end in \"{PLUGIN_EXTENSION}\"",
                p.path
            )));
        }
        // Compare as the zip reader does: `/` and `\` both separate, empty segments ignored.
        let key = p
            .path
            .split(['/', '\\'])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        if let Some(j) = paths.iter().position(|k| *k == key) {
            return Err(manifest_err(format!(
                "{field}.path \"{}\" is already declared by manifest.plugins[{j}]",
                p.path
            )));
        }
        paths.push(key);

        let acceptable = is_sha256_hex(&p.sha256) || (pending_ok && p.sha256_pending());
        if !acceptable {
            return Err(manifest_err(format!(
                "{field}.sha256 must be 64 hex characters (got \"{}\")",
                p.sha256
            )));
        }
        if !p.grants.is_object() {
            return Err(manifest_err(format!(
                "{field}.grants must be an object (got {})",
                type_name(&p.grants)
            )));
        }
        let name = p.name();
        if !is_valid_plugin_name(&name) {
            let origin = if p.name.is_some() {
                "name"
            } else {
                "name (taken from the file name)"
            };
            return Err(manifest_err(format!(
                "{field}.{origin} \"{name}\" must match [A-Za-z0-9_.-]{{1,{MAX_PLUGIN_NAME_LEN}}}"
            )));
        }
        if let Some(j) = names.iter().position(|n| *n == name) {
            return Err(manifest_err(format!(
                "{field}: plugin name \"{name}\" is already used by manifest.plugins[{j}]"
            )));
        }
        names.push(name);
    }
    Ok(())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
