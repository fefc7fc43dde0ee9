//! An in-process [`Log`] with the JetStream log's rules (fenced owner appends, deduplicated intake, one total
//! order), for tests of replicas without a cluster: several stores in one process, each with its own tailer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{Applier, EntryKind, Log, Position};
use crate::store::StoreError;

#[derive(Default)]
struct Entries {
    /// Position n is `list[n - 1]`.
    list: Vec<(EntryKind, Vec<u8>)>,
    /// Per shard: position of its last owner entry or marker (the fence).
    owned_tail: HashMap<u32, u64>,
    dedup: HashMap<String, u64>,
    closed: bool,
}

/// The log itself; hand out one [`MemLogWriter`] per node.
#[derive(Default)]
pub struct MemLog {
    entries: Mutex<Entries>,
    grew: Condvar,
}

/// One node's connection to a [`MemLog`]: it may append owner entries after [`MemLogWriter::take_over`].
pub struct MemLogWriter {
    log: Arc<MemLog>,
    /// Per shard: the owner tail this node expects (absent until it takes the shard over).
    tail: Mutex<HashMap<u32, u64>>,
}

impl MemLog {
    /// An empty log.
    pub fn new() -> Arc<MemLog> {
        Arc::new(MemLog::default())
    }

    /// A writer for one node.
    pub fn writer(self: &Arc<Self>) -> Arc<MemLogWriter> {
        Arc::new(MemLogWriter {
            log: self.clone(),
            tail: Mutex::new(HashMap::new()),
        })
    }

    /// Number of entries so far.
    pub fn len(&self) -> u64 {
        self.entries.lock().list.len() as u64
    }

    /// True before the first entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a thread applying every entry after `applier.applied()`, in order, until the log is closed or the
    /// returned tailer is dropped.
    pub fn tail(self: &Arc<Self>, applier: Arc<dyn Applier>) -> MemTailer {
        let log = self.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut next = applier.applied() + 1;
            loop {
                let item = {
                    let mut e = log.entries.lock();
                    loop {
                        if let Some(item) = e.list.get(next as usize - 1) {
                            break Some(item.clone());
                        }
                        if e.closed || stopped.load(Ordering::Relaxed) {
                            break None;
                        }
                        log.grew.wait_for(&mut e, Duration::from_millis(200));
                    }
                };
                let Some((kind, bytes)) = item else {
                    return;
                };
                if let Err(e) = applier.apply(next, kind, &bytes) {
                    panic!("replica cannot apply log entry {next}: {e}");
                }
                next += 1;
            }
        });
        MemTailer {
            stop,
            log: self.clone(),
            handle: Some(handle),
        }
    }

    /// Stops every tailer once it has applied what is there.
    pub fn close(&self) {
        self.entries.lock().closed = true;
        self.grew.notify_all();
    }

    fn push(&self, e: &mut Entries, kind: EntryKind, bytes: Vec<u8>) -> u64 {
        e.list.push((kind, bytes));
        self.grew.notify_all();
        e.list.len() as u64
    }
}

/// A running tailer; dropping it stops it (and releases its store).
pub struct MemTailer {
    stop: Arc<AtomicBool>,
    log: Arc<MemLog>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MemTailer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.log.grew.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl MemLogWriter {
    /// Takes shard 0 over (see [`MemLogWriter::take_over_shard`]).
    pub fn take_over(&self) -> u64 {
        self.take_over_shard(0)
    }

    /// Appends a takeover marker at `shard`'s owner tail: from now on this writer owns the shard, and every
    /// earlier owner's next append to it is fenced. Returns the marker's position.
    pub fn take_over_shard(&self, shard: u32) -> u64 {
        let mut e = self.log.entries.lock();
        let seq = self.log.push(&mut e, EntryKind::Marker, Vec::new());
        e.owned_tail.insert(shard, seq);
        self.tail.lock().insert(shard, seq);
        seq
    }
}

impl Log for MemLogWriter {
    fn append_owned(&self, shard: u32, entry: Vec<u8>) -> Result<u64, StoreError> {
        let mut tail = self.tail.lock();
        let mut e = self.log.entries.lock();
        match tail.get(&shard) {
            Some(t) if Some(t) == e.owned_tail.get(&shard) => {
                let seq = self.log.push(&mut e, EntryKind::Owned, entry);
                e.owned_tail.insert(shard, seq);
                tail.insert(shard, seq);
                Ok(seq)
            }
            _ => Err(StoreError::Fenced),
        }
    }

    fn append_intake(&self, dedup_id: &str, entry: Vec<u8>) -> Result<Position, StoreError> {
        let mut e = self.log.entries.lock();
        if let Some(seq) = e.dedup.get(dedup_id) {
            return Ok(Position {
                seq: *seq,
                duplicate: true,
            });
        }
        let seq = self.log.push(&mut e, EntryKind::Intake, entry);
        e.dedup.insert(dedup_id.to_string(), seq);
        Ok(Position {
            seq,
            duplicate: false,
        })
    }
}
