//! What the cluster tests share: a runtime, an in-memory replica, configs with a short lease.

#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abstractgateway_store::StoreError;
use abstractgateway_store::replica::{Applier, EntryKind};
use abstractgateway_store_nats::{Cluster, ClusterConfig};

/// A multi-thread runtime like the host's (the log blocks on its handle from plain threads). Also sends the
/// crate's logs to the test output (filtered by `RUST_LOG`, warnings by default).
pub fn runtime() -> tokio::runtime::Runtime {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `fut` on `rt`, failing the test when it takes longer than `secs`.
pub fn within<F: Future>(rt: &tokio::runtime::Runtime, secs: u64, what: &str, fut: F) -> F::Output {
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(secs), fut)
            .await
            .unwrap_or_else(|_| panic!("{what}: not done within {secs} s"))
    })
}

/// A cluster config for `url` with node id `node` and a short lease (2 s, renewed every 200 ms).
pub fn config(url: &str, node: &str) -> ClusterConfig {
    let mut cfg = ClusterConfig::parse(url).expect("cluster url");
    cfg.node_id = node.to_string();
    cfg.lease = Duration::from_secs(2);
    cfg.renew = Duration::from_millis(200);
    cfg
}

/// Connects with `cfg` on `rt` (30 s at most).
pub fn connect(rt: &tokio::runtime::Runtime, cfg: ClusterConfig) -> Cluster {
    let what = format!("connect {}", cfg.node_id);
    within(rt, 30, &what, Cluster::connect(cfg)).expect("connect")
}

/// A plain JetStream client on the cluster's first server, for what a test does behind the gateway's back.
pub async fn raw_jetstream(url: &str) -> async_nats::jetstream::Context {
    let first = url
        .trim_start_matches("nats://")
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let client = async_nats::connect(first).await.expect("raw client");
    async_nats::jetstream::new(client)
}

/// One applied entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub seq: u64,
    pub kind: EntryKind,
    pub entry: Vec<u8>,
}

/// An in-memory replica: every applied entry, in order.
#[derive(Default)]
pub struct MemApplier {
    entries: Mutex<Vec<Applied>>,
}

impl MemApplier {
    pub fn new() -> Arc<MemApplier> {
        Arc::new(MemApplier::default())
    }

    pub fn entries(&self) -> Vec<Applied> {
        self.entries.lock().expect("applier lock").clone()
    }
}

impl Applier for MemApplier {
    fn applied(&self) -> u64 {
        self.entries
            .lock()
            .expect("applier lock")
            .last()
            .map_or(0, |a| a.seq)
    }

    fn apply(&self, seq: u64, kind: EntryKind, entry: &[u8]) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().expect("applier lock");
        let last = entries.last().map_or(0, |a| a.seq);
        if seq <= last {
            return Err(StoreError::Corrupt(format!(
                "entry {seq} delivered after {last}"
            )));
        }
        entries.push(Applied {
            seq,
            kind,
            entry: entry.to_vec(),
        });
        Ok(())
    }
}

/// Polls `cond` every 20 ms until true; panics after `secs`.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not true within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
