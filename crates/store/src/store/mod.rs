//! The durable store: runs, ledgers, the command inbox and small metadata in one fjall database (`<data>/db/`).
//!
//! One committer thread owns every write and makes each group of requests durable with a single fsync before
//! anything is acknowledged or becomes visible. Readers use the snapshot taken after the last fsync, so they never
//! see a record that a crash could still take away.

mod batch;
#[doc(hidden)]
pub mod codec;
pub(crate) mod commands;
mod committer;
mod error;
mod heads;
mod keys;
mod ledger;
mod lock;
pub mod replica;
mod runs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use fjall::{Database, Readable};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::run::RunStatus;
use committer::{Reply, Request};
use heads::Durable;
use keys::Keyspaces;
use lock::DirLock;

pub use batch::Batch;
pub use error::StoreError;
pub use runs::UnreadableRun;

/// Name of the fjall database directory inside the data dir.
const DB_DIR: &str = "db";

/// One ledger record exactly as stored, with its 1-based position (the cursor after reading it).
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    /// 1-based position in the run's ledger.
    pub seq: u64,
    /// The StepRecord JSON, untouched.
    pub json: Box<RawValue>,
}

/// What watchers of a run see: its durable ledger length and status (None while the run is unknown).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct RunHead {
    /// Number of durable ledger records.
    pub ledger_len: u64,
    /// Durable status, if the run exists.
    pub status: Option<RunStatus>,
}

/// A command as submitted, before the inbox assigns its seq.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCommand {
    /// Client idempotency key; empty means "assign one" (as the seed does, losing idempotency).
    pub command_id: String,
    /// Target run (or session) id.
    pub run_id: String,
    /// Command type (`pause`, `resume`, ...).
    pub kind: String,
    /// Type-specific payload.
    pub payload: Value,
    /// Client timestamp, stored verbatim; server time when absent.
    pub ts: Option<String>,
    /// Optional client identifier.
    pub client_id: Option<String>,
}

/// Result of appending a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The command's inbox seq (the original one for a duplicate).
    pub seq: u64,
    /// True when the command id was already in the inbox.
    pub duplicate: bool,
}

/// Filters for `list_runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    /// Maximum number of runs returned.
    pub limit: usize,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    pub workflow_id: Option<String>,
    /// Only runs of this session.
    pub session_id: Option<String>,
    /// Only runs without a parent.
    pub root_only: bool,
}

impl Default for RunQuery {
    /// The seed's default page: 50 runs, no filter.
    fn default() -> Self {
        RunQuery {
            limit: 50,
            status: None,
            workflow_id: None,
            session_id: None,
            root_only: false,
        }
    }
}

/// Handle returned by `Store::submit`; the batch is queued whether or not anyone waits.
pub struct CommitTicket {
    rx: Result<mpsc::Receiver<Result<(), StoreError>>, StoreError>,
}

impl CommitTicket {
    /// Blocks until the batch is durable (or failed).
    pub fn wait(self) -> Result<(), StoreError> {
        self.rx?.recv().map_err(|_| StoreError::Closed)?
    }
}

/// State shared by readers and the committer thread.
pub(crate) struct Shared {
    db: Database,
    ks: Keyspaces,
    durable: Durable,
    commands_tx: watch::Sender<u64>,
    /// Bumped when command outcomes become durable (callers waiting for one command's outcome wake on it).
    outcomes_tx: watch::Sender<u64>,
    /// Cluster mode: the log this store is a replica of.
    replica: Option<replica::Replica>,
}

impl Shared {
    /// Wakes whoever waits for new commands or for outcomes, once `changes` are durable and readable (both the
    /// embedded committer and a replica's applier call it).
    pub(crate) fn wake_watchers(&self, changes: &heads::Changes) {
        if let Some(seq) = changes.last_command {
            self.commands_tx.send_replace(seq);
        }
        if changes.outcomes > 0 {
            self.outcomes_tx.send_modify(|n| *n += changes.outcomes);
        }
    }
}

struct Inner {
    // Dropped first: with the committer joined this is the last handle, so fjall shuts down before the lock goes.
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Request>>,
    committer: Option<JoinHandle<()>>,
    data_dir: PathBuf,
    _lock: DirLock,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Disconnecting the channel lets the committer finish what is queued and exit.
        drop(self.tx.take());
        if let Some(handle) = self.committer.take()
            && handle.join().is_err()
        {
            tracing::error!("store committer thread panicked");
        }
    }
}

/// The durable store; cheap to clone (all clones share one database and one committer).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating) the store under `data_dir`; refused with `StoreError::Locked` while another process (or
    /// another `Store` in this process) has it open.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, None)
    }

    /// Opens (creating) the store under `data_dir` as a replica of `log` (cluster mode): writes go to the log, and
    /// the store changes only as a tailer applies the log's entries (see [`replica`]). Locked like [`Store::open`].
    pub fn open_replica(data_dir: &Path, log: Arc<dyn replica::Log>) -> Result<Store, StoreError> {
        Store::open_with(data_dir, Some(log))
    }

    /// True for a replica of a cluster log.
    pub fn is_replica(&self) -> bool {
        self.shared().replica.is_some()
    }

    fn open_with(data_dir: &Path, log: Option<Arc<dyn replica::Log>>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::io(format!("cannot create data dir {}", data_dir.display()), &e)
        })?;
        let lock = DirLock::acquire(data_dir)?;
        let db_path = data_dir.join(DB_DIR);
        let db = Database::builder(&db_path)
            .manual_journal_persist(true)
            .open()
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", db_path.display())))?;
        let ks = Keyspaces::open(&db)?;
        runs::build_scope_indexes(&db, &ks)?;
        let last_command = match ks.commands.last_key_value() {
            Some(guard) => keys::decode_seq(&guard.key()?)
                .ok_or_else(|| StoreError::Corrupt("a command key is not 8 bytes".to_string()))?,
            None => 0,
        };
        let (commands_tx, _) = watch::channel(last_command);
        let replica = match log {
            Some(log) => Some(replica::Replica::new(log, &ks)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            durable: Durable::new(db.snapshot()),
            db,
            ks,
            commands_tx,
            outcomes_tx: watch::channel(0).0,
            replica,
        });
        let (tx, committer) = if shared.replica.is_some() {
            replica::committer::spawn(shared.clone())?
        } else {
            committer::spawn(shared.clone(), last_command + 1)?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                tx: Some(tx),
                committer: Some(committer),
                data_dir: data_dir.to_path_buf(),
                _lock: lock,
            }),
        })
    }

    /// The data dir this store was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Applies a batch atomically and returns once it is fsynced; concurrent callers share one fsync.
    pub fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.submit(batch).wait()
    }

    /// `commit` for async callers; waits without blocking a runtime worker.
    pub async fn commit_async(&self, batch: Batch) -> Result<(), StoreError> {
        let (reply, rx) = Reply::future();
        self.send(Request::Write { batch, reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a batch now (so it keeps its place in submission order) and resolves once it is durable.
    pub fn submit_async(
        &self,
        batch: Batch,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (reply, rx) = Reply::future();
        let sent = self.send(Request::Write { batch, reply });
        async move {
            sent?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Queues a batch and returns at once; batches apply in submission order.
    pub fn submit(&self, batch: Batch) -> CommitTicket {
        let (reply, rx) = Reply::blocking();
        CommitTicket {
            rx: self.send(Request::Write { batch, reply }).map(|()| rx),
        }
    }

    /// A small caller-owned value (idempotency keys etc.), as of the last fsync.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if keys::check_id("meta key", key).is_err() {
            return Ok(None);
        }
        let view = self.shared().durable.view();
        Ok(view
            .get(&self.shared().ks.meta, key.as_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Meta keys starting with `prefix`, in order, at most `limit`, as of the last fsync.
    pub fn meta_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let view = self.shared().durable.view();
        let mut out = Vec::new();
        for guard in view
            .prefix(&self.shared().ks.meta, prefix.as_bytes())
            .take(limit)
        {
            let key = guard.key()?;
            out.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(out)
    }

    /// Meta entries (key and value) whose key starts with `prefix`, in key order, at most `limit`, as of the last
    /// fsync: one pass for callers that read every value under a prefix.
    pub fn meta_scan(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let view = self.shared().durable.view();
        let mut out = Vec::new();
        for guard in view
            .prefix(&self.shared().ks.meta, prefix.as_bytes())
            .take(limit)
        {
            let (key, value) = guard.into_inner()?;
            out.push((String::from_utf8_lossy(&key).into_owned(), value.to_vec()));
        }
        Ok(out)
    }

    /// Overwrites a run's stored bytes behind the committer's back, as a damaged disk would (contract tests).
    #[cfg(any(test, feature = "contract"))]
    pub(crate) fn damage_run(&self, run_id: &str, bytes: &str) {
        self.shared()
            .ks
            .runs
            .insert(run_id, bytes)
            .expect("write the damaged run");
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn send(&self, req: Request) -> Result<(), StoreError> {
        let tx = self.inner.tx.as_ref().ok_or(StoreError::Closed)?;
        tx.send(req).map_err(|_| StoreError::Closed)
    }
}

#[cfg(any(test, feature = "contract"))]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
