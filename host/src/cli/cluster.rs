//! Cluster mode of `serve` and `runner` (`--store nats://…`): join the JetStream cluster, follow its log into this
//! node's replica, and, on a runner, start stepping runs once this process holds the lease.
//!
//! Every node answers the whole API from its replica. Runners are candidates for the one lease: the holder steps
//! every run; the others wait as hot standbys and take over when it stops renewing. A process that loses the lease
//! exits at once (crash-only): its writes are already refused by the log, and a restart makes it a standby again.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use abstractgateway_store::Store;
use abstractgateway_store_nats::{Cluster, ClusterConfig, Lease, Tailer};

use super::EXIT_USAGE;
use crate::server::ServerConfig;
use crate::server::state::SharedState;

/// Exit code of a runner that lost its lease (EX_TEMPFAIL: restart it and it becomes a standby).
const EXIT_LEASE_LOST: i32 = 75;

/// A node's membership: the connection, the tailer feeding its replica, and the replica.
pub struct Node {
    cluster: Cluster,
    _tailer: Tailer,
    pub store: Store,
}

/// Connects, opens the replica in the data dir and waits until it has applied the whole log.
pub async fn join(cfg: &ServerConfig, url: &str) -> Result<Node, ExitCode> {
    let mut cc = match ClusterConfig::parse(url) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    if let Some(id) = cfg.node_id.as_deref().filter(|s| !s.is_empty()) {
        cc.node_id = id.to_string();
    }
    if let Some(secs) = lease_secs() {
        cc.lease = Duration::from_secs_f64(secs);
        cc.renew = Duration::from_secs_f64(secs / 10.0);
    }
    let cluster = match Cluster::connect(cc).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot join the cluster store {url}: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    let data_dir = cfg.data_dir.clone();
    let log = cluster.log();
    let store = match tokio::task::spawn_blocking(move || Store::open_replica(&data_dir, log)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => {
            eprintln!("error: opening the replica failed: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let Some(applier) = store.applier() else {
        eprintln!("error: the replica store does not accept log entries");
        return Err(ExitCode::from(1));
    };
    let tailer = cluster.tail(applier);
    tailer.caught_up().await;
    Ok(Node {
        cluster,
        _tailer: tailer,
        store,
    })
}

/// `ABSTRACTGATEWAY_CLUSTER_LEASE_S`: how long a runner's lease lives without renewal (default 10 s; renewed
/// every tenth of it). A crashed runner's runs move after about this long.
fn lease_secs() -> Option<f64> {
    std::env::var("ABSTRACTGATEWAY_CLUSTER_LEASE_S")
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (1.0..=600.0).contains(s))
}

impl Node {
    /// Waits for the lease (as long as it takes), then starts the runner of `state`. Returns the lease, to be
    /// released on a clean shutdown so that a standby takes over at once.
    pub async fn run_when_owner(&self, state: SharedState) -> Option<Lease> {
        let applier = self.store.applier()?;
        let on_loss = Box::new(|| {
            eprintln!(
                "error: this runner lost its lease (another runner owns the runs now); exiting"
            );
            std::process::exit(EXIT_LEASE_LOST);
        });
        let lease = match self.cluster.acquire(applier, on_loss).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot take the runner lease: {e}");
                std::process::exit(1);
            }
        };
        let gw = state.gw.clone();
        match tokio::task::spawn_blocking(move || gw.start_runner()).await {
            Ok(Ok(())) => {
                tracing::info!("this node holds the runner lease (epoch {})", lease.epoch());
                eprintln!(
                    "abstractgateway runner active (lease epoch {})",
                    lease.epoch()
                );
                Some(lease)
            }
            Ok(Err(e)) => {
                eprintln!("error: cannot start the runner: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("error: cannot start the runner: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Releases a held lease after the runner stopped (so a standby need not wait for it to expire).
pub async fn release(state: &SharedState, lease: Option<Arc<tokio::sync::Mutex<Option<Lease>>>>) {
    let gw = state.gw.clone();
    let _ = tokio::task::spawn_blocking(move || gw.shutdown()).await;
    if let Some(slot) = lease
        && let Some(lease) = slot.lock().await.take()
        && let Err(e) = lease.release().await
    {
        tracing::warn!("releasing the runner lease: {e}");
    }
}
