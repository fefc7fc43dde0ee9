//! `manifest.json` (WorkflowBundleManifest v1): lenient aliases on read, canonical names on write, strict rules.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::error::BundleError;
use super::plugin::{PluginDecl, parse_plugins, validate_plugins};

/// The only supported `bundle_format_version`.
pub const BUNDLE_FORMAT_VERSION: &str = "1";

/// Version assumed when the manifest gives none.
pub const DEFAULT_BUNDLE_VERSION: &str = "0.0.0";

/// A `{key: relpath}` map (`flows`, `artifacts`, `assets`) that keeps the manifest's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathMap(Vec<(String, String)>);

impl PathMap {
    /// An empty map.
    pub fn new() -> Self {
        PathMap(Vec::new())
    }

    /// The relpath stored under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, keeping its position if it already exists.
    pub fn insert(&mut self, key: impl Into<String>, path: impl Into<String>) {
        let (key, path) = (key.into(), path.into());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = path,
            None => self.0.push((key, path)),
        }
    }

    /// `(key, relpath)` pairs in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Keys in manifest order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn to_value(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for PathMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = PathMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

/// An entrypoint workflow the bundle exposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entrypoint {
    /// Key into `manifest.flows`.
    pub flow_id: String,
    /// Display name (written as `null` when absent, like the reference).
    pub name: Option<String>,
    /// Free text.
    pub description: String,
    /// Interface ids such as `abstractcode.agent.v1`.
    pub interfaces: Vec<String>,
}

/// The parsed `manifest.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Must be `"1"`.
    pub bundle_format_version: String,
    /// Bundle id (non-empty).
    pub bundle_id: String,
    /// Bundle version (non-empty; `0.0.0` when absent).
    pub bundle_version: String,
    /// ISO time; informational and the tie-break for "latest".
    pub created_at: String,
    /// Non-empty, unique by `flow_id`.
    pub entrypoints: Vec<Entrypoint>,
    /// Must name one of the entrypoints when set.
    pub default_entrypoint: Option<String>,
    /// `flow_id -> relpath` of every VisualFlow the host compiles.
    pub flows: PathMap,
    /// Legacy pre-compiled artifacts; ignored by hosts.
    pub artifacts: PathMap,
    /// Optional named assets.
    pub assets: PathMap,
    /// Free-form publisher metadata.
    pub metadata: Map<String, Value>,
    /// WebAssembly components shipped with the flows (empty when the key is absent).
    pub plugins: Vec<PluginDecl>,
}

impl Manifest {
    /// Parses and validates `manifest.json` bytes.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Manifest, BundleError> {
        Manifest::from_json_bytes_with(bytes, false)
    }

    /// [`Manifest::from_json_bytes`] with [`Manifest::validate_with`]'s leniency for pending digests.
    pub(crate) fn from_json_bytes_with(
        bytes: &[u8],
        pending_digests_ok: bool,
    ) -> Result<Manifest, BundleError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| BundleError::Manifest(format!("manifest.json is not valid JSON: {e}")))?;
        let manifest = Manifest::from_value(&value)?;
        manifest.validate_with(pending_digests_ok)?;
        Ok(manifest)
    }

    /// Reads the manifest fields (accepting every alias) without applying the validation rules.
    pub fn from_value(raw: &Value) -> Result<Manifest, BundleError> {
        let obj = raw
            .as_object()
            .ok_or_else(|| manifest_err("manifest.json must be a JSON object"))?;

        let bundle_format_version = scalar(
            obj,
            &["bundle_format_version", "bundleFormatVersion"],
            "manifest.bundle_format_version",
        )?
        .unwrap_or_default()
        .trim()
        .to_string();
        let bundle_id = scalar(obj, &["bundle_id", "bundleId"], "manifest.bundle_id")?
            .unwrap_or_default()
            .trim()
            .to_string();
        let bundle_version = scalar(
            obj,
            &["bundle_version", "bundleVersion"],
            "manifest.bundle_version",
        )?
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_BUNDLE_VERSION.to_string());
        let created_at =
            scalar(obj, &["created_at", "createdAt"], "manifest.created_at")?.unwrap_or_default();

        let default_entrypoint = match first_truthy(
            obj,
            &[
                "default_entrypoint",
                "defaultEntrypoint",
                "default_entrypoint_flow_id",
                "defaultEntrypointFlowId",
            ],
        ) {
            None => None,
            Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(other) => {
                return Err(manifest_err(format!(
                    "manifest.default_entrypoint must be a string (got {other})"
                )));
            }
        };

        let entrypoints = match obj.get("entrypoints") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, ep)| parse_entrypoint(i, ep))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(manifest_err(format!(
                    "manifest.entrypoints must be a list (got {})",
                    type_name(other)
                )));
            }
        };

        let metadata = match obj.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(manifest_err(format!(
                    "manifest.metadata must be an object (got {})",
                    type_name(other)
                )));
            }
        };

        Ok(Manifest {
            bundle_format_version,
            bundle_id,
            bundle_version,
            created_at,
            entrypoints,
            default_entrypoint,
            flows: path_map(obj, "flows")?,
            artifacts: path_map(obj, "artifacts")?,
            assets: path_map(obj, "assets")?,
            metadata,
            plugins: parse_plugins(obj.get("plugins"))?,
        })
    }

    /// Applies every §1.2 rule and the plugin rules; the error names the offending field.
    pub fn validate(&self) -> Result<(), BundleError> {
        self.validate_with(false)
    }

    /// [`Manifest::validate`], but a plugin `sha256` may still be `""`/`"auto"` (a source dir being packed).
    pub(crate) fn validate_with(&self, pending_digests_ok: bool) -> Result<(), BundleError> {
        if self.bundle_format_version.trim() != BUNDLE_FORMAT_VERSION {
            return Err(manifest_err(format!(
                "manifest.bundle_format_version must be \"{BUNDLE_FORMAT_VERSION}\" (got \"{}\")",
                self.bundle_format_version
            )));
        }
        if self.bundle_id.trim().is_empty() {
            return Err(manifest_err(
                "manifest.bundle_id must be a non-empty string",
            ));
        }
        if self.bundle_version.trim().is_empty() {
            return Err(manifest_err(
                "manifest.bundle_version must be a non-empty string",
            ));
        }
        if self.entrypoints.is_empty() {
            return Err(manifest_err(
                "manifest.entrypoints must be a non-empty list",
            ));
        }
        let mut seen: Vec<&str> = Vec::with_capacity(self.entrypoints.len());
        for (i, ep) in self.entrypoints.iter().enumerate() {
            let fid = ep.flow_id.trim();
            if fid.is_empty() {
                return Err(manifest_err(format!(
                    "manifest.entrypoints[{i}].flow_id must be a non-empty string"
                )));
            }
            if seen.contains(&fid) {
                return Err(manifest_err(format!(
                    "manifest.entrypoints[{i}].flow_id \"{fid}\" is duplicated"
                )));
            }
            seen.push(fid);
        }
        if let Some(de) = self.default_entrypoint.as_deref().map(str::trim)
            && !de.is_empty()
            && !seen.contains(&de)
        {
            return Err(manifest_err(format!(
                "manifest.default_entrypoint \"{de}\" must match an entrypoint flow_id (have: {})",
                seen.join(", ")
            )));
        }
        for (name, map) in [
            ("flows", &self.flows),
            ("artifacts", &self.artifacts),
            ("assets", &self.assets),
        ] {
            for (key, path) in map.iter() {
                if key.trim().is_empty() {
                    return Err(manifest_err(format!("manifest.{name} has an empty key")));
                }
                if let Err(why) = check_relpath(path) {
                    return Err(manifest_err(format!(
                        "manifest.{name}[\"{key}\"]: unsafe path \"{path}\" ({why})"
                    )));
                }
            }
        }
        validate_plugins(&self.plugins, pending_digests_ok)
    }

    /// `bundle_id@bundle_version`.
    pub fn bundle_ref(&self) -> String {
        format!("{}@{}", self.bundle_id, self.bundle_version)
    }

    /// The entrypoint declared for `flow_id`.
    pub fn entrypoint(&self, flow_id: &str) -> Option<&Entrypoint> {
        self.entrypoints.iter().find(|ep| ep.flow_id == flow_id)
    }

    /// The declared plugin whose [`PluginDecl::name`] is `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginDecl> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    /// The canonical JSON form (snake_case keys; `default_entrypoint` and `plugins` omitted when unset).
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "bundle_format_version".into(),
            json!(self.bundle_format_version),
        );
        out.insert("bundle_id".into(), json!(self.bundle_id));
        out.insert("bundle_version".into(), json!(self.bundle_version));
        out.insert("created_at".into(), json!(self.created_at));
        out.insert(
            "entrypoints".into(),
            Value::Array(
                self.entrypoints
                    .iter()
                    .map(|ep| {
                        json!({
                            "flow_id": ep.flow_id,
                            "name": ep.name,
                            "description": ep.description,
                            "interfaces": ep.interfaces,
                        })
                    })
                    .collect(),
            ),
        );
        if let Some(de) = self.default_entrypoint.as_deref().filter(|s| !s.is_empty()) {
            out.insert("default_entrypoint".into(), json!(de));
        }
        out.insert("flows".into(), self.flows.to_value());
        out.insert("artifacts".into(), self.artifacts.to_value());
        out.insert("assets".into(), self.assets.to_value());
        out.insert("metadata".into(), Value::Object(self.metadata.clone()));
        if !self.plugins.is_empty() {
            out.insert(
                "plugins".into(),
                Value::Array(self.plugins.iter().map(PluginDecl::to_value).collect()),
            );
        }
        Value::Object(out)
    }

    /// Pretty JSON as the reference packer writes it (2-space indent, UTF-8 kept).
    pub fn to_pretty_json(&self) -> String {
        // Serialising a Value built from strings and maps cannot fail.
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Manifest {
    /// Accepts every alias; does not apply [`Manifest::validate`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Manifest::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// Why a bundle-relative path is unsafe, or `Ok` if it is a plain relative path.
///
/// Rules (shared by manifest paths and zip entry names): not empty, no leading `/` or `\`,
/// no `:` in the first segment (drive prefixes such as `C:`), no `.` or `..` segment
/// (`/` and `\` both separate segments), no NUL.
pub fn check_relpath(path: &str) -> Result<(), &'static str> {
    let s = path.trim();
    if s.is_empty() {
        return Err("empty path");
    }
    if s.starts_with('/') || s.starts_with('\\') {
        return Err("absolute path");
    }
    if s.split('/').next().is_some_and(|first| first.contains(':')) {
        return Err("drive or scheme prefix");
    }
    if s.contains('\0') {
        return Err("NUL byte");
    }
    if s.split(['/', '\\']).any(|seg| seg == "." || seg == "..") {
        return Err("\".\" or \"..\" segment");
    }
    Ok(())
}

/// True when [`check_relpath`] accepts `path`.
pub fn is_safe_relpath(path: &str) -> bool {
    check_relpath(path).is_ok()
}

fn manifest_err(msg: impl Into<String>) -> BundleError {
    BundleError::Manifest(msg.into())
}

fn first_truthy<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|k| obj.get(*k))
        .find(|v| pycompat::repr::py_truthy(v))
}

/// A string field that may also be written as a number (the reference stringifies it).
fn scalar(
    obj: &Map<String, Value>,
    keys: &[&str],
    field: &str,
) -> Result<Option<String>, BundleError> {
    match first_truthy(obj, keys) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(manifest_err(format!(
            "{field} must be a string (got {})",
            type_name(other)
        ))),
    }
}

fn parse_entrypoint(i: usize, raw: &Value) -> Result<Entrypoint, BundleError> {
    let obj = raw.as_object().ok_or_else(|| {
        manifest_err(format!(
            "manifest.entrypoints[{i}] must be an object (got {})",
            type_name(raw)
        ))
    })?;
    let field = format!("manifest.entrypoints[{i}]");
    let flow_id = scalar(obj, &["flow_id", "flowId"], &format!("{field}.flow_id"))?
        .unwrap_or_default()
        .trim()
        .to_string();
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(other) => {
            return Err(manifest_err(format!(
                "{field}.name must be a string (got {})",
                type_name(other)
            )));
        }
    };
    let description = match obj.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(manifest_err(format!(
                "{field}.description must be a string (got {})",
                type_name(other)
            )));
        }
    };
    let interfaces = match obj.get("interfaces") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (j, item) in items.iter().enumerate() {
                let s = item.as_str().ok_or_else(|| {
                    manifest_err(format!(
                        "{field}.interfaces[{j}] must be a string (got {})",
                        type_name(item)
                    ))
                })?;
                if !s.trim().is_empty() {
                    out.push(s.trim().to_string());
                }
            }
            out
        }
        Some(other) => {
            return Err(manifest_err(format!(
                "{field}.interfaces must be a list of strings (got {})",
                type_name(other)
            )));
        }
    };
    Ok(Entrypoint {
        flow_id,
        name,
        description,
        interfaces,
    })
}

fn path_map(obj: &Map<String, Value>, name: &str) -> Result<PathMap, BundleError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(PathMap::new()),
        Some(Value::Object(m)) => {
            let mut out = PathMap::new();
            for (k, v) in m {
                let path = v.as_str().ok_or_else(|| {
                    manifest_err(format!(
                        "manifest.{name}[\"{k}\"] must be a string path (got {})",
                        type_name(v)
                    ))
                })?;
                out.insert(k.clone(), path.trim());
            }
            Ok(out)
        }
        Some(other) => Err(manifest_err(format!(
            "manifest.{name} must be an object (got {})",
            type_name(other)
        ))),
    }
}

/// JSON type name for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({
            "bundle_format_version": "1",
            "bundle_id": "demo",
            "bundle_version": "1.0.0",
            "created_at": "2026-01-01T00:00:00+00:00",
            "entrypoints": [{"flow_id": "root", "name": "demo", "description": "", "interfaces": []}],
            "default_entrypoint": "root",
            "flows": {"root": "flows/root.json", "child": "flows/child.json"},
            "artifacts": {},
            "assets": {},
            "metadata": {}
        })
    }

    fn err_of(v: Value) -> String {
        let m = Manifest::from_value(&v).and_then(|m| m.validate().map(|_| m));
        match m {
            Ok(_) => panic!("expected an error for {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn canonical_manifest_round_trips_and_keeps_flow_order() {
        let m = Manifest::from_value(&base()).unwrap();
        m.validate().unwrap();
        assert_eq!(m.flows.keys().collect::<Vec<_>>(), ["root", "child"]);
        assert_eq!(m.to_value(), base());
        let again: Manifest = serde_json::from_str(&m.to_pretty_json()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn camel_case_aliases_are_accepted_and_written_canonically() {
        let v = json!({
            "bundleFormatVersion": 1,
            "bundleId": " demo ",
            "bundleVersion": "",
            "createdAt": "t",
            "entrypoints": [{"flowId": "a", "name": "  ", "interfaces": ["x", " ", " y "]}],
            "defaultEntrypointFlowId": "a",
            "flows": {"a": "flows/a.json"}
        });
        let m = Manifest::from_value(&v).unwrap();
        m.validate().unwrap();
        assert_eq!(m.bundle_format_version, "1");
        assert_eq!(m.bundle_id, "demo");
        assert_eq!(m.bundle_version, DEFAULT_BUNDLE_VERSION);
        assert_eq!(m.created_at, "t");
        assert_eq!(m.default_entrypoint.as_deref(), Some("a"));
        assert_eq!(m.entrypoints[0].name, None);
        assert_eq!(m.entrypoints[0].interfaces, ["x", "y"]);
        let out = m.to_value();
        assert_eq!(out["bundle_id"], "demo");
        assert_eq!(out["default_entrypoint"], "a");
        assert!(out.get("bundleId").is_none());
        assert_eq!(out["entrypoints"][0]["name"], Value::Null);
    }

    #[test]
    fn default_entrypoint_is_omitted_when_unset() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("default_entrypoint");
        let m = Manifest::from_value(&v).unwrap();
        assert!(m.to_value().get("default_entrypoint").is_none());
    }

    #[test]
    fn validation_errors_are_precise() {
        let mut v = base();
        v["bundle_format_version"] = json!("2");
        assert!(
            err_of(v).contains(r#"manifest.bundle_format_version must be "1" (got "2")"#),
            "format"
        );

        let mut v = base();
        v["bundle_id"] = json!("  ");
        assert!(err_of(v).contains("manifest.bundle_id must be a non-empty string"));

        let mut v = base();
        v["entrypoints"] = json!([]);
        assert!(err_of(v).contains("manifest.entrypoints must be a non-empty list"));

        let mut v = base();
        v["entrypoints"] = json!([{"flow_id": "root"}, {"flow_id": "root"}]);
        assert!(err_of(v).contains(r#"manifest.entrypoints[1].flow_id "root" is duplicated"#));

        let mut v = base();
        v["entrypoints"] = json!([{"flow_id": ""}]);
        assert!(err_of(v).contains("manifest.entrypoints[0].flow_id must be a non-empty string"));

        let mut v = base();
        v["default_entrypoint"] = json!("nope");
        assert!(err_of(v).contains(r#"manifest.default_entrypoint "nope" must match"#));

        let mut v = base();
        v["flows"] = json!({"a": "../x"});
        assert!(err_of(v).contains(r#"manifest.flows["a"]: unsafe path "../x""#));

        let mut v = base();
        v["assets"] = json!({"logo": "/etc/passwd"});
        assert!(err_of(v).contains(r#"manifest.assets["logo"]: unsafe path "/etc/passwd""#));

        let mut v = base();
        v["flows"] = json!({"a": 3});
        assert!(err_of(v).contains(r#"manifest.flows["a"] must be a string path"#));

        let mut v = base();
        v["entrypoints"] = json!([{"flow_id": "root", "description": 5}]);
        assert!(err_of(v).contains("manifest.entrypoints[0].description must be a string"));

        let mut v = base();
        v["entrypoints"] = json!([{"flow_id": "root", "interfaces": [1]}]);
        assert!(err_of(v).contains("manifest.entrypoints[0].interfaces[0] must be a string"));

        let mut v = base();
        v["metadata"] = json!([]);
        assert!(err_of(v).contains("manifest.metadata must be an object"));

        assert!(err_of(json!([1])).contains("manifest.json must be a JSON object"));
    }

    #[test]
    fn relpath_rules() {
        for ok in ["flows/a.json", "a", "flows//a.json", "x/y:z"] {
            assert!(is_safe_relpath(ok), "{ok}");
        }
        for (bad, why) in [
            ("", "empty path"),
            ("/x", "absolute path"),
            ("\\x", "absolute path"),
            ("C:/x", "drive or scheme prefix"),
            ("c:x", "drive or scheme prefix"),
            ("../x", "\".\" or \"..\" segment"),
            ("flows/../../x", "\".\" or \"..\" segment"),
            ("flows\\..\\x", "\".\" or \"..\" segment"),
            ("./x", "\".\" or \"..\" segment"),
        ] {
            assert_eq!(check_relpath(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn entrypoints_without_flows_entry_are_not_a_manifest_error() {
        let mut v = base();
        v["entrypoints"] = json!([{"flow_id": "elsewhere"}]);
        v["default_entrypoint"] = json!("elsewhere");
        Manifest::from_value(&v).unwrap().validate().unwrap();
    }
}
