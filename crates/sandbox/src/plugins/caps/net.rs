//! Where plugins' outbound HTTP (`http.fetch`, the `fetch_url` tool) may connect: never to loopback,
//! private, link-local, CGNAT, multicast, reserved or cloud-metadata addresses, unless the operator allows
//! the host by name.
//!
//! The check is made on the addresses actually connected to: the HTTP client resolves names through
//! [`GuardedResolver`], which drops every forbidden address, so a name that resolves (or rebinds) to one
//! fails; IP literals never reach a resolver and are checked by [`check_literal`]. Redirects are not
//! followed by the client: callers follow them hop by hop, and every hop goes through both checks again.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;

use super::super::bindings::types::{Error, ErrorCode};
use super::super::component::Owner;
use super::super::grants::Grants;
use super::error;

/// True for addresses a plugin must not reach by default.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 metadata among them)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
}

/// The IPv4 address an IPv6 one carries: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5]
        && (s[5] == 0xffff || (s[5] == 0 && !ip.is_loopback() && !ip.is_unspecified()))
    {
        return Some(tail());
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// The refusal of a forbidden address, as the component sees it.
pub fn refused(host: &str) -> Error {
    error(
        ErrorCode::AccessDenied,
        format!(
            "http access to {host} is refused: it is a loopback, private, link-local or metadata address \
             (the operator may allow the host with ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS)"
        ),
    )
}

/// Host names and IPs one caller may reach although they are private.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PrivateOk(Arc<[String]>);

impl PrivateOk {
    fn allows(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']);
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Checks a URL whose host is an IP literal (names are checked when resolved).
pub fn check_literal(url: &reqwest::Url, ok: &PrivateOk) -> Result<(), Error> {
    let Some(host) = url.host_str() else {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("url {url} has no host"),
        ));
    };
    // The URL parser has already normalised every IPv4 spelling (decimal, octal, short) to dotted form.
    let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() else {
        return Ok(());
    };
    if is_forbidden(ip) && !ok.allows(&ip.to_string()) {
        return Err(refused(&ip.to_string()));
    }
    Ok(())
}

/// The error a [`GuardedResolver`] fails a lookup with (found again in the client's error chain).
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to loopback, private, link-local or metadata addresses")]
pub struct Blocked {
    pub host: String,
}

/// Resolves names with the system resolver and keeps only addresses the caller may reach.
struct GuardedResolver {
    ok: PrivateOk,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let exempt = self.ok.allows(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| exempt || !is_forbidden(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(Blocked { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// HTTP clients for plugins, one per distinct private-host allowance (most share the empty one).
pub struct Net {
    /// The operator's `allow_private_hosts`.
    operator: Vec<String>,
    clients: Mutex<HashMap<PrivateOk, reqwest::Client>>,
}

impl Net {
    /// Clients allowing `operator_hosts` (lowercase names or IPs) although private.
    pub fn new(operator_hosts: Vec<String>) -> Net {
        Net {
            operator: operator_hosts,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// What a plugin may reach although private: the operator's hosts and, for a plugin the operator
    /// installed (built in, or in the plugins dir), the hosts its own grants name exactly (a wildcard
    /// grant never opens a private address: a name it covers could be made to resolve to one).
    pub fn private_ok(&self, grants: &Grants, owner: &Owner) -> PrivateOk {
        let mut hosts = self.operator.clone();
        if !matches!(owner, Owner::Bundle { .. }) {
            hosts.extend(grants.exact_hosts());
        }
        hosts.sort();
        hosts.dedup();
        PrivateOk(hosts.into())
    }

    /// The client for `ok`: no redirects, no proxies from the environment, the guarded resolver.
    pub fn client(&self, ok: &PrivateOk) -> reqwest::Client {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(ok) {
            return c.clone();
        }
        let c = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { ok: ok.clone() }))
            .build()
            .unwrap_or_default();
        // Bounded: allowances come from grants the operator accepted, a handful of distinct sets.
        if clients.len() < 256 {
            clients.insert(ok.clone(), c.clone());
        }
        c
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new(Vec::new())
    }
}

/// True when a client error came from a refused resolution.
pub fn is_blocked(e: &reqwest::Error) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<Blocked>() {
            return Some(b.host.clone());
        }
        src = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.5.5.5",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(is_forbidden(ip), "{ip} must be forbidden");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!is_forbidden(ip), "{ip} is public");
        }
    }

    #[test]
    fn literals_are_checked_and_named_hosts_exempted() {
        let url = |s: &str| reqwest::Url::parse(s).expect("url");
        let none = PrivateOk::default();
        assert!(check_literal(&url("http://127.0.0.1:9/x"), &none).is_err());
        assert!(check_literal(&url("http://[::1]:9/x"), &none).is_err());
        assert!(check_literal(&url("http://169.254.169.254/latest/meta-data"), &none).is_err());
        assert!(
            check_literal(&url("http://2130706433/"), &none).is_err(),
            "decimal 127.0.0.1"
        );
        assert!(check_literal(&url("http://example.com/"), &none).is_ok());
        let ok = PrivateOk(vec!["127.0.0.1".to_string()].into());
        assert!(check_literal(&url("http://127.0.0.1:9/x"), &ok).is_ok());
        assert!(check_literal(&url("http://127.0.0.2:9/x"), &ok).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_connect() {
        let net = Net::default();
        let client = net.client(&PrivateOk::default());
        let e = client
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("refused");
        assert_eq!(is_blocked(&e).as_deref(), Some("localhost"), "{e:?}");
    }
}
