//! The operator's policy over what bundle-supplied plugins may be granted: a manifest's grants are a
//! request, checked against this cap at `bundle verify`, upload and load, and refused (never widened or
//! silently narrowed) when they ask for more.
//!
//! Read from the JSON file named by `ABSTRACTGATEWAY_PLUGIN_POLICY` (absent = [`Policy::default`]), then
//! `ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS` (comma-separated host names or IPs) adds to
//! `allow_private_hosts`. Built-in plugins and the operator's plugins dir are the operator's own choice and
//! are not capped here (their limits still apply); the network rules (`allow_private_hosts`) apply to all.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::grants::Grants;

/// Env var naming the policy file.
pub const POLICY_ENV: &str = "ABSTRACTGATEWAY_PLUGIN_POLICY";
/// Env var listing hosts plugins may reach although they resolve to private addresses.
pub const ALLOW_PRIVATE_ENV: &str = "ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS";

/// Why the operator's policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file cannot be read.
    #[error("{POLICY_ENV}: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a policy (not JSON, an unknown key, a wrong type).
    #[error("{POLICY_ENV}: {} is not a valid policy: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// For callers that still report setup failures as text (the plugin host's setup).
impl From<PolicyFileError> for String {
    fn from(e: PolicyFileError) -> String {
        e.to_string()
    }
}

/// A bundle plugin's grant beyond the operator's policy: [`Policy::check`] names the plugin and the
/// first such grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: the manifest asks for {grant}, beyond the operator's plugin policy")]
pub struct BeyondPolicy {
    /// The plugin (`bundle@version/name`).
    pub plugin: String,
    /// What it asks for.
    pub grant: Asked,
}

/// A grant the policy does not cover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Asked {
    #[error("http origin {0:?}")]
    HttpOrigin(String),
    #[error("tool {0:?}")]
    Tool(String),
    #[error("kv bucket {0:?}")]
    KvBucket(String),
    #[error("model {0:?}")]
    Model(String),
    #[error("voice")]
    Voice,
    #[error("image")]
    Image,
    #[error("kg")]
    Kg,
    #[error("artifacts")]
    Artifacts,
    #[error("events")]
    Events,
    /// A limit above the policy's cap (`name` as in the grants).
    #[error("{name} = {asked} (the cap is {cap})")]
    Limit {
        name: &'static str,
        asked: u64,
        cap: u64,
    },
}

/// For callers that still report load failures as text (the plugin host's loader).
impl From<BeyondPolicy> for String {
    fn from(e: BeyondPolicy) -> String {
        e.to_string()
    }
}

/// What any bundle-supplied plugin may be granted, at most.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Origins a bundle plugin's `http` grant may name (`*` = any; `https://*.example.com` covers its
    /// subdomains; `https://api.example.com` exactly that origin).
    pub http: Vec<String>,
    /// Tools a bundle plugin may be granted (`*` = any).
    pub tools: Vec<String>,
    /// kv buckets a bundle plugin may be granted (`*` = any). They are namespaced per bundle.
    pub kv: Vec<String>,
    /// kv buckets every bundle shares with the built-in plugins instead of getting its own.
    pub shared_kv: Vec<String>,
    /// Models a bundle plugin may be granted (`*` = any; `openai/*`; `lmstudio/qwen3`).
    pub llm: Vec<String>,
    /// Whether bundle plugins may use `voice`.
    pub voice: bool,
    /// Whether bundle plugins may use `image`. Off unless the operator opens it: images cost money.
    pub image: bool,
    /// Whether bundle plugins may use `kg`. Off unless the operator opens it: session and global memory hold what
    /// users said.
    pub kg: bool,
    /// Whether bundle plugins may store artifacts.
    pub artifacts: bool,
    /// Whether bundle plugins may emit client-visible events.
    pub events: bool,
    /// Host names or IPs any plugin may connect to although they are (or resolve to) loopback, private,
    /// link-local, CGNAT, multicast or metadata addresses.
    pub allow_private_hosts: Vec<String>,
    pub max_memory_mb: u64,
    pub max_timeout_ms: u64,
    pub max_wall_timeout_ms: u64,
    pub max_host_calls: u64,
    pub max_output_bytes: u64,
    pub max_http_body: u64,
    pub max_artifact_bytes: u64,
    pub max_log_bytes: u64,
    pub max_emit_bytes: u64,
}

impl Default for Policy {
    /// Any origin (private addresses stay unreachable), any tool, bucket (namespaced) and model, voice,
    /// artifacts and events; limits a few times the defaults of [`Grants`].
    fn default() -> Self {
        Policy {
            http: vec!["*".into()],
            tools: vec!["*".into()],
            kv: vec!["*".into()],
            shared_kv: vec![],
            llm: vec!["*".into()],
            voice: true,
            image: false,
            kg: false,
            artifacts: true,
            events: true,
            allow_private_hosts: vec![],
            max_memory_mb: 256,
            max_timeout_ms: 60_000,
            max_wall_timeout_ms: 600_000,
            max_host_calls: 100_000,
            max_output_bytes: 16 << 20,
            max_http_body: 32 << 20,
            max_artifact_bytes: 64 << 20,
            max_log_bytes: 4 << 20,
            max_emit_bytes: 1 << 20,
        }
    }
}

impl Policy {
    /// The process's policy: the file named by [`POLICY_ENV`], plus [`ALLOW_PRIVATE_ENV`].
    pub fn from_env() -> Result<Policy, PolicyFileError> {
        let mut p = match std::env::var_os(POLICY_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Policy::from_file(Path::new(&path))?,
            None => Policy::default(),
        };
        if let Ok(hosts) = std::env::var(ALLOW_PRIVATE_ENV) {
            p.allow_private_hosts.extend(
                hosts
                    .split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty()),
            );
        }
        Ok(p)
    }

    /// A policy file: JSON, unknown keys refused.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyFileError> {
        let bytes = std::fs::read(path).map_err(|source| PolicyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut p: Policy =
            serde_json::from_slice(&bytes).map_err(|source| PolicyFileError::Invalid {
                path: path.to_path_buf(),
                source,
            })?;
        for h in &mut p.allow_private_hosts {
            *h = h.trim().to_ascii_lowercase();
        }
        Ok(p)
    }

    /// Checks that `grants`, asked for by bundle plugin `plugin`, stay within this policy; the error names
    /// the plugin and the first grant beyond it.
    pub fn check(&self, plugin: &str, g: &Grants) -> Result<(), BeyondPolicy> {
        let refuse = |grant: Asked| {
            Err(BeyondPolicy {
                plugin: plugin.to_string(),
                grant,
            })
        };
        for origin in &g.http {
            if !self.http.iter().any(|p| origin_covered(p, origin)) {
                return refuse(Asked::HttpOrigin(origin.clone()));
            }
        }
        for t in &g.tools {
            if !self.tools.iter().any(|p| p == "*" || p == t) {
                return refuse(Asked::Tool(t.clone()));
            }
        }
        for b in &g.kv {
            if !self.kv.iter().any(|p| p == "*" || p == b) && !self.shared_kv.contains(b) {
                return refuse(Asked::KvBucket(b.clone()));
            }
        }
        for m in &g.llm {
            if !self.llm.iter().any(|p| model_covered(p, m)) {
                return refuse(Asked::Model(m.clone()));
            }
        }
        if g.voice && !self.voice {
            return refuse(Asked::Voice);
        }
        if g.image && !self.image {
            return refuse(Asked::Image);
        }
        if g.kg && !self.kg {
            return refuse(Asked::Kg);
        }
        if g.artifacts && !self.artifacts {
            return refuse(Asked::Artifacts);
        }
        if g.events && !self.events {
            return refuse(Asked::Events);
        }
        let limits = [
            ("memory_mb", g.memory_mb, self.max_memory_mb),
            ("timeout_ms", g.timeout_ms, self.max_timeout_ms),
            (
                "wall_timeout_ms",
                g.wall_timeout_ms,
                self.max_wall_timeout_ms,
            ),
            ("max_host_calls", g.max_host_calls, self.max_host_calls),
            (
                "max_output_bytes",
                g.max_output_bytes,
                self.max_output_bytes,
            ),
            ("max_http_body", g.max_http_body, self.max_http_body),
            (
                "max_artifact_bytes",
                g.max_artifact_bytes,
                self.max_artifact_bytes,
            ),
            ("max_log_bytes", g.max_log_bytes, self.max_log_bytes),
            ("max_emit_bytes", g.max_emit_bytes, self.max_emit_bytes),
        ];
        for (name, asked, cap) in limits {
            if asked > cap {
                return refuse(Asked::Limit { name, asked, cap });
            }
        }
        Ok(())
    }

    /// Whether `host` (a name or an IP literal, lowercase) is allowed to be private.
    pub fn allows_private(&self, host: &str) -> bool {
        self.allow_private_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host.trim_matches(['[', ']'])))
    }
}

/// Whether policy entry `pattern` covers the granted `origin`.
fn origin_covered(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (Some((ps, ph, pp)), Some((os, oh, op))) = (split_origin(pattern), split_origin(origin))
    else {
        return false;
    };
    if ps != os || pp != op {
        return false;
    }
    match (ph.strip_prefix("*."), oh.strip_prefix("*.")) {
        (None, None) => ph == oh,
        (None, Some(_)) => false,
        (Some(suffix), Some(osuffix)) => {
            osuffix == suffix || osuffix.ends_with(&format!(".{suffix}"))
        }
        (Some(suffix), None) => oh.len() > suffix.len() + 1 && oh.ends_with(&format!(".{suffix}")),
    }
}

/// `scheme://host[:port]` → (scheme, lowercase host, port with the scheme's default filled in).
fn split_origin(o: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = o.split_once("://")?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p.parse().ok()?)),
        _ => (rest, None),
    };
    let port = port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    });
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
}

fn model_covered(pattern: &str, model: &str) -> bool {
    if pattern == "*" || pattern == model {
        return true;
    }
    match (pattern.strip_suffix("/*"), model.split_once('/')) {
        (Some(provider), Some((mp, _))) => provider == mp,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(v: serde_json::Value) -> Grants {
        Grants::parse(&v).expect("grants")
    }

    #[test]
    fn the_default_policy_takes_ordinary_grants_and_caps_limits() {
        let p = Policy::default();
        let ok = grants(
            serde_json::json!({"http": ["https://api.example.com"], "kv": ["notes"],
            "tools": ["fetch_url"], "llm": ["openai/*"], "artifacts": true}),
        );
        assert_eq!(p.check("b@1/x", &ok), Ok(()));
        // Images cost money: a bundle's plugin gets them only when the operator opens them.
        let e = p
            .check("b@1/x", &grants(serde_json::json!({"image": true})))
            .expect_err("image is closed by default");
        assert_eq!(e.grant, Asked::Image);
        let e = p
            .check("b@1/x", &grants(serde_json::json!({"memory_mb": 1024})))
            .expect_err("capped")
            .to_string();
        assert!(
            e.contains("plugin b@1/x") && e.contains("memory_mb = 1024"),
            "{e}"
        );
    }

    #[test]
    fn a_narrow_policy_names_the_refused_grant() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "http": ["https://*.example.com"], "tools": ["fetch_url"], "kv": [], "shared_kv": ["team"],
            "llm": ["lmstudio/*"], "voice": false, "artifacts": false, "events": false}))
        .expect("policy");
        let cases = [
            (
                serde_json::json!({"http": ["https://evil.net"]}),
                "http origin",
            ),
            (
                serde_json::json!({"http": ["https://*.evil.example.com.net"]}),
                "http origin",
            ),
            (
                serde_json::json!({"tools": ["write_file"]}),
                "tool \"write_file\"",
            ),
            (serde_json::json!({"kv": ["span_memory"]}), "kv bucket"),
            (serde_json::json!({"llm": ["openai/gpt-4o"]}), "model"),
            (serde_json::json!({"voice": true}), "voice"),
            (serde_json::json!({"image": true}), "image"),
            (serde_json::json!({"kg": true}), "kg"),
            (serde_json::json!({"artifacts": true}), "artifacts"),
            (serde_json::json!({"events": true}), "events"),
        ];
        for (g, what) in cases {
            let e = p
                .check("b@1/p", &grants(g.clone()))
                .expect_err("refused")
                .to_string();
            assert!(e.contains(what) && e.contains("b@1/p"), "{g}: {e}");
        }
        let ok = grants(
            serde_json::json!({"http": ["https://a.example.com", "https://*.x.example.com"],
            "kv": ["team"], "llm": ["lmstudio/qwen"], "tools": ["fetch_url"]}),
        );
        assert_eq!(p.check("b@1/p", &ok), Ok(()));
    }

    #[test]
    fn a_refusal_names_the_plugin_and_the_grant() {
        let p = Policy {
            voice: false,
            ..Policy::default()
        };
        let e = p
            .check("b@1/v", &grants(serde_json::json!({"voice": true})))
            .expect_err("refused");
        assert_eq!(
            e,
            BeyondPolicy {
                plugin: "b@1/v".into(),
                grant: Asked::Voice
            }
        );
        assert_eq!(
            e.to_string(),
            "plugin b@1/v: the manifest asks for voice, beyond the operator's plugin policy"
        );
        let e = p
            .check("b@1/x", &grants(serde_json::json!({"memory_mb": 1024})))
            .expect_err("capped");
        assert_eq!(
            e.grant,
            Asked::Limit {
                name: "memory_mb",
                asked: 1024,
                cap: 256
            }
        );
        assert_eq!(
            String::from(e),
            "plugin b@1/x: the manifest asks for memory_mb = 1024 (the cap is 256), beyond the operator's \
             plugin policy"
        );
    }

    #[test]
    fn an_unusable_policy_file_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("missing.json");
        let e = Policy::from_file(&missing).expect_err("missing");
        assert!(matches!(e, PolicyFileError::Read { .. }));
        assert!(
            e.to_string().starts_with(&format!(
                "ABSTRACTGATEWAY_PLUGIN_POLICY: cannot read {}: ",
                missing.display()
            )),
            "{e}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"htp\": []}").expect("write");
        let e = Policy::from_file(&bad).expect_err("unknown key");
        assert!(matches!(e, PolicyFileError::Invalid { .. }));
        assert!(
            e.to_string().starts_with(&format!(
                "ABSTRACTGATEWAY_PLUGIN_POLICY: {} is not a valid policy: ",
                bad.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn unknown_policy_keys_are_refused() {
        assert!(serde_json::from_value::<Policy>(serde_json::json!({"htp": []})).is_err());
    }
}
