//! The store's contract (every case the embedded store and the in-process log pass) on a replica of a real
//! JetStream log: a nats-server started here, a fresh stream (prefix) per case, the replica owning the log
//! through the real lease.

mod common;

use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use abstractgateway_store::Store;
use abstractgateway_store::contract::{self, Backend, Case, ExternalLog};
use abstractgateway_store_nats::{Cluster, Lease, Tailer};
use abstractgateway_testkit::nats::NatsCluster;
use common::{config, runtime};

/// Replicas of one JetStream log (one stream prefix); each open is a new node (connection, tailer, lease).
struct JetStreamLog {
    url: String,
    prefix: String,
    rt: Arc<tokio::runtime::Runtime>,
    nodes: AtomicUsize,
}

/// What a node keeps alive for its store; dropping it releases the lease, so a reopen takes over at once.
struct Node {
    rt: Arc<tokio::runtime::Runtime>,
    lease: Option<Lease>,
    _tailer: Tailer,
    _cluster: Cluster,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            self.rt.spawn(async move {
                let _ = tx.send(lease.release().await);
            });
            let released = rx.recv_timeout(Duration::from_secs(20));
            assert!(
                matches!(released, Ok(Ok(()))),
                "releasing the lease: {released:?}"
            );
        }
    }
}

/// Runs `fut` on the log's runtime and waits for it from any thread (a contract case may be inside a runtime).
fn wait<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the cluster answered within 60 s")
}

impl ExternalLog for JetStreamLog {
    fn open_owner(&self, dir: &Path) -> (Store, Box<dyn Any>) {
        let n = self.nodes.fetch_add(1, Ordering::SeqCst);
        let mut cfg = config(&self.url, &format!("node-{n}"));
        cfg.prefix = self.prefix.clone();
        let cluster = wait(&self.rt, Cluster::connect(cfg)).expect("connect");
        let store = Store::open_replica(dir, cluster.log()).expect("open the replica");
        let applier = store.applier().expect("a replica applies");
        let tailer = cluster.tail(applier.clone());
        // The runtime's handle is what the lease's tasks run on; `acquire` borrows the cluster, so it runs in a
        // scoped block on the runtime from this (non-runtime) helper thread.
        let lease = std::thread::scope(|s| {
            s.spawn(|| {
                self.rt.block_on(async {
                    tailer.caught_up().await;
                    cluster.acquire(applier, Box::new(|| {})).await
                })
            })
            .join()
            .expect("acquire thread")
        })
        .expect("take the lease");
        let node = Node {
            rt: self.rt.clone(),
            lease: Some(lease),
            _tailer: tailer,
            _cluster: cluster,
        };
        (store, Box::new(node))
    }
}

#[test]
fn the_store_contract_holds_on_a_jetstream_log() {
    let nats = NatsCluster::start(1);
    let rt = Arc::new(runtime());
    let cases = contract::cases();
    assert!(cases.len() >= 20, "the contract lists its cases");
    for (i, (name, case)) in cases.into_iter().enumerate() {
        eprintln!("contract case {name}");
        let backend = Backend::External(Arc::new(JetStreamLog {
            url: nats.url(),
            prefix: format!("C{i}"),
            rt: rt.clone(),
            nodes: AtomicUsize::new(0),
        }));
        match case {
            Case::Sync(f) => f(backend),
            Case::Async(f) => {
                let case_rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("case runtime");
                case_rt.block_on(f(backend));
            }
        }
    }
}
