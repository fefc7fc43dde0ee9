//! Shard leases (key `shard.<n>` of `<PREFIX>_LEASES`, one per shard), and the takeover that makes a lease's holder
//! the only writer of that shard's journal.
//!
//! Acquire: `create` the key when absent; otherwise watch it, restart a local timer of `lease` at each new
//! revision, and when the timer fires with no newer revision, `update` the key at the revision observed (a refusal
//! means another node won). A deleted key (a graceful release) is free at once. Only local durations are compared.
//! The revision that wins is the epoch. The holder then appends a takeover marker to the journal, expecting the
//! journal's last sequence as read from the stream leader, so a stale owner's later appends are refused.
//!
//! Renew: every `renew`, `update` at the last revision. A refusal means another node took the lease; no
//! acknowledged renewal for 0.8 x `lease` since the send time of the last acknowledged one means it may be taken
//! any moment. Either way the log is fenced at once and the loss handler runs.

use std::sync::Arc;

use abstractgateway_store::replica::Applier;
use async_nats::HeaderMap;
use async_nats::header::{
    NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_EXPECTED_STREAM, NATS_MESSAGE_ID,
};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, sleep, sleep_until, timeout_at};

use crate::NatsError;
use crate::cluster::Cluster;
use crate::log::{EPOCH_HEADER, KIND_HEADER, KIND_MARKER, NODE_HEADER, NatsLog, last_on_journal};
use crate::publish::{APPEND_DEADLINE, PublishFailure, is_wrong_last, publish_until};
use crate::tail::wait_applied;

/// The lease key of `shard`.
pub(crate) fn shard_key(shard: u32) -> String {
    format!("shard.{shard}")
}
/// The KV header that marks a delete or purge.
const KV_OPERATION: &str = "KV-Operation";

/// A lease value: who holds it and under which epoch (the revision of the acquiring write, which that write itself
/// cannot carry, so it has none).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct LeaseValue {
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
}

/// This node's hold on one shard. Dropping it stops the renewals and fences the log; [`Lease::release`] also
/// frees the key so a standby takes over at once; [`Lease::hand_back`] gives up this shard alone.
pub struct Lease {
    shard: u32,
    epoch: u64,
    kv: kv::Store,
    log: Arc<NatsLog>,
    stop: Option<oneshot::Sender<()>>,
    renewals: Option<JoinHandle<Option<u64>>>,
    lost: watch::Receiver<bool>,
    fence_on_drop: bool,
}

impl Lease {
    /// The lease epoch: the revision of the write that won it. It only grows across takeovers.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The shard this lease is for.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// Gives this shard up on purpose (rebalancing), once its runner stopped writing it: the shard's journal is
    /// closed to this process (the other shards' stay open), renewals stop and the key is deleted, so another
    /// runner takes the shard over at once.
    pub async fn hand_back(mut self) -> Result<(), NatsError> {
        self.log.drop_owner(self.shard);
        self.fence_on_drop = false;
        let Some(revision) = self.stop_renewals().await else {
            return Ok(());
        };
        self.delete_key(revision).await
    }

    /// Deletes the key at `revision` (nothing to do when someone took it since).
    async fn delete_key(&self, revision: u64) -> Result<(), NatsError> {
        match self
            .kv
            .delete_expect_revision(&shard_key(self.shard), Some(revision))
            .await
        {
            Ok(()) => {
                tracing::info!(shard = self.shard, epoch = self.epoch, "lease released");
                Ok(())
            }
            Err(err) if is_wrong_last(&err, err.kind() == UpdateErrorKind::WrongLastRevision) => {
                Ok(())
            }
            Err(err) => Err(NatsError::request("releasing the lease", err)),
        }
    }

    /// Whether the lease was lost (the loss handler has run and the log is fenced).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Graceful shutdown: fences the log, stops renewing, and deletes the key at its revision so a standby takes
    /// over without waiting for the lease to expire. Nothing to free when the lease was already lost.
    pub async fn release(mut self) -> Result<(), NatsError> {
        self.log.fence();
        let Some(revision) = self.stop_renewals().await else {
            return Ok(());
        };
        self.delete_key(revision).await
    }

    /// Stops renewing without fencing the log or freeing the key: what a paused (SIGSTOPped, partitioned) holder
    /// looks like to the cluster. Only for tests of the journal's fencing.
    #[doc(hidden)]
    pub fn abandon_for_test(mut self) {
        self.fence_on_drop = false;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the renewal task; the revision of the last acknowledged renewal, `None` when the lease was lost.
    async fn stop_renewals(&mut self) -> Option<u64> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.renewals.take() {
            Some(task) => task.await.ok().flatten(),
            None => None,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.fence_on_drop {
            self.log.fence();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// May this node take one more shard now? Asked before each attempt to take a free or expired lease.
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

/// Waits for `shard`'s lease (taking it only while `gate` allows), appends the takeover marker to the shard's
/// journal, and waits for the local replica to reach it.
pub(crate) async fn acquire(
    cluster: &Cluster,
    log: Arc<NatsLog>,
    applier: Arc<dyn Applier>,
    on_loss: Box<dyn Fn() + Send + Sync>,
    shard: u32,
    gate: Gate,
) -> Result<Lease, NatsError> {
    let node = cluster.cfg.node_id.clone();
    let (epoch, sent) = win(cluster, &node, shard, &gate).await;
    tracing::info!(
        shard,
        epoch,
        node,
        "lease acquired; appending the takeover marker"
    );
    let renew_value = serde_json::to_vec(&LeaseValue {
        node: node.clone(),
        epoch: Some(epoch),
    })
    .map_err(|e| NatsError::request("encoding the lease value", e))?;
    let (lost_tx, lost) = watch::channel(false);
    let (stop, stop_rx) = oneshot::channel();
    let renewal = Renewal {
        kv: cluster.kv.clone(),
        js: cluster.js.clone(),
        bucket: cluster.cfg.lease_bucket(),
        value: Bytes::from(renew_value),
        key: shard_key(shard),
        revision: epoch,
        acked_at: sent,
        every: cluster.cfg.renew,
        budget: cluster.cfg.lease.mul_f64(0.8),
        log: log.clone(),
        on_loss,
        lost: lost_tx,
    };
    let renewals = tokio::spawn(renewal.run(stop_rx));
    // From here on, dropping the lease (this future cancelled, or an error below) stops renewing and fences.
    let lease = Lease {
        shard,
        epoch,
        kv: cluster.kv.clone(),
        log: log.clone(),
        stop: Some(stop),
        renewals: Some(renewals),
        lost: lost.clone(),
        fence_on_drop: true,
    };
    let marker = append_marker(cluster, &log.journal_of(shard), epoch, &node, &lost).await?;
    log.become_owner(shard, epoch, marker);
    tracing::info!(
        epoch,
        marker,
        "takeover marker appended; waiting for the replica to reach it"
    );
    if !wait_applied(&*applier, &cluster.progress, marker, Some(lost.clone())).await {
        return Err(NatsError::LeaseLost);
    }
    tracing::info!(shard, epoch, "this node owns the shard");
    Ok(lease)
}

/// Takes `shard`'s key: returns the winning revision and the send time of the winning write. A free or expired key
/// is only taken while `gate` says yes.
async fn win(cluster: &Cluster, node: &str, shard: u32, gate: &Gate) -> (u64, Instant) {
    let key = shard_key(shard);
    let value = match serde_json::to_vec(&LeaseValue {
        node: node.to_string(),
        epoch: None,
    }) {
        Ok(v) => Bytes::from(v),
        // A struct of a string and an option always encodes; keep a value anyway.
        Err(_) => Bytes::from_static(b"{}"),
    };
    let lease = cluster.cfg.lease;
    let retry = Duration::from_millis(500);
    // Kept across watches: a watch that is restarted (it failed, or a free key was retried) must not restart the
    // expiry timer of a revision already seen, or a slow watch could keep a dead holder's lease alive.
    let mut observed: Option<u64> = None;
    let mut expires: Option<Instant> = None;
    loop {
        // A free key is taken only while the gate allows; either way the key is watched, so that the expiry timer
        // of a held lease runs while this node waits for its share to grow (a dead runner's shards move after one
        // lease, not after two).
        if gate() {
            let sent = Instant::now();
            match cluster.kv.create(&key, value.clone()).await {
                Ok(revision) => return (revision, sent),
                Err(err) if err.kind() == CreateErrorKind::AlreadyExists => {}
                Err(err) => {
                    tracing::warn!(error = %err, "creating the lease failed; retrying");
                    sleep(retry).await;
                    continue;
                }
            }
        }
        let mut watch = match cluster.kv.watch_with_history(&key).await {
            Ok(w) => w,
            Err(err) => {
                tracing::warn!(error = %err, "watching the lease failed; retrying");
                sleep(retry).await;
                continue;
            }
        };
        // Not at once: the watch first delivers the key's current value.
        let mut recheck = tokio::time::interval_at(Instant::now() + retry, retry);
        loop {
            let timer = async {
                match expires {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => match entry.operation {
                        Operation::Put => {
                            if observed != Some(entry.revision) {
                                observed = Some(entry.revision);
                                expires = Some(Instant::now() + lease);
                            }
                        }
                        // Released: free at once. Create again (the outer loop) when the gate allows, else keep
                        // watching until it does; if another node was faster, the key exists and we watch again.
                        Operation::Delete | Operation::Purge => {
                            observed = None;
                            expires = None;
                            if gate() {
                                break;
                            }
                        }
                    },
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "the lease watch failed; watching again");
                        sleep(retry).await;
                        break;
                    }
                    None => break,
                },
                _ = recheck.tick() => {
                    // A free key (never created, or deleted) while the gate was closed: try again once it opens.
                    if observed.is_none() && gate() {
                        break;
                    }
                }
                _ = timer => {
                    let Some(revision) = observed else {
                        expires = None;
                        continue;
                    };
                    if !gate() {
                        // This node holds its share: look again later (the holder may be back, or the share grown).
                        expires = Some(Instant::now() + retry);
                        continue;
                    }
                    tracing::info!(revision, "the lease expired; taking it");
                    let sent = Instant::now();
                    match cluster.kv.update(&key, value.clone(), revision).await {
                        Ok(won) => return (won, sent),
                        Err(err) if is_wrong_last(&err, err.kind() == UpdateErrorKind::WrongLastRevision) => {
                            // Another node won, or the holder renewed and the watch did not tell us (a watch whose
                            // server died can stall): watch again, which starts from the key's current revision.
                            tracing::info!(revision, "the lease moved on; watching it again");
                            break;
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "taking the expired lease failed; retrying");
                            expires = Some(Instant::now() + retry);
                        }
                    }
                }
            }
        }
    }
}

/// Appends the takeover marker after the journal's current last entry; re-reads and retries when a stale owner
/// appended in between (it stops at its own deadline, so this ends).
async fn append_marker(
    cluster: &Cluster,
    journal: &str,
    epoch: u64,
    node: &str,
    lost: &watch::Receiver<bool>,
) -> Result<u64, NatsError> {
    let msg_id = format!("j:{epoch}:0");
    let retry = Duration::from_millis(200);
    let subjects = &cluster.subjects;
    loop {
        if *lost.borrow() {
            return Err(NatsError::LeaseLost);
        }
        let last = match last_on_journal(&cluster.js, &subjects.stream, journal).await {
            // Our own marker, whose acknowledgment was lost.
            Ok(Some((seq, Some(id)))) if id == msg_id => return Ok(seq),
            Ok(Some((seq, _))) => seq,
            Ok(None) => 0,
            Err(message) => {
                tracing::warn!(
                    error = message,
                    "reading the journal's tail failed; retrying"
                );
                sleep(retry).await;
                continue;
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, msg_id.as_str());
        headers.insert(NATS_EXPECTED_STREAM, subjects.stream.as_str());
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            last.to_string().as_str(),
        );
        headers.insert(KIND_HEADER, KIND_MARKER);
        headers.insert(EPOCH_HEADER, epoch.to_string().as_str());
        headers.insert(NODE_HEADER, node);
        let deadline = Instant::now() + APPEND_DEADLINE;
        match publish_until(&cluster.js, journal, &headers, &Bytes::new(), deadline).await {
            Ok(ack) => return Ok(ack.sequence),
            Err(PublishFailure::WrongLast) => {
                tracing::info!(
                    last,
                    "the journal moved while appending the takeover marker; retrying"
                );
            }
            Err(PublishFailure::Unavailable(message)) => {
                tracing::warn!(
                    error = message,
                    "appending the takeover marker failed; retrying"
                );
            }
            Err(PublishFailure::Invalid(message)) => {
                return Err(NatsError::request("appending the takeover marker", message));
            }
        }
    }
}

/// The renewing side of a held lease.
struct Renewal {
    kv: kv::Store,
    js: async_nats::jetstream::Context,
    bucket: String,
    /// The lease key (`shard.<n>`).
    key: String,
    value: Bytes,
    revision: u64,
    /// Send time of the last acknowledged write (the acquiring one at first).
    acked_at: Instant,
    every: Duration,
    /// 0.8 x the lease: how long after `acked_at` the lease counts as lost.
    budget: Duration,
    log: Arc<NatsLog>,
    on_loss: Box<dyn Fn() + Send + Sync>,
    lost: watch::Sender<bool>,
}

impl Renewal {
    /// Renews until stopped (returns the last revision) or lost (returns `None`).
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Option<u64> {
        let mut next = Instant::now() + self.every;
        loop {
            let deadline = self.acked_at + self.budget;
            tokio::select! {
                biased;
                _ = &mut stop => return Some(self.revision),
                _ = sleep_until(deadline) => {
                    self.lose("no renewal was acknowledged in time");
                    return None;
                }
                _ = sleep_until(next) => {}
            }
            next = Instant::now() + self.every;
            let sent = Instant::now();
            let renewed = timeout_at(
                deadline,
                self.kv.update(&self.key, self.value.clone(), self.revision),
            )
            .await;
            match renewed {
                Err(_elapsed) => {
                    self.lose("no renewal was acknowledged in time");
                    return None;
                }
                Ok(Ok(revision)) => {
                    self.revision = revision;
                    self.acked_at = sent;
                }
                Ok(Err(err))
                    if is_wrong_last(&err, err.kind() == UpdateErrorKind::WrongLastRevision) =>
                {
                    // Either another node took the lease, or an earlier renewal of ours landed after its
                    // acknowledgment was lost. Only we write this exact value, so the key's last value tells.
                    match timeout_at(deadline, self.current()).await {
                        Ok(Some((revision, value)))
                            if value == self.value && revision > self.revision =>
                        {
                            tracing::info!(
                                revision,
                                "a renewal whose acknowledgment was lost had landed"
                            );
                            self.revision = revision;
                            next = Instant::now();
                        }
                        _ => {
                            self.lose("another node took the lease");
                            return None;
                        }
                    }
                }
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "renewing the lease failed; retrying");
                }
            }
        }
    }

    /// The key's last revision and value, read from the bucket's stream leader (`None` when deleted, or unread).
    async fn current(&self) -> Option<(u64, Bytes)> {
        let stream = self
            .js
            .get_stream_no_info(format!("KV_{}", self.bucket))
            .await
            .ok()?;
        let subject = format!("$KV.{}.{}", self.bucket, self.key);
        match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) if message.headers.get(KV_OPERATION).is_none() => {
                Some((message.sequence, message.payload))
            }
            Ok(_) => None,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => None,
            Err(err) => {
                tracing::warn!(error = %err, "reading the lease failed");
                None
            }
        }
    }

    fn lose(&self, why: &str) {
        tracing::error!(why, "the lease is lost: this node stops writing the shard");
        self.log.fence();
        self.lost.send_replace(true);
        (self.on_loss)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_values_encode_node_and_epoch() {
        let acquiring = LeaseValue {
            node: "n1".into(),
            epoch: None,
        };
        assert_eq!(
            serde_json::to_string(&acquiring).expect("encodes"),
            r#"{"node":"n1"}"#
        );
        let renewing = LeaseValue {
            node: "n1".into(),
            epoch: Some(7),
        };
        assert_eq!(
            serde_json::to_string(&renewing).expect("encodes"),
            r#"{"node":"n1","epoch":7}"#
        );
    }
}
