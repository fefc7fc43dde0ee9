//! What one plugin may do: capabilities granted explicitly (nothing by default) and its resource limits.

use serde::{Deserialize, Serialize};

/// The grants and limits of one plugin, as declared in a bundle manifest or a plugins-dir sidecar file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Origins `http.fetch` may reach: `https://api.example.com`, `http://127.0.0.1:8080`, `https://*.example.com`.
    pub http: Vec<String>,
    /// Providers or models `llm.complete` may use (`*` = any; `openai/*`, `lmstudio/qwen3`, `gpt-4o`).
    pub llm: Vec<String>,
    /// Tools `tools.invoke` may call (`*` = any granted to the gateway).
    pub tools: Vec<String>,
    /// Key-value buckets the plugin may open.
    pub kv: Vec<String>,
    /// Whether `voice` may be used.
    pub voice: bool,
    /// Whether `image` may be used (each image costs the operator money at most providers).
    pub image: bool,
    /// Whether `kg` may be used: the knowledge-graph memory of the calling run's own owners (run, session, global).
    pub kg: bool,
    /// Whether `artifacts.put` may store files (reading the run's artifacts needs no grant).
    pub artifacts: bool,
    /// Whether `durability.emit` may send client-visible events.
    pub events: bool,
    /// Linear memory cap, MiB.
    pub memory_mb: u64,
    /// Time one execution may spend in the component, ms: running wasm or blocked in a WASI wait (a sleep,
    /// a poll); recorded host calls (a model call, an HTTP request) are not counted.
    pub timeout_ms: u64,
    /// Wall-clock time one execution may take in all, host calls included, ms.
    pub wall_timeout_ms: u64,
    /// Largest output (JSON bytes) one node may return.
    pub max_output_bytes: u64,
    /// Host calls one node execution may make.
    pub max_host_calls: u64,
    /// Largest HTTP response body accepted, bytes.
    pub max_http_body: u64,
    /// Largest artifact one `artifacts.put` may store, bytes.
    pub max_artifact_bytes: u64,
    /// Log message bytes one execution may write; later messages are dropped.
    pub max_log_bytes: u64,
    /// Largest payload of one `durability.emit`, bytes of JSON.
    pub max_emit_bytes: u64,
}

impl Default for Grants {
    /// Nothing granted; limits that suit a small node.
    fn default() -> Self {
        Grants {
            http: vec![],
            llm: vec![],
            tools: vec![],
            kv: vec![],
            voice: false,
            image: false,
            kg: false,
            artifacts: false,
            events: false,
            memory_mb: 64,
            timeout_ms: 10_000,
            wall_timeout_ms: 600_000,
            max_output_bytes: 4 << 20,
            max_host_calls: 10_000,
            max_http_body: 8 << 20,
            max_artifact_bytes: 16 << 20,
            max_log_bytes: 1 << 20,
            max_emit_bytes: 256 << 10,
        }
    }
}

/// Why grants are refused (the text names the grant; callers prefix the plugin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantsError {
    /// Not a grants object (unknown key, wrong type); the serde message.
    #[error("invalid grants: {0}")]
    Invalid(String),
    /// `memory_mb` outside `1..=MAX_MEMORY_MB`.
    #[error("grants.memory_mb must be 1..={MAX_MEMORY_MB}")]
    Memory,
    /// A time limit (`timeout_ms` or `wall_timeout_ms`) outside `1..=MAX_TIMEOUT_MS`.
    #[error("grants.{0} must be 1..={MAX_TIMEOUT_MS}")]
    Timeout(&'static str),
    /// An `http` entry that is not `scheme://host[:port]`.
    #[error("grants.http entry {0:?} must look like https://host[:port]")]
    HttpOrigin(String),
    /// A `kv` bucket name out of its alphabet or length.
    #[error("grants.kv bucket {0:?} must be 1..128 characters of A-Z a-z 0-9 _ - .")]
    KvBucket(String),
}

/// Upper bounds no grant can exceed (the pooling allocator reserves for the largest).
pub const MAX_MEMORY_MB: u64 = 1024;
/// Longest time limit any grant may set, ms (one day: durations stay far from overflow).
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

impl Grants {
    /// Parses grants from JSON, refusing unknown keys and out-of-range limits.
    pub fn parse(v: &serde_json::Value) -> Result<Grants, GrantsError> {
        let g: Grants =
            serde_json::from_value(v.clone()).map_err(|e| GrantsError::Invalid(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// Checks the limits are usable.
    pub fn validate(&self) -> Result<(), GrantsError> {
        if self.memory_mb == 0 || self.memory_mb > MAX_MEMORY_MB {
            return Err(GrantsError::Memory);
        }
        for (name, ms) in [
            ("timeout_ms", self.timeout_ms),
            ("wall_timeout_ms", self.wall_timeout_ms),
        ] {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(GrantsError::Timeout(name));
            }
        }
        for origin in &self.http {
            parse_origin(origin)?;
        }
        for b in &self.kv {
            let ok = !b.is_empty()
                && b.len() <= 128
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
            if !ok {
                return Err(GrantsError::KvBucket(b.clone()));
            }
        }
        Ok(())
    }

    /// True when `url` is on one of the granted origins (scheme, host and port all match; `*.` wildcards a subdomain).
    pub fn allows_url(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let port = url.port_or_known_default();
        self.http.iter().any(|o| {
            parse_origin(o).is_ok_and(|(scheme, pattern, oport)| {
                scheme == url.scheme()
                    && oport.or(default_port(&scheme)) == port
                    && match pattern.strip_prefix("*.") {
                        Some(suffix) => {
                            host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}"))
                        }
                        None => host.eq_ignore_ascii_case(&pattern),
                    }
            })
        })
    }

    /// True when `llm` may route to this provider/model.
    pub fn allows_model(&self, provider: &str, model: &str) -> bool {
        self.llm.iter().any(|g| {
            g == "*"
                || g == model
                || g == &format!("{provider}/{model}")
                || g.strip_suffix("/*").is_some_and(|p| p == provider)
        })
    }

    /// True when `tools.invoke(name)` is granted.
    pub fn allows_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t == "*" || t == name)
    }

    /// The hosts the `http` grants name exactly (no wildcard), lowercase.
    pub fn exact_hosts(&self) -> Vec<String> {
        self.http
            .iter()
            .filter_map(|o| parse_origin(o).ok())
            .map(|(_, host, _)| host)
            .filter(|h| !h.starts_with("*."))
            .map(|h| h.trim_matches(['[', ']']).to_string())
            .collect()
    }

    /// True when the bucket is granted.
    pub fn allows_bucket(&self, bucket: &str) -> bool {
        self.kv.iter().any(|b| b == bucket)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `scheme://host[:port]` → (scheme, host pattern, port).
fn parse_origin(origin: &str) -> Result<(String, String, Option<u16>), GrantsError> {
    let bad = || GrantsError::HttpOrigin(origin.to_string());
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
        None => (rest, None),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((scheme.to_string(), host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("test url")
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let g = Grants::default();
        assert!(!g.allows_url(&url("https://example.com/")));
        assert!(!g.allows_model("openai", "gpt-4o"));
        assert!(!g.allows_tool("read_file"));
        assert!(!g.allows_bucket("default"));
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let g = Grants {
            http: vec![
                "https://api.example.com".into(),
                "http://127.0.0.1:8080".into(),
                "https://*.svc.io".into(),
            ],
            ..Grants::default()
        };
        assert!(g.allows_url(&url("https://api.example.com/v1/x?y=1")));
        assert!(g.allows_url(&url("https://API.example.com:443/")));
        assert!(!g.allows_url(&url("http://api.example.com/")));
        assert!(!g.allows_url(&url("https://api.example.com:8443/")));
        assert!(!g.allows_url(&url("https://api.example.com.evil.net/")));
        assert!(g.allows_url(&url("http://127.0.0.1:8080/step/1")));
        assert!(!g.allows_url(&url("http://127.0.0.1:8081/")));
        assert!(g.allows_url(&url("https://a.svc.io/")));
        assert!(!g.allows_url(&url("https://svc.io/")));
        assert!(!g.allows_url(&url("https://evilsvc.io/")));
    }

    #[test]
    fn grants_refuse_unknown_keys_and_bad_limits() {
        assert!(Grants::parse(&serde_json::json!({"filesystem": true})).is_err());
        assert!(Grants::parse(&serde_json::json!({"memory_mb": 0})).is_err());
        assert!(Grants::parse(&serde_json::json!({"http": ["ftp://x"]})).is_err());
        assert!(Grants::parse(&serde_json::json!({"http": ["https://x/path"]})).is_err());
        let g =
            Grants::parse(&serde_json::json!({"kv": ["notes"], "memory_mb": 128})).expect("valid");
        assert!(g.allows_bucket("notes") && g.memory_mb == 128);
    }

    #[test]
    fn refusals_name_the_grant() {
        let parse = |v: serde_json::Value| Grants::parse(&v).expect_err("refused");
        assert!(matches!(
            parse(serde_json::json!({"filesystem": true})),
            GrantsError::Invalid(_)
        ));
        assert_eq!(
            parse(serde_json::json!({"memory_mb": 0})).to_string(),
            "grants.memory_mb must be 1..=1024"
        );
        assert_eq!(
            parse(serde_json::json!({"wall_timeout_ms": 0})).to_string(),
            "grants.wall_timeout_ms must be 1..=86400000"
        );
        assert_eq!(
            parse(serde_json::json!({"http": ["ftp://x"]})).to_string(),
            "grants.http entry \"ftp://x\" must look like https://host[:port]"
        );
        assert_eq!(
            parse(serde_json::json!({"kv": ["a/b"]})).to_string(),
            "grants.kv bucket \"a/b\" must be 1..128 characters of A-Z a-z 0-9 _ - ."
        );
        assert_eq!(
            Grants::parse(&serde_json::json!({"memory_mb": 0})).map_err(|e| e.to_string()),
            Err("grants.memory_mb must be 1..=1024".to_string())
        );
    }

    #[test]
    fn models_by_name_provider_or_wildcard() {
        let g = Grants {
            llm: vec!["lmstudio/*".into(), "gpt-4o".into()],
            ..Grants::default()
        };
        assert!(g.allows_model("lmstudio", "anything"));
        assert!(g.allows_model("openai", "gpt-4o"));
        assert!(!g.allows_model("openai", "gpt-5"));
    }
}
