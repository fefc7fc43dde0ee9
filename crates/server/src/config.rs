//! Server configuration read from the seed's environment variables (with the legacy fallbacks of §5.1),
//! and the startup refusals of §4 (no token; weak token on a non-loopback bind).

use std::path::PathBuf;

use crate::runner::workspace::WorkspaceError;

/// Why `serve` refuses to start with this configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A workspace setting is refused (or a workspace root holds the plugins dir).
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Writes are protected but no token is set.
    #[error(
        "Missing gateway auth token. Set ABSTRACTGATEWAY_AUTH_TOKEN (or ABSTRACTGATEWAY_AUTH_TOKENS) to a strong random value before starting the gateway."
    )]
    MissingToken,
    /// A weak token on a non-loopback bind.
    #[error(
        "Refusing to start: weak auth token detected while binding to a non-loopback host. Use a random token of at least 15 characters."
    )]
    WeakTokenPublic,
    /// A weak token with broad allowed origins on a non-loopback bind.
    #[error(
        "Refusing to start: weak auth token with broad allowed origins on a non-loopback host."
    )]
    WeakTokenBroadOrigins,
}

/// Every knob of the HTTP server, resolved once at startup.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// Directory of `*.flow` bundles.
    pub flows_dir: PathBuf,
    /// Node plugins (`*.wasm` + optional `<name>.grants.json`) loaded besides the built-in ones.
    pub plugins_dir: PathBuf,
    /// Root of all durable state.
    pub data_dir: PathBuf,
    /// Step runs in this process.
    pub runner: bool,
    /// Steps per run before it yields (`_TICK_MAX_STEPS`).
    pub tick_max_steps: usize,
    /// Master switch of the security layers (`_SECURITY`).
    pub security: bool,
    /// Accepted bearer tokens (merged `_AUTH_TOKEN` and `_AUTH_TOKENS`).
    pub tokens: Vec<String>,
    /// Require a token for GET/HEAD.
    pub protect_read: bool,
    /// Require a token for POST/PUT/PATCH/DELETE.
    pub protect_write: bool,
    /// Let loopback clients read without a token.
    pub dev_read_no_auth: bool,
    /// Origin globs; they also drive CORS.
    pub allowed_origins: Vec<String>,
    /// Cap of an ordinary request body.
    pub max_body_bytes: u64,
    /// Cap of an uploaded bundle (the handler cap; the body cap adds 2 MiB of multipart slack).
    pub max_bundle_bytes: u64,
    /// Cap of an attachment upload.
    pub max_attachment_bytes: u64,
    /// Optional overall cap of upload bodies (0 = none).
    pub max_upload_body_bytes: u64,
    /// Concurrent non-SSE requests.
    pub max_concurrency: usize,
    /// Concurrent SSE streams.
    pub max_sse: usize,
    /// Failures before an IP is locked out.
    pub lockout_after: u32,
    /// First lock duration, doubled per further failure.
    pub lockout_base_s: f64,
    /// Longest lock.
    pub lockout_max_s: f64,
    /// Take the client IP from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Write the JSONL audit log of writes.
    pub audit_log: bool,
    /// Rotate the audit log at this size.
    pub audit_max_bytes: u64,
    /// Rotated audit files kept.
    pub audit_rotations: usize,
    /// Request headers copied into audit lines.
    pub audit_headers: Vec<String>,
    /// `GET /metrics` without a token (`ABSTRACTGATEWAY_METRICS_PUBLIC`; default off: it needs the token).
    pub metrics_public: bool,
    /// `bundle` (default) or `visualflow` (loose VisualFlow JSON files of FLOWS_DIR; bundle endpoints answer 400).
    pub workflow_source: String,
    /// How long a client may take to send a request's headers (`ABSTRACTGATEWAY_HTTP_HEADER_TIMEOUT_S`).
    pub header_timeout: std::time::Duration,
    /// How long a client may take to send a write's body (`ABSTRACTGATEWAY_HTTP_BODY_TIMEOUT_S`).
    pub body_timeout: std::time::Duration,
    /// Per-run budgets (`ABSTRACTGATEWAY_RUN_MAX_*`; zero or unset: the defaults).
    pub run_budgets: crate::engine::budget::RunBudgets,
    /// `ABSTRACTGATEWAY_STORE`: where runs are stored. Unset: the embedded store in the data dir; `nats://h1:4222,…`:
    /// a NATS JetStream cluster shared by every node (see docs/scale-out.md).
    pub store: Option<String>,
    /// `ABSTRACTGATEWAY_NODE_ID`: this process's name in a cluster (leases, logs); host name and pid by default.
    pub node_id: Option<String>,
}

/// Tokens the seed refuses on a non-loopback bind.
const WEAK_TOKENS: [&str; 10] = [
    "dev-token",
    "devtoken",
    "token",
    "changeme",
    "password",
    "admin",
    "god",
    "zeus",
    "root",
    "superuser",
];

pub(crate) fn parse_bool(v: Option<String>, default: bool) -> bool {
    match v.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if ["1", "true", "yes", "on"].contains(&s.as_str()) => true,
        Some(s) if ["0", "false", "no", "off"].contains(&s.as_str()) => false,
        _ => default,
    }
}

fn parse_num<T: std::str::FromStr>(v: Option<String>, default: T) -> T {
    v.and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

fn split_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A positive timeout in seconds (at least 0.1 s, at most a day).
fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.1, 86_400.0)
    } else {
        10.0
    })
}

impl ServerConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> ServerConfig {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the configuration through `get` (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ServerConfig {
        // Security knobs fall back to the legacy `ABSTRACTFLOW_GATEWAY_*` prefix.
        let sec = |name: &str| {
            get(&format!("ABSTRACTGATEWAY_{name}"))
                .or_else(|| get(&format!("ABSTRACTFLOW_GATEWAY_{name}")))
        };
        let first = |names: &[&str]| names.iter().find_map(|n| get(n));
        let data_dir = first(&["ABSTRACTGATEWAY_DATA_DIR", "ABSTRACTFLOW_RUNTIME_DIR"])
            .unwrap_or_else(|| "./runtime".into());
        let flows_dir = first(&[
            "ABSTRACTGATEWAY_FLOWS_DIR",
            "ABSTRACTFRAMEWORK_WORKFLOWS_DIR",
            "ABSTRACTFLOW_FLOWS_DIR",
        ])
        .unwrap_or_else(|| "./flows".into());
        let mut tokens: Vec<String> = Vec::new();
        for raw in [sec("AUTH_TOKEN"), sec("AUTH_TOKENS")]
            .into_iter()
            .flatten()
        {
            for t in split_list(&raw) {
                if !tokens.contains(&t) {
                    tokens.push(t);
                }
            }
        }
        let security = parse_bool(sec("SECURITY"), true);
        let audit_headers = sec("AUDIT_LOG_HEADERS")
            .unwrap_or_else(|| "x-client-id,x-client-version,x-forwarded-for".into());
        let plugins_dir = get("ABSTRACTGATEWAY_PLUGINS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(&data_dir).join("plugins"));
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            flows_dir: absolute(PathBuf::from(flows_dir)),
            plugins_dir: absolute(plugins_dir),
            data_dir: absolute(PathBuf::from(data_dir)),
            runner: parse_bool(
                first(&["ABSTRACTGATEWAY_RUNNER", "ABSTRACTFLOW_GATEWAY_RUNNER"]),
                true,
            ),
            tick_max_steps: parse_num::<usize>(get("ABSTRACTGATEWAY_TICK_MAX_STEPS"), 100).max(1),
            security,
            tokens,
            protect_read: parse_bool(sec("PROTECT_READ"), true),
            protect_write: parse_bool(sec("PROTECT_WRITE"), true),
            dev_read_no_auth: parse_bool(sec("DEV_READ_NO_AUTH"), false),
            allowed_origins: split_list(
                &sec("ALLOWED_ORIGINS")
                    .unwrap_or_else(|| "http://localhost:*,http://127.0.0.1:*".into()),
            )
            .collect(),
            max_body_bytes: parse_num(sec("MAX_BODY_BYTES"), 256_000),
            max_bundle_bytes: parse_num(sec("MAX_BUNDLE_BYTES"), 78_643_200),
            max_attachment_bytes: parse_num(sec("MAX_ATTACHMENT_BYTES"), 26_214_400),
            max_upload_body_bytes: parse_num(sec("MAX_UPLOAD_BODY_BYTES"), 0),
            max_concurrency: parse_num::<usize>(sec("MAX_CONCURRENCY"), 64).max(1),
            max_sse: parse_num::<usize>(sec("MAX_SSE"), 32).max(1),
            lockout_after: parse_num::<u32>(sec("LOCKOUT_AFTER"), 5).max(1),
            lockout_base_s: parse_num(sec("LOCKOUT_BASE_S"), 1.0f64).max(0.0),
            lockout_max_s: parse_num(sec("LOCKOUT_MAX_S"), 60.0f64).max(0.0),
            trust_proxy: parse_bool(sec("TRUST_PROXY"), false),
            audit_log: parse_bool(sec("AUDIT_LOG"), security),
            audit_max_bytes: parse_num(sec("AUDIT_LOG_MAX_BYTES"), 52_428_800),
            audit_rotations: parse_num::<usize>(sec("AUDIT_LOG_ROTATIONS"), 10).min(200),
            audit_headers: split_list(&audit_headers)
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            header_timeout: secs(parse_num(
                get("ABSTRACTGATEWAY_HTTP_HEADER_TIMEOUT_S"),
                10.0f64,
            )),
            body_timeout: secs(parse_num(
                get("ABSTRACTGATEWAY_HTTP_BODY_TIMEOUT_S"),
                60.0f64,
            )),
            run_budgets: crate::engine::budget::RunBudgets {
                steps: parse_num(get("ABSTRACTGATEWAY_RUN_MAX_STEPS"), 0),
                child_runs: parse_num(get("ABSTRACTGATEWAY_RUN_MAX_CHILD_RUNS"), 0),
                ledger_records: parse_num(get("ABSTRACTGATEWAY_RUN_MAX_LEDGER_RECORDS"), 0),
                ledger_bytes: parse_num(get("ABSTRACTGATEWAY_RUN_MAX_LEDGER_BYTES"), 0),
            },
            store: get("ABSTRACTGATEWAY_STORE").map(|s| s.trim().to_string()),
            node_id: get("ABSTRACTGATEWAY_NODE_ID").map(|s| s.trim().to_string()),
            metrics_public: parse_bool(get("ABSTRACTGATEWAY_METRICS_PUBLIC"), false),
            workflow_source: get("ABSTRACTGATEWAY_WORKFLOW_SOURCE")
                .unwrap_or_else(|| "bundle".into())
                .trim()
                .to_ascii_lowercase(),
        }
    }

    /// True when the bind address only accepts local connections.
    pub fn is_loopback_bind(&self) -> bool {
        is_loopback_host(&self.host)
    }

    /// The startup refusals of the seed's `serve`; `Ok` carries warnings to log.
    pub fn check_startup(&self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        // Nothing a run can write may ever be loaded as code: no workspace may hold the plugins dir.
        crate::runner::workspace::Workspaces::from_env(&self.data_dir)?.check_outside(
            &self.plugins_dir,
            "the plugins dir (ABSTRACTGATEWAY_PLUGINS_DIR)",
        )?;
        if !self.security {
            warnings.push("gateway security is disabled (ABSTRACTGATEWAY_SECURITY=0)".into());
            return Ok(warnings);
        }
        if self.protect_write && self.tokens.is_empty() {
            return Err(ConfigError::MissingToken);
        }
        let public = !self.is_loopback_bind();
        if public {
            warnings.push(format!(
                "binding to non-loopback host {}: the gateway is reachable from the network",
                self.host
            ));
        }
        let weak = self.tokens.iter().any(|t| is_weak_token(t));
        if public && weak {
            return Err(ConfigError::WeakTokenPublic);
        }
        let risky: Vec<&String> = self
            .allowed_origins
            .iter()
            .filter(|p| is_risky_origin(p))
            .collect();
        if !risky.is_empty() {
            warnings.push(format!(
                "broad allowed-origin patterns: {}",
                risky
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if public && weak {
                return Err(ConfigError::WeakTokenBroadOrigins);
            }
        }
        Ok(warnings)
    }
}

/// `127.0.0.1`, `::1`, `localhost` (and the rest of 127/8).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Empty, shorter than 15 characters, or one of the well-known defaults.
pub fn is_weak_token(t: &str) -> bool {
    let t = t.trim();
    t.chars().count() < 15 || WEAK_TOKENS.contains(&t.to_ascii_lowercase().as_str())
}

fn is_risky_origin(p: &str) -> bool {
    let local = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .any(|h| p.contains(h));
    p == "*" || (p.contains("ngrok") && p.contains('*')) || (p.contains('*') && !local)
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        return p;
    }
    std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> ServerConfig {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServerConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_legacy_fallbacks() {
        let c = cfg(&[
            ("ABSTRACTFLOW_RUNTIME_DIR", "/tmp/x"),
            ("ABSTRACTFLOW_GATEWAY_AUTH_TOKEN", "a,b"),
            ("ABSTRACTGATEWAY_AUTH_TOKENS", "b, c"),
        ]);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.tokens, ["a", "b", "c"]);
        assert_eq!(c.max_body_bytes, 256_000);
        assert_eq!((c.max_concurrency, c.max_sse, c.lockout_after), (64, 32, 5));
        assert_eq!(
            c.allowed_origins,
            ["http://localhost:*", "http://127.0.0.1:*"]
        );
        assert!(c.audit_log && c.protect_read && c.runner);
        assert!(!cfg(&[("ABSTRACTGATEWAY_RUNNER", "off")]).runner);
        assert!(
            cfg(&[("ABSTRACTGATEWAY_RUNNER", "maybe")]).runner,
            "unparsable falls back to the default"
        );
    }

    #[test]
    fn startup_refusals() {
        let e = cfg(&[]).check_startup().unwrap_err().to_string();
        assert!(e.starts_with("Missing gateway auth token."), "{e}");
        let mut c = cfg(&[("ABSTRACTGATEWAY_AUTH_TOKEN", "token")]);
        assert!(
            c.check_startup().is_ok(),
            "a weak token is tolerated on loopback"
        );
        c.host = "0.0.0.0".into();
        let e = c.check_startup().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "Refusing to start: weak auth token detected while binding to a non-loopback host."
            ),
            "{e}"
        );
        c.tokens = vec!["a-strong-random-token-123".into()];
        assert!(c.check_startup().is_ok());
        assert!(
            is_weak_token("changeme")
                && is_weak_token("short")
                && !is_weak_token("0123456789abcdef")
        );
    }
}
