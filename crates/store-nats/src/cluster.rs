//! [`Cluster`]: one node's connection to the cluster, the stream and the lease bucket it checks or creates, and
//! the log, tailers and lease built on them.

use std::sync::Arc;
use std::time::Duration;

use abstractgateway_store::replica::Applier;
use async_nats::jetstream::{self, ErrorCode, kv, stream};

use crate::Bucket;
use async_nats::{ConnectOptions, ServerAddr};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::config::version_supported;
use crate::lease::{self, Lease};
use crate::log::NatsLog;
use crate::tail::{Subjects, Tailer};
use crate::{ClusterConfig, NatsError};

/// The stream's duplicate window: a retried append with the same `Nats-Msg-Id` within it lands once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The largest log entry (payload and headers).
const MAX_ENTRY: i32 = 8 * 1024 * 1024;
/// How long `connect` keeps trying to create or check the stream and the bucket.
const SETUP_DEADLINE: Duration = Duration::from_secs(30);
/// How long one JetStream request (or one publish's acknowledgment) may take before it is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// One node's membership in the cluster.
pub struct Cluster {
    pub(crate) cfg: ClusterConfig,
    pub(crate) js: jetstream::Context,
    pub(crate) kv: kv::Store,
    pub(crate) bundles: Bucket,
    pub(crate) artifact_blobs: Bucket,
    pub(crate) subjects: Subjects,
    log: Arc<NatsLog>,
    /// The runtime `connect` ran in: tailers run their reading task on it.
    handle: Handle,
    /// Bumped by every tailer after each applied entry: what waiting on the replica wakes on.
    pub(crate) progress: Arc<watch::Sender<u64>>,
    /// Set by the first `acquire`: a process takes the lease once.
    /// Shards whose lease this process holds or is acquiring.
    pub(crate) leased: std::sync::Mutex<std::collections::HashSet<u32>>,
}

impl Cluster {
    /// Connects (every configured server is a seed; reconnects forever), refuses servers older than 2.12, and
    /// creates the stream `<PREFIX>_LOG` and the bucket `<PREFIX>_LEASES`, or checks that the existing ones have
    /// the settings cluster mode relies on (retrying for up to 30 s while the cluster is still forming). Call it inside the tokio runtime that will run the cluster's tasks:
    /// the log keeps a handle to it.
    pub async fn connect(cfg: ClusterConfig) -> Result<Cluster, NatsError> {
        cfg.validate()?;
        let handle = Handle::current();
        let mut addrs = Vec::with_capacity(cfg.servers.len());
        for server in &cfg.servers {
            let addr: ServerAddr = format!("nats://{server}")
                .parse()
                .map_err(|e| NatsError::Config(format!("server {server}: {e}")))?;
            addrs.push(addr);
        }
        let options = cfg.security.apply(ConnectOptions::new()).await?;
        let client = options
            .name(format!("abstractgateway {}", cfg.node_id))
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .event_callback(|event| async move {
                tracing::info!(%event, "NATS connection event");
            })
            .connect(addrs)
            .await
            .map_err(|e| NatsError::Connect(e.to_string()))?;
        let version = client.server_info().version;
        if !version_supported(&version) {
            return Err(NatsError::ServerTooOld { version });
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client);
        let subjects = Subjects {
            stream: cfg.stream_name(),
            journal: cfg.journal_subject(),
            intake: cfg.intake_subject(),
        };
        // A cluster that is still forming (servers starting together with this one) times requests out or has no
        // peers to place the stream on yet: keep trying for a while. A mismatch is final.
        let deadline = tokio::time::Instant::now() + SETUP_DEADLINE;
        let (kv, bundles, artifact_blobs) = loop {
            let setup = async {
                ensure_stream(&js, &cfg, &subjects).await?;
                let kv = ensure_bucket(&js, &cfg).await?;
                agree_on_shards(&kv, cfg.shards).await?;
                let bundles = Bucket::open(&js, &cfg, "BUNDLES", "abstractgateway bundles").await?;
                let blobs =
                    Bucket::open(&js, &cfg, "ARTIFACTS", "abstractgateway run artifact bytes")
                        .await?;
                Ok::<_, NatsError>((kv, bundles, blobs))
            };
            match setup.await {
                Ok(done) => break done,
                Err(err @ NatsError::Request { .. }) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %err, "setting up the cluster's stream failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => return Err(err),
            }
        };
        let log = Arc::new(NatsLog::new(
            js.clone(),
            handle.clone(),
            subjects.stream.clone(),
            subjects.journal.clone(),
            subjects.intake.clone(),
        ));
        let (progress, _) = watch::channel(0);
        Ok(Cluster {
            cfg,
            js,
            kv,
            bundles,
            artifact_blobs,
            subjects,
            log,
            handle,
            progress: Arc::new(progress),
            leased: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Whether the connection to the cluster is up now (it reconnects by itself; writes wait for it).
    pub fn connected(&self) -> bool {
        self.js.client().connection_state() == async_nats::connection::State::Connected
    }

    /// The last log position this node's tailers applied.
    pub fn applied(&self) -> u64 {
        *self.progress.borrow()
    }

    /// The configuration this node joined with.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The replicated log the store writes to (owner appends need the lease, see [`Cluster::acquire`]).
    pub fn log(&self) -> Arc<NatsLog> {
        self.log.clone()
    }

    /// Starts feeding `applier` every entry of the stream after `applier.applied()`, in order, once each: a task on
    /// the cluster's runtime reads, a thread of its own applies. An entry the applier refuses ends the process
    /// (status 70).
    pub fn tail(&self, applier: Arc<dyn Applier>) -> Tailer {
        Tailer::start(
            &self.handle,
            self.js.clone(),
            self.subjects.clone(),
            applier,
            self.progress.clone(),
        )
    }

    /// Waits (as long as it takes) until this node holds the lease of shard 0, has appended its takeover marker,
    /// and `applier` (fed by a [`Tailer`] of this cluster) has applied everything up to that marker. From then on
    /// [`Cluster::log`] accepts owner appends. `on_loss` is called (from a runtime task) if the lease is lost
    /// later: another node took it, or no renewal was acknowledged for 0.8 x the lease; the log is fenced first.
    pub async fn acquire(
        &self,
        applier: Arc<dyn Applier>,
        on_loss: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Lease, NatsError> {
        self.acquire_shard(0, applier, on_loss, Arc::new(|| true))
            .await
    }

    /// [`Cluster::acquire`] for `shard`, taking a free or expired lease only while `gate` allows (a runner that
    /// holds its fair share of the shards waits). Once it returns, `shard`'s journal accepts this process's
    /// owner appends.
    pub async fn acquire_shard(
        &self,
        shard: u32,
        applier: Arc<dyn Applier>,
        on_loss: Box<dyn Fn() + Send + Sync>,
        gate: lease::Gate,
    ) -> Result<Lease, NatsError> {
        if self.log.is_fenced() {
            return Err(NatsError::Fenced);
        }
        if !lock(&self.leased).insert(shard) {
            return Err(NatsError::AlreadyHeld);
        }
        // Not acquired (an error, or this future dropped): another call may try again. One that had won the key
        // fenced the log on its way out, so that call is refused with `Fenced`.
        let mut pending = Pending {
            leased: &self.leased,
            shard,
            armed: true,
        };
        let lease = lease::acquire(self, self.log.clone(), applier, on_loss, shard, gate).await?;
        pending.armed = false;
        Ok(lease)
    }

    /// Forgets that this process holds `shard` (its lease was handed back): it may be acquired again.
    pub fn forget_shard(&self, shard: u32) {
        lock(&self.leased).remove(&shard);
    }
}

/// A lock that a panic elsewhere does not poison for good.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Clears a `Cluster`'s "lease taken" mark of a shard when dropped while armed.
struct Pending<'a> {
    leased: &'a std::sync::Mutex<std::collections::HashSet<u32>>,
    shard: u32,
    armed: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(self.leased).remove(&self.shard);
        }
    }
}

/// The key recording how many shards the cluster has.
const SHARDS_KEY: &str = "config.shards";

/// Records the shard count (first node) or checks it (every later one): runs hash to shards, so two nodes that
/// disagree would step the same run twice.
async fn agree_on_shards(kv: &kv::Store, shards: u32) -> Result<(), NatsError> {
    let mine = shards.to_string();
    match kv.create(SHARDS_KEY, mine.clone().into()).await {
        Ok(_) => return Ok(()),
        Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(err) => return Err(NatsError::request("recording the shard count", err)),
    }
    let recorded = kv
        .get(SHARDS_KEY)
        .await
        .map_err(|e| NatsError::request("reading the shard count", e))?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if recorded == mine {
        Ok(())
    } else {
        Err(NatsError::Config(format!(
            "the cluster has {recorded} shards; this node was started with {mine}              (ABSTRACTGATEWAY_CLUSTER_SHARDS must be the same on every node)"
        )))
    }
}

/// Creates the log stream, or checks the existing one.
async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    subjects: &Subjects,
) -> Result<(), NatsError> {
    let name = subjects.stream.clone();
    let wanted = stream::Config {
        name: name.clone(),
        description: Some("abstractgateway replicated log".into()),
        // Shard 0's journal, the other shards' (`<journal>.<n>`), intake.
        subjects: vec![
            subjects.journal.clone(),
            format!("{}.*", subjects.journal),
            subjects.intake.clone(),
        ],
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_message_size: MAX_ENTRY,
        deny_delete: true,
        deny_purge: true,
        max_age: Duration::ZERO,
        allow_direct: false,
        ..Default::default()
    };
    let info = match existing_stream(js, &name).await? {
        // A log made before shards had their own journals: add their subject (nothing else changes).
        Some(info)
            if {
                let mut old = info.config.subjects.clone();
                old.sort();
                let mut first = vec![subjects.journal.clone(), subjects.intake.clone()];
                first.sort();
                old == first
            } =>
        {
            let mut config = info.config.clone();
            config.subjects = wanted.subjects.clone();
            js.update_stream(config)
                .await
                .map_err(|e| NatsError::request(format!("adding shard journals to {name}"), e))?
        }
        Some(info) => info,
        None => match js.create_stream(wanted.clone()).await {
            Ok(mut s) => s
                .info()
                .await
                .map_err(|e| NatsError::request(format!("reading stream {name}"), e))?
                .clone(),
            // Another node may have created it at the same moment: check what is there.
            Err(err) => existing_stream(js, &name)
                .await?
                .ok_or_else(|| NatsError::request(format!("creating stream {name}"), err))?,
        },
    };
    let c = &info.config;
    let mut differences = Vec::new();
    let mut have_subjects = c.subjects.clone();
    have_subjects.sort();
    let mut want_subjects = wanted.subjects.clone();
    want_subjects.sort();
    if have_subjects != want_subjects {
        differences.push(format!("subjects {have_subjects:?}, not {want_subjects:?}"));
    }
    if c.storage != stream::StorageType::File {
        differences.push("memory storage, not file".into());
    }
    if c.num_replicas != cfg.replicas {
        differences.push(format!("{} replicas, not {}", c.num_replicas, cfg.replicas));
    }
    if c.retention != stream::RetentionPolicy::Limits {
        differences.push(format!("retention {:?}, not limits", c.retention));
    }
    if c.max_age != Duration::ZERO
        || c.max_messages > 0
        || c.max_bytes > 0
        || c.max_messages_per_subject > 0
    {
        differences.push("a limit (age, messages or bytes) that would drop entries".into());
    }
    if !c.deny_delete || !c.deny_purge {
        differences.push("deleting or purging entries is allowed".into());
    }
    if c.duplicate_window < DUPLICATE_WINDOW {
        differences.push(format!(
            "duplicate window {:?}, under {DUPLICATE_WINDOW:?}",
            c.duplicate_window
        ));
    }
    if c.max_message_size > 0 && c.max_message_size < MAX_ENTRY {
        differences.push(format!(
            "max message size {}, under {MAX_ENTRY}",
            c.max_message_size
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(NatsError::Mismatch {
            name,
            differences: differences.join("; "),
        })
    }
}

/// The stream's info, `None` when it does not exist.
async fn existing_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Info>, NatsError> {
    match js.get_stream(name).await {
        Ok(s) => Ok(Some(s.cached_info().clone())),
        Err(err) => match err.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(NatsError::request(format!("reading stream {name}"), err)),
        },
    }
}

/// Creates the lease bucket, or checks the existing one.
async fn ensure_bucket(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
) -> Result<kv::Store, NatsError> {
    let bucket = cfg.lease_bucket();
    let stream_name = format!("KV_{bucket}");
    let info = match existing_stream(js, &stream_name).await? {
        Some(info) => info,
        None => {
            let created = js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    description: "abstractgateway shard leases".into(),
                    history: 1,
                    max_age: Duration::ZERO,
                    storage: stream::StorageType::File,
                    num_replicas: cfg.replicas,
                    ..Default::default()
                })
                .await;
            match existing_stream(js, &stream_name).await? {
                Some(info) => info,
                None => {
                    let err = created.err().map(|e| e.to_string()).unwrap_or_default();
                    return Err(NatsError::request(format!("creating bucket {bucket}"), err));
                }
            }
        }
    };
    let c = &info.config;
    let mut differences = Vec::new();
    if c.max_messages_per_subject != 1 {
        differences.push(format!("history {}, not 1", c.max_messages_per_subject));
    }
    if c.num_replicas != cfg.replicas {
        differences.push(format!("{} replicas, not {}", c.num_replicas, cfg.replicas));
    }
    if c.max_age != Duration::ZERO {
        differences.push(format!("a TTL of {:?}", c.max_age));
    }
    if c.storage != stream::StorageType::File {
        differences.push("memory storage, not file".into());
    }
    if !differences.is_empty() {
        return Err(NatsError::Mismatch {
            name: bucket,
            differences: differences.join("; "),
        });
    }
    js.get_key_value(&bucket)
        .await
        .map_err(|e| NatsError::request(format!("opening bucket {bucket}"), e))
}
