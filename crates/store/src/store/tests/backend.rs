//! The two ways to open a store, for tests of the store's contract that must hold for both: the embedded store
//! (its own committer) and a replica fed by an in-process log with JetStream's rules.
//!
//! A test takes a [`Backend`] and opens its stores through it; [`both!`] turns it into one `#[test]` per backend,
//! so a failure names the backend (`…::<test>::embedded`, `…::<test>::replica`).

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::store::Store;
use crate::store::replica::memlog::{MemLog, MemLogWriter, MemTailer};

/// Which store a test runs against. A replica backend owns its log, so reopening a dir through the same backend
/// value reopens the same replica of the same log (as a restarted cluster node would).
pub(crate) enum Backend {
    Embedded,
    Replica(Arc<MemLog>),
}

impl Backend {
    /// A replica backend on a new, empty log.
    pub(crate) fn replica() -> Backend {
        Backend::Replica(MemLog::new())
    }

    /// True for the embedded store (whose command seqs are 1, 2, 3, … without gaps).
    pub(crate) fn is_embedded(&self) -> bool {
        matches!(self, Backend::Embedded)
    }

    /// Opens the store on `dir`. A replica takes over the log as its owner (so it may write runs and ledgers) and
    /// waits until it has applied everything up to its takeover marker.
    pub(crate) fn open(&self, dir: &Path) -> Opened {
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
                    node: Some(Node {
                        _tailer: tailer,
                        _writer: writer,
                    }),
                }
            }
        }
    }
}

/// What a replica needs besides its store: its tailer (whose thread holds a clone of the store) and its writer.
struct Node {
    _tailer: MemTailer,
    _writer: Arc<MemLogWriter>,
}

/// An open store; dropping it stops a replica's tailer too, so the dir is unlocked once every clone is gone.
pub(crate) struct Opened {
    store: Store,
    node: Option<Node>,
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

/// `both!(name)` runs `fn name(backend: Backend)` once per backend; `both!(async name)` does the same for an
/// `async fn name(backend: Backend)` on a two-worker runtime.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use $crate::store::tests::backend::Backend;

            #[test]
            fn embedded() {
                super::$name(Backend::Embedded)
            }

            #[test]
            fn replica() {
                super::$name(Backend::replica())
            }
        }
    };
    (async $name:ident) => {
        mod $name {
            use $crate::store::tests::backend::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(Backend::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn replica() {
                super::$name(Backend::replica()).await
            }
        }
    };
}
pub(crate) use both;
