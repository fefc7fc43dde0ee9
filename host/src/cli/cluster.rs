//! Cluster mode of `serve` and `runner` (`--store nats://…`): join the JetStream cluster, follow its log into this
//! node's replica, and, on a runner, step the runs of the shards whose leases this process holds.
//!
//! Every node answers the whole API from its replica. Runners share the shards: each takes leases up to its fair
//! share (the shards over the live runners), runs one loop per shard it holds, hands shards back when runners join,
//! and takes over those of a runner that stops renewing. A process that loses a lease exits at once (crash-only):
//! its writes to that shard are already refused by the log, and a restart makes it take its share again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use abstractgateway_store::Store;
use abstractgateway_store::artifacts::{ArtifactError, BlobBucket};
use abstractgateway_store_nats::{
    Bucket, BucketChange, Cluster, ClusterConfig, Gate, Lease, Presence, Security, Tailer,
};
use futures::StreamExt;

use super::EXIT_USAGE;
use crate::server::state::SharedState;
use crate::server::{self, ServerConfig};

/// Exit code of a runner that lost a shard's lease (EX_TEMPFAIL: restart it and it takes its share again).
const EXIT_LEASE_LOST: i32 = 75;

/// A node's membership: the connection, the tailer feeding its replica, and the replica.
pub struct Node {
    cluster: Arc<Cluster>,
    _tailer: Tailer,
    pub store: Store,
    bundles: Bucket,
    artifact_blobs: Bucket,
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
    match Security::from_env(|k| std::env::var(k).ok()) {
        Ok(mut security) => {
            // A tls:// URL requires TLS whatever the environment says.
            security.tls.required |= cc.security.tls.required;
            cc.security = security;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    if let Some(secs) = lease_secs() {
        cc.lease = Duration::from_secs_f64(secs);
        cc.renew = Duration::from_secs_f64(secs / 10.0);
    }
    match shard_count() {
        Ok(Some(n)) => cc.shards = n,
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
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
    let (bundles, artifact_blobs) = (cluster.bundles(), cluster.artifact_blobs());
    if let Err(e) = sync_bundles(&bundles, &cfg.flows_dir, cfg.max_bundle_bytes).await {
        eprintln!("error: syncing bundles with the cluster: {e}");
        return Err(ExitCode::from(1));
    }
    Ok(Node {
        cluster: Arc::new(cluster),
        _tailer: tailer,
        store,
        bundles,
        artifact_blobs,
    })
}

/// Whether a name from the bucket may be a file in FLOWS_DIR: a plain `.flow` file name (no path, no hidden file).
fn bundle_file_name(name: &str) -> bool {
    name.len() <= 255
        && name.ends_with(".flow")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
}

/// At startup: bundles of this node's FLOWS_DIR that the cluster lacks are published; the cluster's bundles are
/// installed here (the cluster's copy wins over a different local file of the same name).
async fn sync_bundles(bucket: &Bucket, dir: &Path, max: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let listed = bucket.list().await.map_err(|e| e.to_string())?;
    let names: HashSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    let local = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in local.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if bundle_file_name(&name) && !names.contains(name.as_str()) && entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).map_err(|e| format!("{name}: {e}"))?;
            bucket.put(&name, &bytes).await.map_err(|e| e.to_string())?;
        }
    }
    for (name, _) in &listed {
        install_from(bucket, dir, name, max).await?;
    }
    Ok(())
}

/// Installs the bucket's copy of `name` into `dir` when it differs from the local file; true when a file changed.
async fn install_from(bucket: &Bucket, dir: &Path, name: &str, max: u64) -> Result<bool, String> {
    if !bundle_file_name(name) {
        tracing::warn!("ignoring cluster bundle with an unusable name {name:?}");
        return Ok(false);
    }
    let max = if max == 0 { u64::MAX } else { max };
    let Some(bytes) = bucket.get(name, max).await.map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|local| local == bytes) {
        return Ok(false);
    }
    // Written whole, then renamed: a reload never reads half a bundle.
    let tmp = dir.join(format!(".{name}.cluster-tmp"));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(true)
}

/// Publishes this node's uploads and deletes to the bundle bucket.
struct Mirror(Bucket);

impl server::state::BundleMirror for Mirror {
    fn installed(
        &self,
        file_name: String,
        bytes: bytes::Bytes,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let bucket = self.0.clone();
        Box::pin(async move {
            bucket
                .put(&file_name, &bytes)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn removed(
        &self,
        file_name: String,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let bucket = self.0.clone();
        Box::pin(async move { bucket.delete(&file_name).await.map_err(|e| e.to_string()) })
    }
}

/// `ABSTRACTGATEWAY_CLUSTER_SHARDS`: how many shards runs are spread over (1 to 64; default 4). Every node of a
/// cluster must be started with the same count.
fn shard_count() -> Result<Option<u32>, String> {
    let Ok(raw) = std::env::var("ABSTRACTGATEWAY_CLUSTER_SHARDS") else {
        return Ok(None);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=abstractgateway_store_nats::MAX_SHARDS).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "ABSTRACTGATEWAY_CLUSTER_SHARDS must be a whole number from 1 to {}, not {raw:?}",
            abstractgateway_store_nats::MAX_SHARDS
        )),
    }
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

/// The artifact bytes bucket as the artifact store uses it: from its blocking threads.
struct ArtifactBlobs {
    bucket: Bucket,
    rt: tokio::runtime::Handle,
}

impl ArtifactBlobs {
    /// Runs a bucket request on the runtime and waits for it (the artifact store calls from blocking threads).
    fn wait<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, abstractgateway_store_nats::NatsError>>
        + Send
        + 'static,
    ) -> Result<T, ArtifactError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| ArtifactError::Unavailable("the bucket request was dropped".into()))?
            .map_err(|e| ArtifactError::Unavailable(e.to_string()))
    }
}

impl BlobBucket for ArtifactBlobs {
    fn put(&self, blob_id: &str, content: &[u8]) -> Result<(), ArtifactError> {
        let (bucket, name, bytes) = (self.bucket.clone(), blob_id.to_string(), content.to_vec());
        self.wait(async move { bucket.put_absent(&name, &bytes).await })
    }

    fn get(&self, blob_id: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, ArtifactError> {
        let (bucket, name) = (self.bucket.clone(), blob_id.to_string());
        self.wait(async move { bucket.get(&name, max_bytes).await })
    }
}

impl Node {
    /// Answers `GET /api/ready` for `state` from the cluster's connection: a node serves from its replica (caught up
    /// before it listens) and writes through the cluster, which it must reach.
    pub fn report_readiness(&self, state: &SharedState) {
        let cluster = self.cluster.clone();
        let _ = state.readiness.set(Arc::new(move || {
            let connected = cluster.connected();
            server::state::Readiness {
                ready: connected,
                detail: serde_json::json!({
                    "store": "cluster",
                    "node": cluster.config().node_id,
                    "connected": connected,
                    "applied": cluster.applied(),
                    "shard_count": cluster.config().shards,
                }),
            }
        }));
    }

    /// How many shards the cluster spreads runs over.
    pub fn shards(&self) -> u32 {
        self.cluster.config().shards
    }

    /// Makes `state`'s artifacts the cluster's: metadata in the replicated store, bytes in the artifact bucket, so
    /// every node serves what a runner's plugins stored. Call before the node serves or runs.
    pub fn share_artifacts(&self, state: &SharedState) -> Result<(), ArtifactError> {
        let blobs = ArtifactBlobs {
            bucket: self.artifact_blobs.clone(),
            rt: tokio::runtime::Handle::current(),
        };
        state.artifacts.share(self.store.clone(), Arc::new(blobs))
    }

    /// Publishes the bundle changes made through `state`'s API, and installs (then reloads) those made on other
    /// nodes, for as long as the process runs.
    ///
    /// The watch delivers changes at once; a full pass every [`RECONCILE`] also repairs whatever a watch missed
    /// (a stalled consumer, a failed read), so every node converges on the bucket within that bound.
    pub fn mirror_bundles(&self, state: SharedState) {
        let _ = state
            .bundle_mirror
            .set(Arc::new(Mirror(self.bundles.clone())));
        let bucket = self.bundles.clone();
        tokio::spawn(async move {
            let mut mirror = Mirrored::default();
            loop {
                match bucket.watch().await {
                    Ok(changes) => {
                        // Whatever changed while no watch ran is picked up by a full pass first.
                        mirror.apply(&bucket, &state, None).await;
                        let mut changes = std::pin::pin!(changes);
                        let mut tick = tokio::time::interval(RECONCILE);
                        tick.tick().await;
                        loop {
                            tokio::select! {
                                change = changes.next() => match change {
                                    Some(change) => mirror.apply(&bucket, &state, Some(change)).await,
                                    None => break,
                                },
                                _ = tick.tick() => mirror.apply(&bucket, &state, None).await,
                            }
                        }
                    }
                    Err(e) => tracing::warn!("watching the cluster's bundles: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Makes this node a runner: it announces itself, takes the leases of a fair share of the shards (all of them
    /// while it runs alone), starts one runner loop per shard it holds, and hands shards back when more runners
    /// join (so each holds about shards / runners). Runs for as long as the process; [`release`] ends it.
    pub fn run_shards(&self, state: SharedState) -> Arc<Shards> {
        let total = self.cluster.config().shards;
        state.gw.set_shards(total);
        let presence = self.cluster.announce();
        let shards = Arc::new(Shards {
            total,
            alive: presence.counter(),
            held_count: Arc::new(AtomicUsize::new(0)),
            held: tokio::sync::Mutex::new(HashMap::new()),
            presence: tokio::sync::Mutex::new(Some(presence)),
            closing: AtomicBool::new(false),
        });
        let Some(applier) = self.store.applier() else {
            eprintln!("error: the replica store does not accept log entries");
            std::process::exit(1);
        };
        for shard in 0..total {
            spawn_acquire(
                self.cluster.clone(),
                shard,
                state.clone(),
                shards.clone(),
                applier.clone(),
            );
        }
        let (cluster, every) = (self.cluster.clone(), self.cluster.config().renew);
        let (state2, shards2, applier2) = (state, shards.clone(), applier);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if shards2.closing.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(shard) = shards2.one_too_many().await {
                    shards2
                        .hand_back(&cluster, &state2, shard, applier2.clone())
                        .await;
                }
            }
        });
        shards
    }
}

/// The acquiring task of one shard.
fn spawn_acquire(
    cluster: Arc<Cluster>,
    shard: u32,
    state: SharedState,
    shards: Arc<Shards>,
    applier: Arc<dyn abstractgateway_store::replica::Applier>,
) {
    tokio::spawn(async move {
        let on_loss = Box::new(move || {
            eprintln!(
                "error: this runner lost the lease of shard {shard} (another runner owns its runs now); exiting"
            );
            std::process::exit(EXIT_LEASE_LOST);
        });
        let gate_shards = shards.clone();
        let gate: Gate = Arc::new(move || gate_shards.may_take_one());
        let lease = match cluster.acquire_shard(shard, applier, on_loss, gate).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot take the lease of shard {shard}: {e}");
                std::process::exit(1);
            }
        };
        if shards.closing.load(Ordering::SeqCst) {
            let _ = lease.release().await;
            return;
        }
        shards.held_count.fetch_add(1, Ordering::SeqCst);
        let epoch = lease.epoch();
        shards.held.lock().await.insert(shard, lease);
        let gw = state.gw.clone();
        match tokio::task::spawn_blocking(move || gw.start_shard(shard)).await {
            Ok(Ok(())) => {
                tracing::info!(shard, epoch, "this node steps the shard");
                eprintln!("abstractgateway runner active on shard {shard} (lease epoch {epoch})");
            }
            Ok(Err(e)) => {
                eprintln!("error: cannot start the runner of shard {shard}: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("error: cannot start the runner of shard {shard}: {e}");
                std::process::exit(1);
            }
        }
    });
}

/// The shards this runner holds, and how it judges its share.
pub struct Shards {
    total: u32,
    /// Live runners, as the presence watch counts them (this one included).
    alive: Arc<AtomicUsize>,
    /// How many leases this runner holds (read by the acquiring tasks' gate).
    held_count: Arc<AtomicUsize>,
    held: tokio::sync::Mutex<HashMap<u32, Lease>>,
    presence: tokio::sync::Mutex<Option<Presence>>,
    /// Set on shutdown: no shard is taken or handed back any more.
    closing: AtomicBool,
}

impl Shards {
    /// The most shards one runner should hold: the shards spread evenly over the live runners, rounded up.
    fn share(&self) -> usize {
        let alive = self.alive.load(Ordering::SeqCst).max(1);
        (self.total as usize).div_ceil(alive)
    }

    /// Whether this runner may take one more shard now.
    fn may_take_one(&self) -> bool {
        !self.closing.load(Ordering::SeqCst)
            && self.held_count.load(Ordering::SeqCst) < self.share()
    }

    /// A shard this runner holds beyond its share (the highest), if any.
    async fn one_too_many(&self) -> Option<u32> {
        let held = self.held.lock().await;
        if held.len() <= self.share() {
            return None;
        }
        held.keys().max().copied()
    }

    /// Hands `shard` back: its loop finishes and stops, then the lease is deleted so another runner takes it at
    /// once; this runner then waits for it again (it takes it back only when its share grows).
    async fn hand_back(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        state: &SharedState,
        shard: u32,
        applier: Arc<dyn abstractgateway_store::replica::Applier>,
    ) {
        let gw = state.gw.clone();
        let _ = tokio::task::spawn_blocking(move || gw.stop_shard(shard)).await;
        let Some(lease) = self.held.lock().await.remove(&shard) else {
            return;
        };
        self.held_count.fetch_sub(1, Ordering::SeqCst);
        if let Err(e) = lease.hand_back().await {
            tracing::warn!(shard, "handing the shard back: {e}");
        }
        cluster.forget_shard(shard);
        tracing::info!(shard, "shard handed back to balance the runners");
        eprintln!("abstractgateway runner handed shard {shard} back");
        spawn_acquire(cluster.clone(), shard, state.clone(), self.clone(), applier);
    }
}

/// How often a node compares its bundles with the bucket even when the watch reported nothing.
const RECONCILE: Duration = Duration::from_secs(5);

/// What a node's mirror has seen of the bucket.
#[derive(Default)]
struct Mirrored {
    /// Names the bucket held at the last full pass: one of them missing at the next pass was deleted on
    /// another node (a file the bucket never had is the operator's and is left alone).
    known: HashSet<String>,
}

impl Mirrored {
    /// Installs one change (or, with `None`, makes the flows dir match the whole bucket) and reloads when a file
    /// changed.
    async fn apply(&mut self, bucket: &Bucket, state: &SharedState, change: Option<BucketChange>) {
        let dir = state.cfg.flows_dir.clone();
        let max = state.cfg.max_bundle_bytes;
        let _guard = state.reload_lock.lock().await;
        let install = |name: String| {
            let dir = dir.clone();
            async move {
                install_from(bucket, &dir, &name, max)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!("installing cluster bundle {name}: {e}");
                        false
                    })
            }
        };
        let changed = match change {
            None => match bucket.list().await {
                Ok(list) => {
                    let names: HashSet<String> = list.into_iter().map(|(n, _)| n).collect();
                    let mut any = false;
                    for name in &names {
                        any |= install(name.clone()).await;
                    }
                    for gone in self.known.difference(&names) {
                        any |= remove_local(&dir, gone);
                    }
                    self.known = names;
                    any
                }
                Err(e) => {
                    tracing::warn!("listing the cluster's bundles: {e}");
                    false
                }
            },
            Some(BucketChange::Put { name, .. }) => {
                self.known.insert(name.clone());
                install(name).await
            }
            Some(BucketChange::Deleted { name }) => {
                self.known.remove(&name);
                remove_local(&dir, &name)
            }
        };
        if changed {
            let state = state.clone();
            let _ = tokio::task::spawn_blocking(move || state.reload()).await;
        }
    }
}

/// Removes the local copy of a bundle deleted from the bucket; true when a file went.
fn remove_local(dir: &Path, name: &str) -> bool {
    bundle_file_name(name) && std::fs::remove_file(dir.join(name)).is_ok()
}

/// Stops this node's runner loops, then releases every lease it holds (so other runners need not wait for them to
/// expire) and its presence.
pub async fn release(state: &SharedState, shards: Option<Arc<Shards>>) {
    if let Some(shards) = &shards {
        shards.closing.store(true, Ordering::SeqCst);
    }
    let gw = state.gw.clone();
    let _ = tokio::task::spawn_blocking(move || gw.shutdown()).await;
    let Some(shards) = shards else {
        return;
    };
    let held: Vec<Lease> = shards.held.lock().await.drain().map(|(_, l)| l).collect();
    for lease in held {
        let shard = lease.shard();
        if let Err(e) = lease.release().await {
            tracing::warn!(shard, "releasing a runner lease: {e}");
        }
    }
    if let Some(p) = shards.presence.lock().await.take() {
        p.leave().await;
    }
}
