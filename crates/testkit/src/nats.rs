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
use std::sync::Mutex;
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
    /// with JetStream enabled and sees a JetStream meta leader with every peer current. Panics when the binary is missing or too
    /// old, or when the servers do not come up in time.
    pub fn start(n: usize) -> NatsCluster {
        NatsCluster::start_with(n, "")
    }

    /// [`NatsCluster::start`] with `extra` appended to every server's configuration (a `tls { … }` or
    /// `authorization { … }` block for the clients; routes and the monitoring port are not affected).
    pub fn start_with(n: usize, extra: &str) -> NatsCluster {
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
            conf.push_str(extra);
            conf.push('\n');
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

    /// Waits until server `i` reports JetStream healthy and (in a cluster) a meta leader with the peers of every
    /// running server current.
    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        let clustered = self.servers.len() > 1;
        let port = self.servers[i].http_port;
        let running = self.servers.iter().filter(|s| s.child.is_some()).count();
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
            let led = !clustered || self.meta_ready(port, running);
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

impl NatsCluster {
    /// Whether the server on `port` knows a JetStream meta leader of a group of every server, and that leader sees
    /// the peers of the `running` servers as current (before that, creating a replicated stream can time out or
    /// find no peers to place it on). Only the leader tracks its followers, so its own `/jsz` is asked.
    fn meta_ready(&self, port: u16, running: usize) -> bool {
        let n = self.servers.len();
        let Some(mine) = jsz(port) else {
            return false;
        };
        let leader = mine
            .pointer("/meta_cluster/leader")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let size = mine
            .pointer("/meta_cluster/cluster_size")
            .and_then(Value::as_u64);
        let Some(leader_port) = leader
            .strip_prefix('n')
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| self.servers.get(k))
            .map(|s| s.http_port)
        else {
            return false;
        };
        if size != Some(n as u64) {
            return false;
        }
        let Some(theirs) = jsz(leader_port) else {
            return false;
        };
        let followers = theirs
            .pointer("/meta_cluster/replicas")
            .and_then(Value::as_array);
        followers.is_some_and(|r| {
            let current = r
                .iter()
                .filter(|p| p.get("current").and_then(Value::as_bool) == Some(true))
                .count();
            r.len() + 1 == n && current + 1 >= running
        })
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// A server's `/jsz` answer, when it gives one.
fn jsz(port: u16) -> Option<Value> {
    http_get(port, "/jsz")
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| serde_json::from_str(&body).ok())
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

/// Where the harness picks its ports: below Linux's default ephemeral range (32768 and up), so that the outgoing
/// connections of the tests running beside it cannot take a port between its choice and the server's bind.
const PORT_LOW: u32 = 20_000;
const PORT_SPAN: u32 = 12_000;

/// The next candidate port (as an offset from `PORT_LOW`), shared by every cluster of this test process so none is
/// handed out twice; it starts at an offset drawn from the pid so that two test processes rarely collide.
static NEXT_PORT: Mutex<Option<u32>> = Mutex::new(None);

/// `n` distinct loopback ports that are free now (each bound once to check).
fn free_ports(n: usize) -> Vec<u16> {
    let mut next = NEXT_PORT.lock().unwrap_or_else(|p| p.into_inner());
    let cursor = next.get_or_insert_with(|| std::process::id().wrapping_mul(7919) % PORT_SPAN);
    let mut ports = Vec::with_capacity(n);
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..PORT_SPAN {
        if ports.len() == n {
            break;
        }
        let port = u16::try_from(PORT_LOW + *cursor % PORT_SPAN).expect("ports stay below 32768");
        *cursor = (*cursor + 1) % PORT_SPAN;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            ports.push(port);
            listeners.push(listener);
        }
    }
    assert_eq!(ports.len(), n, "not enough free loopback ports");
    ports
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

/// PEM files of a throwaway certificate authority, a server certificate it signed for `127.0.0.1` and `localhost`,
/// and a client certificate it signed, for tests of TLS and mutual TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Makes the files in `dir` with the `openssl` command (P-256 keys, valid for a day). Panics with the command's
    /// output when it fails: a test needing TLS fails, never skips.
    pub fn make(dir: &std::path::Path) -> TlsFiles {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap_or_else(|e| panic!("the TLS tests need the openssl command: {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(key);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=agtest-ca",
        ]);
        run(&ca);
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            let (keyfile, csr, pem, extfile) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            std::fs::write(dir.join(&extfile), ext).expect("write extension file");
            let mut req = vec!["req"];
            req.extend(key);
            let subject = format!("/CN=agtest-{name}");
            req.extend(["-keyout", &keyfile, "-out", &csr, "-subj", &subject]);
            run(&req);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &extfile,
            ]);
        }
        TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }

    /// The nats-server `tls { … }` block for these files; `verify` asks every client for a certificate signed by
    /// the CA (mutual TLS).
    pub fn server_block(&self, verify: bool) -> String {
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n  timeout: 5\n}}\n",
            self.server_cert.display(),
            self.server_key.display(),
            self.ca.display()
        )
    }
}
