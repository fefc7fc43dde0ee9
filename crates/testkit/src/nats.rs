//! Real nats-server processes for the cluster-mode tests: one server, or a JetStream cluster of several, on free
//! loopback ports, each with its own store dir in a temp dir, killed when the value is dropped.
//!
//! The binary is `ABSTRACTGATEWAY_TEST_NATS`, else `nats-server` on `PATH`; it must be 2.12 or newer (older
//! servers accept two racing publishers with the same expected last subject sequence), and a test fails, never
//! skips, when none is found. `scripts/install-nats.sh` installs one and prints its path.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The oldest nats-server the tests accept.
pub const MIN_VERSION: (u64, u64, u64) = (2, 12, 0);

/// How long starting (or restarting) servers may take before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running nats-server cluster (or a single server when started with 1).
pub struct NatsCluster {
    binary: PathBuf,
    servers: Vec<Server>,
    dir: tempfile::TempDir,
}

struct Server {
    client_port: u16,
    http_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `n` servers (a JetStream cluster when `n` > 1) and waits until every one answers its health check
    /// with JetStream enabled and the cluster has a JetStream meta leader. Panics when the binary is missing or too
    /// old, or when the servers do not come up in time.
    pub fn start(n: usize) -> NatsCluster {
        assert!(n >= 1, "a cluster needs at least one server");
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temp dir for nats-server");
        let ports = free_ports(3 * n);
        let client_ports = &ports[..n];
        let cluster_ports = &ports[n..2 * n];
        let http_ports = &ports[2 * n..];
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            let store = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&store).expect("store dir");
            let mut conf = String::new();
            conf.push_str(&format!("server_name: n{i}\n"));
            conf.push_str(&format!("listen: \"127.0.0.1:{}\"\n", client_ports[i]));
            conf.push_str(&format!("http: \"127.0.0.1:{}\"\n", http_ports[i]));
            conf.push_str("max_payload: 8MB\n");
            conf.push_str(&format!(
                "log_file: \"{}\"\n",
                dir.path().join(format!("n{i}.log")).display()
            ));
            conf.push_str(&format!(
                "jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
                store.display()
            ));
            if n > 1 {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                    .collect();
                conf.push_str(&format!(
                    "cluster {{\n  name: agtest\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                    cluster_ports[i],
                    routes.join(", ")
                ));
            }
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(&config, conf).expect("write nats-server config");
            servers.push(Server {
                client_port: client_ports[i],
                http_port: http_ports[i],
                config,
                child: None,
            });
        }
        let mut cluster = NatsCluster {
            binary,
            servers,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_ready(i);
        }
        cluster
    }

    /// The client URL naming every server: `nats://127.0.0.1:p1,127.0.0.1:p2,...`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.client_port))
            .collect();
        format!("nats://{}", hosts.join(","))
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Always false: a cluster has at least one server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// SIGKILLs server `i` (no-op when it is not running) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again, on the same ports and store dir, and waits until it is ready.
    pub fn start_again(&mut self, i: usize) {
        assert!(
            self.servers[i].child.is_none(),
            "nats-server n{i} is still running"
        );
        self.spawn(i);
        self.wait_ready(i);
    }

    /// The process id of server `i` (panics when it is not running).
    pub fn pid(&self, i: usize) -> u32 {
        self.servers[i]
            .child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("nats-server n{i} is not running"))
    }

    /// The log file of server `i`, for a failing test to print.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}.log"))
    }

    fn spawn(&mut self, i: usize) {
        let server = &mut self.servers[i];
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&server.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        server.child = Some(child);
    }

    /// Waits until server `i` reports JetStream healthy and (in a cluster) knows a meta leader.
    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        let clustered = self.servers.len() > 1;
        let port = self.servers[i].http_port;
        loop {
            if let Some(child) = self.servers[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "nats-server n{i} exited during start ({status}); log:\n{}",
                    std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
                );
            }
            let healthy = http_get(port, "/healthz?js-enabled-only=true")
                .is_some_and(|(status, _)| status == 200);
            let led = !clustered
                || http_get(port, "/jsz").is_some_and(|(status, body)| {
                    status == 200
                        && serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                            v.pointer("/meta_cluster/leader")
                                .and_then(Value::as_str)
                                .is_some_and(|l| !l.is_empty())
                        })
                });
            if healthy && led {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "nats-server n{i} not ready within {START_TIMEOUT:?} (healthy: {healthy}, meta leader: {led}); \
                     log:\n{}",
                    std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// The nats-server binary to run: `ABSTRACTGATEWAY_TEST_NATS`, else `nats-server` on `PATH`. Panics with what to
/// do when it is missing or older than [`MIN_VERSION`].
pub fn find_binary() -> PathBuf {
    let from_env = std::env::var_os("ABSTRACTGATEWAY_TEST_NATS").filter(|v| !v.is_empty());
    let binary = from_env
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"));
    let output = Command::new(&binary).arg("--version").output();
    let hint =
        "run scripts/install-nats.sh and export ABSTRACTGATEWAY_TEST_NATS to the path it prints";
    let output = match output {
        Ok(o) => o,
        Err(e) => panic!(
            "nats-server not found ({}: {e}); the cluster tests need nats-server >= {}.{}.{}: {hint}",
            binary.display(),
            MIN_VERSION.0,
            MIN_VERSION.1,
            MIN_VERSION.2
        ),
    };
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    match parse_version(&text) {
        Some(v) if v >= MIN_VERSION => binary,
        found => panic!(
            "{} is {} but the cluster tests need nats-server >= {}.{}.{} (2.9.x accepts two racing publishers with \
             the same expected last subject sequence): {hint}",
            binary.display(),
            match found {
                Some((a, b, c)) => format!("version {a}.{b}.{c}"),
                None => format!("of unknown version ({:?})", text.trim()),
            },
            MIN_VERSION.0,
            MIN_VERSION.1,
            MIN_VERSION.2
        ),
    }
}

/// The first `X.Y.Z` in `nats-server --version` output (`nats-server: v2.15.1`).
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    text.split(|c: char| c.is_whitespace() || c == 'v' || c == ':')
        .find_map(|word| {
            let mut parts = word.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch: String = parts
                .next()?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((major, minor, patch.parse().ok()?))
        })
}

/// `n` distinct free loopback ports (all held until every one is found, so none repeats).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A plain HTTP/1.0 GET on 127.0.0.1: the status and the body, or `None` when the server does not answer.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let timeout = Duration::from_secs(2);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9, 10)));
        assert_eq!(parse_version("nats-server: v2.12.0-RC.1"), Some((2, 12, 0)));
        assert_eq!(parse_version("nats-server"), None);
        assert!(parse_version("nats-server: v2.9.10").is_some_and(|v| v < MIN_VERSION));
    }
}
