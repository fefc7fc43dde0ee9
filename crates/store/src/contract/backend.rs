//! The ways to open a store for the contract: the embedded store (its own committer), a replica fed by the
//! in-process log with JetStream's rules, and a replica of a log outside this crate ([`ExternalLog`]: the cluster
//! crate passes its JetStream log).

use std::any::Any;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::store::Store;
use crate::store::replica::memlog::{MemLog, MemLogWriter, MemTailer};

/// A replicated log the contract can run on: it opens a replica on a dir as the log's owner.
pub trait ExternalLog: Send + Sync {
    /// Opens (or reopens) a replica of this log on `dir`, owning the log and caught up with it. The guard keeps
    /// what the replica needs alive (its tailer, its lease) and releases it when dropped, after the store.
    fn open_owner(&self, dir: &Path) -> (Store, Box<dyn Any>);
}

/// Which store a test runs against. A replica backend owns its log, so reopening a dir through the same backend
/// value reopens the same replica of the same log (as a restarted cluster node would).
#[derive(Clone)]
pub enum Backend {
    Embedded,
    Replica(Arc<MemLog>),
    External(Arc<dyn ExternalLog>),
}

impl Backend {
    /// A replica backend on a new, empty in-process log.
    pub fn replica() -> Backend {
        Backend::Replica(MemLog::new())
    }

    /// True for the embedded store (whose command seqs are 1, 2, 3, … without gaps).
    pub fn is_embedded(&self) -> bool {
        matches!(self, Backend::Embedded)
    }

    /// Opens the store on `dir`. A replica takes over the log as its owner (so it may write runs and ledgers) and
    /// waits until it has applied everything up to its takeover marker.
    pub fn open(&self, dir: &Path) -> Opened {
        match self {
            Backend::Embedded => {
                let store = Store::open(dir).unwrap();
                assert!(!store.is_replica());
                Opened { store, node: None }
            }
            Backend::Replica(log) => {
                let writer = log.writer();
                let store = Store::open_replica(dir, writer.clone()).unwrap();
                assert!(store.is_replica());
                let tailer = log.tail(store.applier().unwrap());
                let marker = writer.take_over();
                store.wait_applied(marker).unwrap();
                Opened {
                    store,
                    node: Some(Box::new(MemNode {
                        _tailer: tailer,
                        _writer: writer,
                    })),
                }
            }
            Backend::External(log) => {
                let (store, guard) = log.open_owner(dir);
                assert!(store.is_replica());
                Opened {
                    store,
                    node: Some(guard),
                }
            }
        }
    }
}

/// What an in-process replica needs besides its store: its tailer (whose thread holds a clone of the store) and
/// its writer.
struct MemNode {
    _tailer: MemTailer,
    _writer: Arc<MemLogWriter>,
}

/// An open store; dropping it stops a replica's node too, so the dir is unlocked once every clone is gone.
pub struct Opened {
    store: Store,
    node: Option<Box<dyn Any>>,
}

impl Deref for Opened {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        // The tailer's thread holds the last other clone of a replica's store: stop it with this handle.
        drop(self.node.take());
    }
}
