//! What a node needs to join the cluster: the servers, the names, the lease timing.

use std::time::Duration;

use crate::NatsError;
use crate::security::Security;

/// The oldest nats-server cluster mode accepts. 2.9.x accepts two racing publishers that carry the same
/// `Nats-Expected-Last-Subject-Sequence` (nats-server issue 4320), which would break the journal's fencing.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 12, 0);

/// How a node joins the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The seed servers, as `host:port`; the client also learns the others from the cluster.
    pub servers: Vec<String>,
    /// Names the stream (`<PREFIX>_LOG`), the lease bucket (`<PREFIX>_LEASES`) and, lowercased, the subjects
    /// (`<prefix>.j`, `<prefix>.in`). Letters, digits, `_` and `-`.
    pub prefix: String,
    /// Replication factor of the stream and the lease bucket (1 to 5).
    pub replicas: usize,
    /// This node's name in the lease and the takeover markers.
    pub node_id: String,
    /// How long a lease lives without renewal before a standby may take it.
    pub lease: Duration,
    /// How often the holder renews it.
    pub renew: Duration,
    /// How many shards runs are spread over (1 to [`MAX_SHARDS`]); every node of a cluster must agree (the first
    /// node records it, the others check).
    pub shards: u32,
    /// Authentication and TLS (from `ABSTRACTGATEWAY_NATS_*`, see [`Security::from_env`]; a `tls://` URL
    /// requires TLS).
    pub security: Security,
}

/// Default [`ClusterConfig::prefix`].
pub const DEFAULT_PREFIX: &str = "AG";
/// Default [`ClusterConfig::lease`].
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Default [`ClusterConfig::renew`].
pub const DEFAULT_RENEW: Duration = Duration::from_secs(1);
/// Default [`ClusterConfig::shards`].
pub const DEFAULT_SHARDS: u32 = 4;
/// Most shards a cluster may have.
pub const MAX_SHARDS: u32 = 64;
/// The port a server listed without one listens on.
const DEFAULT_PORT: u16 = 4222;

impl ClusterConfig {
    /// Parses `nats://h1:4222,h2:4222,h3:4222` (or one host), or the same with `tls://` (TLS required). A server
    /// without a port gets 4222; each entry may repeat the URL's scheme. Anything else (another scheme, mixed
    /// schemes, credentials, a path, an empty or repeated entry) is refused: credentials come from the environment
    /// (see [`Security::from_env`]), never from a URL that ends up in logs. The other fields get their defaults: prefix `AG`, replicas min(3, servers listed),
    /// this host's name and pid as node id, lease 10 s, renewal every second.
    pub fn parse(url: &str) -> Result<ClusterConfig, NatsError> {
        // Credentials are refused, and never echoed: an error message ends up in logs.
        let shown = redact(url);
        let bad = |why: String| NatsError::Config(format!("cluster URL {shown:?}: {why}"));
        let url = url.trim();
        let (scheme, rest) = ["nats://", "tls://"]
            .iter()
            .find_map(|s| url.strip_prefix(s).map(|rest| (*s, rest)))
            .ok_or_else(|| {
                bad(
                    "must start with nats:// or tls:// (e.g. nats://h1:4222,h2:4222,h3:4222)"
                        .into(),
                )
            })?;
        let mut servers = Vec::new();
        for entry in rest.split(',') {
            let entry = entry.trim();
            let entry = entry.strip_prefix(scheme).unwrap_or(entry);
            let server = parse_server(entry)
                .map_err(|why| bad(format!("server {:?}: {why}", redact(entry))))?;
            if servers.contains(&server) {
                return Err(bad(format!("server {server} is listed twice")));
            }
            servers.push(server);
        }
        let replicas = servers.len().min(3);
        Ok(ClusterConfig {
            servers,
            prefix: DEFAULT_PREFIX.to_string(),
            replicas,
            node_id: default_node_id(),
            lease: DEFAULT_LEASE,
            renew: DEFAULT_RENEW,
            shards: DEFAULT_SHARDS,
            security: Security {
                tls: crate::security::Tls {
                    required: scheme == "tls://",
                    ..Default::default()
                },
                ..Default::default()
            },
        })
    }

    /// Checks the fields `parse` does not produce (a config built by hand).
    pub(crate) fn validate(&self) -> Result<(), NatsError> {
        let bad = |why: &str| Err(NatsError::Config(why.to_string()));
        if self.servers.is_empty() {
            return bad("no server to connect to");
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad("the prefix must be letters, digits, '_' or '-'");
        }
        if !(1..=5).contains(&self.replicas) {
            return bad("replicas must be between 1 and 5");
        }
        if self.node_id.trim().is_empty() {
            return bad("the node id must not be empty");
        }
        if self.renew.is_zero() || self.renew.mul_f64(1.25) >= self.lease {
            return bad("the renewal interval must be positive and shorter than 0.8 x the lease");
        }
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return bad("shards must be between 1 and 64");
        }
        self.security.validate()
    }

    /// `<PREFIX>_LOG`.
    pub(crate) fn stream_name(&self) -> String {
        format!("{}_LOG", self.prefix)
    }

    /// `<PREFIX>_LEASES`.
    pub(crate) fn lease_bucket(&self) -> String {
        format!("{}_LEASES", self.prefix)
    }

    /// The owner journal's subject, `<prefix>.j`.
    pub(crate) fn journal_subject(&self) -> String {
        format!("{}.j", self.prefix.to_ascii_lowercase())
    }

    /// The intake subject, `<prefix>.in`.
    pub(crate) fn intake_subject(&self) -> String {
        format!("{}.in", self.prefix.to_ascii_lowercase())
    }
}

/// `url` with whatever precedes an `@` in each comma-separated entry replaced by `***`.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|entry| match entry.rfind('@') {
            Some(at) => {
                let scheme_end = entry.find("://").map_or(0, |i| i + 3).min(at);
                format!("{}***{}", &entry[..scheme_end], &entry[at..])
            }
            None => entry.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `host[:port]` → `host:port`, refusing what is not a plain server address.
fn parse_server(entry: &str) -> Result<String, String> {
    if entry.is_empty() {
        return Err("empty entry".into());
    }
    if entry.contains("://") {
        return Err("every server takes the URL's scheme (nats:// or tls://)".into());
    }
    if entry.contains(['@', '/', '?', '#']) || entry.chars().any(char::is_whitespace) {
        return Err("expected host:port (no credentials, path or query)".into());
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        // An IPv6 literal: [addr]:port or [addr].
        let (addr, after) = rest
            .split_once(']')
            .ok_or("unclosed '[' in an IPv6 address")?;
        if addr.is_empty() || !addr.contains(':') {
            return Err("bad IPv6 address".into());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected ':' after ']'")?),
        };
        (format!("[{addr}]"), port)
    } else {
        match entry.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (entry.to_string(), None),
        }
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return Err("expected host:port".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    Ok(format!("{host}:{port}"))
}

/// This host's name and pid: unique enough to tell the runners of a cluster apart in its leases and markers.
fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

/// The `X.Y.Z` at the start of a server version (`2.15.1`, `2.12.0-RC.1`, `v2.10.4`).
pub(crate) fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor, patch.parse().ok()?))
}

/// Whether cluster mode can run on a server reporting `version`.
pub(crate) fn version_supported(version: &str) -> bool {
    parse_version(version).is_some_and(|v| v >= MIN_SERVER_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_guard_refuses_old_servers() {
        assert!(!version_supported("2.9.10"));
        assert!(!version_supported("2.11.9"));
        assert!(version_supported("2.12.0"));
        assert!(version_supported("2.15.1"));
        assert!(version_supported("2.12.0-RC.1"));
        assert!(version_supported("3.0.0"));
        assert!(!version_supported(""));
        assert!(!version_supported("garbage"));
        assert_eq!(parse_version("v2.10.4"), Some((2, 10, 4)));
    }

    #[test]
    fn parses_cluster_urls() {
        let cfg = ClusterConfig::parse("nats://h1:4222,h2:4223,h3:4224").expect("three servers");
        assert_eq!(cfg.servers, vec!["h1:4222", "h2:4223", "h3:4224"]);
        assert_eq!(cfg.replicas, 3);
        assert_eq!(cfg.prefix, "AG");
        assert_eq!(cfg.lease, Duration::from_secs(10));
        assert_eq!(cfg.renew, Duration::from_secs(1));
        assert!(cfg.validate().is_ok());

        let one = ClusterConfig::parse("nats://127.0.0.1:4222").expect("one server");
        assert_eq!(one.servers, vec!["127.0.0.1:4222"]);
        assert_eq!(one.replicas, 1);

        let two = ClusterConfig::parse("nats://a,nats://b:5000").expect("two servers");
        assert_eq!(two.servers, vec!["a:4222", "b:5000"]);
        assert_eq!(two.replicas, 2);

        let five = ClusterConfig::parse("nats://a,b,c,d,e").expect("five servers");
        assert_eq!(five.replicas, 3);

        let v6 = ClusterConfig::parse("nats://[::1]:4222,[fe80::1]").expect("IPv6");
        assert_eq!(v6.servers, vec!["[::1]:4222", "[fe80::1]:4222"]);
        assert!(!v6.security.tls.required);

        let tls = ClusterConfig::parse("tls://h1:4222,tls://h2").expect("tls");
        assert_eq!(tls.servers, vec!["h1:4222", "h2:4222"]);
        assert!(tls.security.tls.required);
    }

    #[test]
    fn refuses_other_urls() {
        for url in [
            "",
            "h1:4222",
            "http://h1:4222",
            "tls://h1:4222,nats://h2:4222",
            "nats://",
            "nats://h1:4222,",
            "nats://h1:4222,,h2:4222",
            "nats://user:pass@h1:4222",
            "nats://h1:4222/path",
            "nats://h1:port",
            "nats://h1:0",
            "nats://h1:70000",
            "nats://h1:4222,h1:4222",
            "nats://h1:4222,tls://h2:4222",
            "nats://[::1",
            "nats://::1:4222",
        ] {
            let err = ClusterConfig::parse(url).expect_err(url);
            assert!(matches!(err, NatsError::Config(_)), "{url}: {err}");
        }
    }

    #[test]
    fn a_refused_url_never_shows_its_credentials() {
        for url in [
            "nats://user:s3cret@h1:4222",
            "nats://h1:4222,nats://tok3n@h2:4222",
            "tls://user:s3cret@h1:4222",
        ] {
            let err = ClusterConfig::parse(url).expect_err(url).to_string();
            assert!(
                !err.contains("s3cret") && !err.contains("tok3n") && !err.contains("user"),
                "{err}"
            );
            assert!(err.contains("***@h"), "{err}");
        }
    }

    #[test]
    fn validates_hand_built_configs() {
        let good = ClusterConfig::parse("nats://h1:4222").expect("url");
        let mut c = good.clone();
        c.prefix = "a.b".into();
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.replicas = 0;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.node_id = " ".into();
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.renew = Duration::from_secs(9);
        assert!(c.validate().is_err());
        let mut c = good;
        c.prefix = "Test_1".into();
        assert_eq!(c.stream_name(), "Test_1_LOG");
        assert_eq!(c.lease_bucket(), "Test_1_LEASES");
        assert_eq!(c.journal_subject(), "test_1.j");
        assert_eq!(c.intake_subject(), "test_1.in");
    }
}
