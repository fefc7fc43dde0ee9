//! [`NatsLog`]: the store's [`Log`] on the JetStream stream. Owner appends go to their shard's journal (`<prefix>.j`
//! for shard 0, `<prefix>.j.<n>` for shard n), fenced by `Nats-Expected-Last-Subject-Sequence` on the owner's own
//! tail of that journal; intake appends go to `<prefix>.in`, deduplicated by the caller's id.

use std::collections::HashMap;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use abstractgateway_store::StoreError;
use abstractgateway_store::replica::{Log, Position};
use async_nats::HeaderMap;
use async_nats::header::{
    NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_EXPECTED_STREAM, NATS_MESSAGE_ID,
};
use async_nats::jetstream::{self, stream::LastRawMessageErrorKind};
use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::publish::{APPEND_DEADLINE, PublishFailure, publish_until};

/// Header naming what a journal entry is (`marker` for a takeover marker; absent for an owner entry).
pub(crate) const KIND_HEADER: &str = "Ag-Kind";
/// The `Ag-Kind` of a takeover marker.
pub(crate) const KIND_MARKER: &str = "marker";
/// Header carrying the lease epoch an owner entry or marker was written under.
pub(crate) const EPOCH_HEADER: &str = "Ag-Epoch";
/// Header naming the node that wrote a marker.
pub(crate) const NODE_HEADER: &str = "Ag-Node";

/// The replicated log, as the store writes it. Its methods block the calling thread: call them from a plain
/// thread (the store's committer), never from an async task.
pub struct NatsLog {
    js: jetstream::Context,
    handle: Handle,
    stream: String,
    journal: String,
    intake: String,
    /// The shards this process owns, each with its own journal tail.
    owners: Mutex<HashMap<u32, Owner>>,
    /// Set once this process appended a takeover marker.
    owning: AtomicBool,
    /// Set when this process lost (or released) the lease, or an owner append was refused; never cleared.
    fenced: AtomicBool,
}

/// What the lease holder appends after.
struct Owner {
    epoch: u64,
    /// Sequence of the last journal entry this owner appended (first its takeover marker).
    tail: u64,
    /// Appends so far under this epoch: the `Nats-Msg-Id` of the next is `j:<epoch>:<counter + 1>`.
    counter: u64,
    /// The last append ran out of time: it may have landed, moving the journal's tail without our knowing.
    uncertain: bool,
}

impl NatsLog {
    pub(crate) fn new(
        js: jetstream::Context,
        handle: Handle,
        stream: String,
        journal: String,
        intake: String,
    ) -> NatsLog {
        NatsLog {
            js,
            handle,
            stream,
            journal,
            intake,
            owners: Mutex::new(HashMap::new()),
            owning: AtomicBool::new(false),
            fenced: AtomicBool::new(false),
        }
    }

    /// Whether owner appends are refused for good (this process lost or released the lease).
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// Whether this process may append owner entries (it holds the lease and was not fenced). Does not wait for an
    /// append in progress.
    pub fn is_owner(&self) -> bool {
        !self.is_fenced() && self.owning.load(Ordering::SeqCst)
    }

    /// Refuses every later owner append.
    pub(crate) fn fence(&self) {
        if !self.fenced.swap(true, Ordering::SeqCst) {
            tracing::info!(
                "the replicated log is fenced: this process may not append owner entries any more"
            );
        }
    }

    /// Makes `shard`'s journal writable for the holder of its lease `epoch`, whose takeover marker is at
    /// `marker_seq`.
    pub(crate) fn become_owner(&self, shard: u32, epoch: u64, marker_seq: u64) {
        self.lock_owners().insert(
            shard,
            Owner {
                epoch,
                tail: marker_seq,
                counter: 0,
                uncertain: false,
            },
        );
        self.owning.store(true, Ordering::SeqCst);
    }

    /// Stops appending to `shard` (a lease handed back on purpose): its later appends are refused, the other shards'
    /// go on.
    pub(crate) fn drop_owner(&self, shard: u32) {
        self.lock_owners().remove(&shard);
    }

    /// The shards this process may append to.
    pub fn owned_shards(&self) -> Vec<u32> {
        let mut shards: Vec<u32> = self.lock_owners().keys().copied().collect();
        shards.sort_unstable();
        shards
    }

    /// The journal subject of `shard`.
    pub(crate) fn journal_of(&self, shard: u32) -> String {
        journal_subject(&self.journal, shard)
    }

    fn lock_owners(&self) -> MutexGuard<'_, HashMap<u32, Owner>> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, StoreError> {
        if Handle::try_current().is_ok() {
            return Err(StoreError::Unavailable(
                "the replicated log was called from inside an async runtime; call it from a plain thread".into(),
            ));
        }
        Ok(self.handle.block_on(fut))
    }
}

impl NatsLog {
    /// One owner append to `shard`'s journal, fenced on `owner`'s tail (see [`Log::append_owned`]).
    async fn append_to(
        &self,
        shard: u32,
        owner: &mut Owner,
        entry: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let journal = journal_subject(&self.journal, shard);
        let payload = Bytes::from(entry);
        let deadline = Instant::now() + APPEND_DEADLINE;
        owner.counter += 1;
        let msg_id = format!("j:{}:{}", owner.epoch, owner.counter);
        let mut adopted = false;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, msg_id.as_str());
            headers.insert(NATS_EXPECTED_STREAM, self.stream.as_str());
            headers.insert(
                NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                owner.tail.to_string().as_str(),
            );
            headers.insert(EPOCH_HEADER, owner.epoch.to_string().as_str());
            let sent = publish_until(&self.js, &journal, &headers, &payload, deadline).await;
            match sent {
                Ok(ack) => {
                    owner.tail = ack.sequence;
                    owner.uncertain = false;
                    return Ok(ack.sequence);
                }
                Err(PublishFailure::Invalid(message)) => return Err(StoreError::Invalid(message)),
                Err(PublishFailure::Unavailable(message)) => {
                    owner.uncertain = true;
                    return Err(StoreError::Unavailable(message));
                }
                Err(PublishFailure::WrongLast) => {}
            }
            // Refused: the journal moved past our tail. Either another owner appended (we are fenced), or it was
            // us: this very entry (a retry after a lost ack, refused before the duplicate check) or an earlier
            // append of ours that timed out after all. Only the journal's last entry tells.
            let last = last_on_journal(&self.js, &self.stream, &journal).await;
            let (seq, last_id) = match last {
                Ok(Some((seq, id))) => (seq, id.unwrap_or_default()),
                Ok(None) => (0, String::new()),
                Err(message) => {
                    owner.uncertain = true;
                    return Err(StoreError::Unavailable(message));
                }
            };
            if last_id == msg_id {
                owner.tail = seq;
                owner.uncertain = false;
                return Ok(seq);
            }
            if seq <= owner.tail {
                // The journal has not visibly moved past our tail: the refusal came from a leader still settling
                // (a new leader with our own retried entry in flight, proposed but not yet applied). That is no
                // evidence of another writer, so it must not fence us: wait a little and publish again, which ends
                // as an acknowledgement, a duplicate, or a last entry that tells.
                let pause = Duration::from_millis(100);
                if Instant::now() + pause >= deadline {
                    owner.uncertain = true;
                    return Err(StoreError::Unavailable(
                        "the log kept refusing the append without another writer in sight".into(),
                    ));
                }
                tokio::time::sleep(pause).await;
                continue;
            }
            let ours = last_id.starts_with(&format!("j:{}:", owner.epoch));
            if owner.uncertain && ours && seq > owner.tail && !adopted {
                tracing::info!(
                    seq,
                    "an owner append that timed out had landed; continuing after it"
                );
                owner.tail = seq;
                owner.uncertain = false;
                adopted = true;
                continue;
            }
            tracing::warn!(
                seq,
                last_id,
                tail = owner.tail,
                "owner append refused: another owner appended to the journal"
            );
            self.fence();
            return Err(StoreError::Fenced);
        }
    }
}

impl Log for NatsLog {
    fn append_owned(&self, shard: u32, entry: Vec<u8>) -> Result<u64, StoreError> {
        self.append_owned_many(vec![(shard, entry)])
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("no answer for the append".into())))
    }

    /// The entries of different shards are published at once and their acknowledgements awaited together: a
    /// round of several shards costs one replication round trip, not one per shard. Entries of one shard go in
    /// order (each is fenced on the one before).
    fn append_owned_many(&self, entries: Vec<(u32, Vec<u8>)>) -> Vec<Result<u64, StoreError>> {
        let n = entries.len();
        let mut guard = self.lock_owners();
        if self.is_fenced() {
            return (0..n).map(|_| Err(StoreError::Fenced)).collect();
        }
        // Per shard, its entries in order (their positions in `entries` kept for the answers).
        let mut per_shard: std::collections::BTreeMap<u32, Vec<(usize, Vec<u8>)>> =
            std::collections::BTreeMap::new();
        for (i, (shard, entry)) in entries.into_iter().enumerate() {
            per_shard.entry(shard).or_default().push((i, entry));
        }
        let mut answers: Vec<Option<Result<u64, StoreError>>> = (0..n).map(|_| None).collect();
        let mut work = Vec::new();
        for (shard, owner) in guard.iter_mut() {
            let Some(list) = per_shard.remove(shard) else {
                continue;
            };
            let shard = *shard;
            // Disjoint owners: each shard's appends run in order, the shards side by side.
            work.push(async move {
                let mut out = Vec::with_capacity(list.len());
                for (i, entry) in list {
                    out.push((i, self.append_to(shard, owner, entry).await));
                }
                out
            });
        }
        // Shards this process does not own.
        for (i, _) in per_shard.into_values().flatten() {
            answers[i] = Some(Err(StoreError::Fenced));
        }
        match self.block_on(futures::future::join_all(work)) {
            Ok(results) => {
                for (i, r) in results.into_iter().flatten() {
                    answers[i] = Some(r);
                }
            }
            Err(e) => answers
                .iter_mut()
                .filter(|a| a.is_none())
                .for_each(|a| *a = Some(Err(e.clone()))),
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(StoreError::Unavailable("no answer for the append".into())))
            })
            .collect()
    }

    fn append_intake(&self, dedup_id: &str, entry: Vec<u8>) -> Result<Position, StoreError> {
        self.append_intake_many(vec![(dedup_id.to_string(), entry)])
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("no answer for the append".into())))
    }

    /// Every entry is published at once and the acknowledgements are awaited together: a group of starts and
    /// commands costs one replication round trip, not one per entry.
    fn append_intake_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Vec<Result<Position, StoreError>> {
        let deadline = Instant::now() + APPEND_DEADLINE;
        let n = entries.len();
        let sends = entries.into_iter().map(|(dedup_id, entry)| {
            let headers = (!dedup_id.is_empty()).then(|| {
                let mut headers = HeaderMap::new();
                headers.insert(NATS_MESSAGE_ID, dedup_id.as_str());
                headers.insert(NATS_EXPECTED_STREAM, self.stream.as_str());
                headers
            });
            let payload = Bytes::from(entry);
            async move {
                let Some(headers) = headers else {
                    return Err(StoreError::Invalid(
                        "an intake entry needs a dedup id".into(),
                    ));
                };
                match publish_until(&self.js, &self.intake, &headers, &payload, deadline).await {
                    // A duplicate is the same id appended before: by another node, or by this one when an
                    // acknowledgement was lost and the publish retried (then the caller is told "duplicate" for
                    // its own first append, with the right position).
                    Ok(ack) => Ok(Position {
                        seq: ack.sequence,
                        duplicate: ack.duplicate,
                    }),
                    Err(PublishFailure::Invalid(message)) => Err(StoreError::Invalid(message)),
                    Err(PublishFailure::Unavailable(message)) => {
                        Err(StoreError::Unavailable(message))
                    }
                    Err(PublishFailure::WrongLast) => Err(StoreError::Unavailable(
                        "intake append refused with an unexpected wrong-last-sequence".into(),
                    )),
                }
            }
        });
        let all = futures::future::join_all(sends);
        match self.block_on(all) {
            Ok(results) => results,
            // One answer per entry, always.
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }
}

/// The journal subject of `shard`: the base subject (`<prefix>.j`) for shard 0, `<base>.<shard>` for the others.
pub(crate) fn journal_subject(base: &str, shard: u32) -> String {
    if shard == 0 {
        base.to_string()
    } else {
        format!("{base}.{shard}")
    }
}

/// The journal's last entry, read from the stream leader: its sequence and `Nats-Msg-Id`; `None` when the journal
/// is empty. `Err` with the client's error text when the leader did not answer.
pub(crate) async fn last_on_journal(
    js: &jetstream::Context,
    stream: &str,
    journal: &str,
) -> Result<Option<(u64, Option<String>)>, String> {
    let stream = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| e.to_string())?;
    match stream.get_last_raw_message_by_subject(journal).await {
        Ok(message) => {
            let id = message
                .headers
                .get(NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_string());
            Ok(Some((message.sequence, id)))
        }
        Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(err) => Err(format!("reading the journal's last entry: {err}")),
    }
}
