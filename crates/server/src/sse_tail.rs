//! The `event: step` frames of the records a run appended last, encoded once and shared by every SSE stream of
//! that run: one new record reaching 1,000 subscribers is one store read and one encoding, and each stream sends
//! the same bytes (reference-counted), instead of 1,000 reads and 1,000 encodings.
//!
//! A stream whose cursor is older than the shared frames (a client catching up) reads the store itself, as
//! before, so a slow or late client never holds the others back and the shared part stays small.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::routes::ledger::step_frame;
use crate::store::{Store, StoreError};

/// Most frames one run keeps shared.
const MAX_FRAMES: usize = 512;
/// Most bytes one run keeps shared (at least one frame is kept). Streams are capped (`ABSTRACTGATEWAY_MAX_SSE`,
/// 32 by default), so all tails together hold at most that many MiB beyond the frames being sent.
const MAX_BYTES: usize = 1 << 20;
/// Records read from the store per extension.
const READ_PAGE: usize = 256;

/// The shared tails of the runs that have streams open.
#[derive(Default)]
pub struct Tails {
    runs: Mutex<HashMap<String, Weak<Tail>>>,
}

impl Tails {
    /// The run's shared tail: made when its first stream opens, gone when its last one closes.
    pub fn of(&self, run_id: &str) -> Arc<Tail> {
        let mut runs = self.runs.lock();
        if let Some(t) = runs.get(run_id).and_then(Weak::upgrade) {
            return t;
        }
        // Forget the tails of runs nobody streams any more before the map grows.
        if runs.len() >= 64 && runs.len().is_power_of_two() {
            runs.retain(|_, w| w.strong_count() > 0);
        }
        let t = Arc::new(Tail::default());
        runs.insert(run_id.to_string(), Arc::downgrade(&t));
        t
    }
}

/// One run's shared frames: those of seqs `first ..= first + frames.len() - 1`.
#[derive(Default)]
pub struct Tail {
    inner: Mutex<Frames>,
}

#[derive(Default)]
struct Frames {
    first: u64,
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl Frames {
    /// The seq of the last frame held (`first - 1` when none).
    fn last(&self) -> u64 {
        (self.first + self.frames.len() as u64).saturating_sub(1)
    }

    fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
        while self.frames.len() > 1 && (self.frames.len() > MAX_FRAMES || self.bytes > MAX_BYTES) {
            if let Some(f) = self.frames.pop_front() {
                self.bytes -= f.len();
                self.first += 1;
            }
        }
    }

    fn reset(&mut self, first: u64) {
        self.frames.clear();
        self.bytes = 0;
        self.first = first;
    }
}

impl Tail {
    /// The frames of the records after `cursor`, as one chunk (empty: none yet), given that the run's durable
    /// ledger holds `head_len` records; `None` when `cursor` is older than what is shared (the caller reads the
    /// store itself). The first stream to see new records reads and encodes them for all.
    pub fn after(
        &self,
        store: &Store,
        run_id: &str,
        cursor: u64,
        head_len: u64,
    ) -> Result<Option<(Bytes, u64)>, StoreError> {
        let mut f = self.inner.lock();
        if f.frames.is_empty() || cursor > f.last() {
            // The shared frames start where the first stream stands and only move forward: a stream ahead of
            // them moves them to itself (the streams behind read the store themselves until they catch up).
            f.reset(cursor + 1);
        }
        if head_len > f.last() {
            let from = f.last();
            for e in store.ledger_after(run_id, from, READ_PAGE)? {
                if e.seq != f.last() + 1 {
                    // Not contiguous (never expected: seqs are 1..n): start over from this record.
                    f.reset(e.seq);
                }
                f.push(Bytes::from(step_frame(&e)));
            }
        }
        if cursor + 1 < f.first {
            return Ok(None);
        }
        let skip = (cursor + 1 - f.first) as usize;
        let n = f.frames.len().saturating_sub(skip);
        let chunk = match n {
            0 => Bytes::new(),
            1 => f.frames[skip].clone(),
            _ => {
                let mut b =
                    BytesMut::with_capacity(f.frames.iter().skip(skip).map(Bytes::len).sum());
                for frame in f.frames.iter().skip(skip) {
                    b.extend_from_slice(frame);
                }
                b.freeze()
            }
        };
        Ok(Some((chunk, n as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Batch;

    fn store_with(records: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        append(&store, 1, records);
        (dir, store)
    }

    fn append(store: &Store, from: u64, to: u64) {
        let mut b = Batch::new();
        for seq in from..=to {
            b.append_ledger_json("r", seq, format!("{{\"n\": {seq}}}").into_bytes());
        }
        store.commit(b).expect("commit");
    }

    fn seqs(chunk: &Bytes) -> Vec<u64> {
        String::from_utf8_lossy(chunk)
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|n| n.parse().expect("seq"))
            .collect()
    }

    #[test]
    fn streams_at_the_head_share_one_encoding_of_each_new_record() {
        let (_dir, store) = store_with(3);
        let tail = Tails::default().of("r");
        // Two streams standing at 3 see nothing yet.
        assert_eq!(
            tail.after(&store, "r", 3, 3).expect("read"),
            Some((Bytes::new(), 0))
        );
        append(&store, 4, 4);
        let (a, n) = tail
            .after(&store, "r", 3, 4)
            .expect("read")
            .expect("shared");
        let (b, _) = tail
            .after(&store, "r", 3, 4)
            .expect("read")
            .expect("shared");
        assert_eq!((n, seqs(&a)), (1, vec![4]));
        // The same bytes, not a second encoding.
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert!(String::from_utf8_lossy(&a).contains("event: step"));
    }

    #[test]
    fn a_stream_behind_the_shared_frames_reads_for_itself_and_one_ahead_moves_them() {
        let (_dir, store) = store_with(10);
        let tails = Tails::default();
        let tail = tails.of("r");
        let (chunk, n) = tail
            .after(&store, "r", 8, 10)
            .expect("read")
            .expect("shared");
        assert_eq!((n, seqs(&chunk)), (2, vec![9, 10]));
        // Behind what is shared: the caller reads the store.
        assert_eq!(tail.after(&store, "r", 2, 10).expect("read"), None);
        // One stream's cursor ahead of the shared frames (a reconnect with a later Last-Event-ID).
        append(&store, 11, 20);
        let (chunk, _) = tail
            .after(&store, "r", 15, 20)
            .expect("read")
            .expect("shared");
        assert_eq!(seqs(&chunk), (16..=20).collect::<Vec<_>>());
        // The same run's streams get the same tail; another run's are its own.
        assert!(Arc::ptr_eq(&tail, &tails.of("r")));
        assert!(!Arc::ptr_eq(&tail, &tails.of("other")));
    }

    #[test]
    fn the_shared_frames_stay_bounded() {
        let total = (MAX_FRAMES + 300) as u64;
        let (_dir, store) = store_with(total);
        let tail = Tails::default().of("r");
        let mut cursor = 0;
        while cursor < total {
            let (chunk, n) = tail
                .after(&store, "r", cursor, total)
                .expect("read")
                .expect("shared");
            assert_eq!(seqs(&chunk).first(), Some(&(cursor + 1)));
            cursor += n;
        }
        assert!(tail.inner.lock().frames.len() <= MAX_FRAMES);
        // The oldest frames were let go: a stream back there reads for itself.
        assert_eq!(tail.after(&store, "r", 0, total).expect("read"), None);
    }
}
