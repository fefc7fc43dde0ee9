//! [`Tailer`]: delivers the stream, in order and once each, to the local replica.
//!
//! An async task reads the stream with an ordered consumer and hands each entry over a small bounded channel to a
//! dedicated thread, which calls the (blocking) [`Applier`]. A replica that cannot apply an entry exits the process
//! (status 70): it must not serve reads that stopped following the log.

use std::sync::Arc;
use std::time::Duration;

use abstractgateway_store::replica::{Applier, EntryKind};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::log::{KIND_HEADER, KIND_MARKER};

/// Exit status of a replica that cannot follow the log (EX_SOFTWARE).
const EXIT_CANNOT_FOLLOW: i32 = 70;
/// Entries read ahead of the applier (each up to the stream's 8 MiB message limit).
const READ_AHEAD: usize = 16;
/// Expiry of the consumer's pull requests. The client derives the idle heartbeat from it (half of it) and recreates
/// the consumer after two missed heartbeats, so this bounds how long the tailer stalls when the server holding its
/// consumer dies: about 2 x this (the client's default of 30 s would stall it a minute).
const PULL_EXPIRES: Duration = Duration::from_secs(2);
/// How often the reader polls an idle consumer (see `read_from`).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// After this long without an entry, the reader checks the stream's last sequence and starts over if it missed one.
const STALL_CHECK: Duration = Duration::from_secs(10);

/// What the reading task hands the applying thread.
struct Delivery {
    seq: u64,
    kind: EntryKind,
    payload: Bytes,
}

/// The subjects the tailer tells apart.
#[derive(Clone)]
pub(crate) struct Subjects {
    pub(crate) stream: String,
    pub(crate) journal: String,
    pub(crate) intake: String,
}

/// Feeds the local replica from the log for as long as it lives; stops when dropped.
pub struct Tailer {
    task: tokio::task::JoinHandle<()>,
    /// Closed when the applying thread has ended (and dropped its handle on the replica).
    applier_done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    js: jetstream::Context,
    stream: String,
    applier: Arc<dyn Applier>,
    progress: Arc<watch::Sender<u64>>,
}

impl Tailer {
    pub(crate) fn start(
        handle: &tokio::runtime::Handle,
        js: jetstream::Context,
        subjects: Subjects,
        applier: Arc<dyn Applier>,
        progress: Arc<watch::Sender<u64>>,
    ) -> Tailer {
        let (tx, rx) = mpsc::channel::<Delivery>(READ_AHEAD);
        let start = applier.applied();
        let (done_tx, applier_done) = std::sync::mpsc::channel::<()>();
        {
            let applier = applier.clone();
            let progress = progress.clone();
            std::thread::Builder::new()
                .name("ag-log-apply".into())
                .spawn(move || {
                    apply_loop(rx, applier, progress);
                    drop(done_tx);
                })
                .unwrap_or_else(|err| {
                    tracing::error!(error = %err, "cannot start the log applier thread");
                    std::process::exit(EXIT_CANNOT_FOLLOW)
                });
        }
        let stream = subjects.stream.clone();
        let task = handle.spawn(read_loop(js.clone(), subjects, start, tx));
        Tailer {
            task,
            applier_done: std::sync::Mutex::new(applier_done),
            js,
            stream,
            applier,
            progress,
        }
    }

    /// Resolves once the local replica has applied every entry the stream held when this was called (the
    /// stream's last sequence is read from its leader, retried until it answers).
    pub async fn caught_up(&self) {
        let mut backoff = Duration::from_millis(100);
        let target = loop {
            match self.js.get_stream(&self.stream).await {
                Ok(stream) => break stream.cached_info().state.last_sequence,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the log's last sequence failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        };
        wait_applied(&*self.applier, &self.progress, target, None).await;
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        // Aborting the reader drops the channel's sender, which ends the applying thread after its current entry.
        // Waiting for it (briefly: one entry) means the replica is no longer held once this is dropped, so the
        // store can close and its data dir be reopened.
        self.task.abort();
        if let Ok(done) = self.applier_done.lock() {
            let _ = done.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// Waits until `applier.applied() >= target`, woken by the appliers' progress (and a slow poll besides); gives up
/// (returns false) when `stop` turns true.
pub(crate) async fn wait_applied(
    applier: &dyn Applier,
    progress: &watch::Sender<u64>,
    target: u64,
    mut stop: Option<watch::Receiver<bool>>,
) -> bool {
    let mut rx = progress.subscribe();
    loop {
        if applier.applied() >= target {
            return true;
        }
        if stop.as_ref().is_some_and(|s| *s.borrow()) {
            return false;
        }
        let stopped = async {
            match stop.as_mut() {
                Some(s) => {
                    let _ = s.changed().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = rx.changed() => {}
            _ = stopped => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Reads the stream from `start + 1` with an ordered consumer, recreating it after any error from the next
/// sequence not yet handed over.
async fn read_loop(
    js: jetstream::Context,
    subjects: Subjects,
    start: u64,
    tx: mpsc::Sender<Delivery>,
) {
    let mut next = start + 1;
    let mut backoff = Duration::from_millis(100);
    loop {
        let before = next;
        match read_from(&js, &subjects, &mut next, &tx).await {
            ReadEnd::Closed => return,
            ReadEnd::Failed(why) => {
                tracing::warn!(next, error = %why, "log tailer interrupted; resuming");
            }
        }
        if next != before {
            backoff = Duration::from_millis(100);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

enum ReadEnd {
    /// The applying side is gone (the tailer was dropped).
    Closed,
    /// The consumer failed; read again from `next`.
    Failed(String),
}

async fn read_from(
    js: &jetstream::Context,
    subjects: &Subjects,
    next: &mut u64,
    tx: &mpsc::Sender<Delivery>,
) -> ReadEnd {
    let deliver_policy = if *next <= 1 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: *next,
        }
    };
    let stream = match js.get_stream_no_info(&subjects.stream).await {
        Ok(s) => s,
        Err(e) => return ReadEnd::Failed(e.to_string()),
    };
    let consumer = match stream
        .create_consumer(OrderedConfig {
            deliver_policy,
            max_expires: PULL_EXPIRES,
            ..Default::default()
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return ReadEnd::Failed(format!("creating the consumer: {e}")),
    };
    let mut messages = match consumer.messages().await {
        Ok(m) => m,
        Err(e) => return ReadEnd::Failed(format!("starting the consumer: {e}")),
    };
    let mut progress_at = Instant::now();
    loop {
        // Polled again every second even when idle: the client's ordered consumer notices the first missed
        // heartbeat but is not woken again to notice the second (which recreates the consumer), so without these
        // polls a tailer whose consumer's server died waits for an unrelated wake-up (tens of seconds).
        let message = match tokio::time::timeout(IDLE_POLL, messages.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return ReadEnd::Failed("the consumer ended".into()),
            Err(_idle) => {
                if progress_at.elapsed() < STALL_CHECK {
                    continue;
                }
                // Idle for a while: make sure the stream has nothing for us rather than trusting the consumer.
                progress_at = Instant::now();
                match stream.get_info().await {
                    Ok(info) if info.state.last_sequence >= *next => {
                        return ReadEnd::Failed(format!(
                            "the consumer stalled before entry {}",
                            *next
                        ));
                    }
                    Ok(_) => continue,
                    Err(e) => return ReadEnd::Failed(format!("reading the stream's state: {e}")),
                }
            }
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => return ReadEnd::Failed(e.to_string()),
        };
        let seq = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => return ReadEnd::Failed(format!("message without JetStream metadata: {e}")),
        };
        if seq < *next {
            // An ordered consumer recreated before its first message starts over from the stream's first entry;
            // start again from where we are instead of reading everything once more.
            return ReadEnd::Failed(format!("the consumer went back to {seq}"));
        }
        let kind = kind_of(subjects, &message.subject, message.headers.as_ref());
        let Some(kind) = kind else {
            tracing::error!(
                seq,
                subject = %message.subject,
                "the log holds an entry this build does not understand; this replica cannot follow it"
            );
            std::process::exit(EXIT_CANNOT_FOLLOW);
        };
        let delivery = Delivery {
            seq,
            kind,
            payload: message.payload.clone(),
        };
        if tx.send(delivery).await.is_err() {
            return ReadEnd::Closed;
        }
        *next = seq + 1;
        progress_at = Instant::now();
    }
}

/// An entry's kind from its subject and `Ag-Kind` header; `None` for what this build does not know.
fn kind_of(
    subjects: &Subjects,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
) -> Option<EntryKind> {
    let tag = headers.and_then(|h| h.get(KIND_HEADER)).map(|v| v.as_str());
    let journal = subject == subjects.journal
        || subject
            .strip_prefix(subjects.journal.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|n| n.parse::<u32>().is_ok());
    if journal {
        match tag {
            None => Some(EntryKind::Owned),
            Some(KIND_MARKER) => Some(EntryKind::Marker),
            Some(_) => None,
        }
    } else if subject == subjects.intake {
        match tag {
            None => Some(EntryKind::Intake),
            Some(_) => None,
        }
    } else {
        None
    }
}

/// The applying thread: every delivery after what the replica already holds, in order; exits the process when the
/// replica refuses one.
fn apply_loop(
    mut rx: mpsc::Receiver<Delivery>,
    applier: Arc<dyn Applier>,
    progress: Arc<watch::Sender<u64>>,
) {
    let mut last = applier.applied();
    while let Some(delivery) = rx.blocking_recv() {
        if delivery.seq <= last {
            continue;
        }
        if let Err(err) = applier.apply(delivery.seq, delivery.kind, &delivery.payload) {
            tracing::error!(
                seq = delivery.seq,
                error = %err,
                "the local replica cannot apply a log entry; exiting rather than serving stale reads"
            );
            eprintln!(
                "abstractgateway: the local replica cannot apply log entry {}: {err}; exiting",
                delivery.seq
            );
            std::process::exit(EXIT_CANNOT_FOLLOW);
        }
        last = delivery.seq;
        progress.send_modify(|applied| *applied = (*applied).max(delivery.seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_subject_and_header() {
        let s = Subjects {
            stream: "AG_LOG".into(),
            journal: "ag.j".into(),
            intake: "ag.in".into(),
        };
        let mut marker = async_nats::HeaderMap::new();
        marker.insert(KIND_HEADER, KIND_MARKER);
        let mut other = async_nats::HeaderMap::new();
        other.insert(KIND_HEADER, "start");
        let plain = async_nats::HeaderMap::new();
        assert_eq!(kind_of(&s, "ag.j", None), Some(EntryKind::Owned));
        assert_eq!(kind_of(&s, "ag.j", Some(&plain)), Some(EntryKind::Owned));
        assert_eq!(kind_of(&s, "ag.j", Some(&marker)), Some(EntryKind::Marker));
        assert_eq!(kind_of(&s, "ag.j", Some(&other)), None);
        assert_eq!(kind_of(&s, "ag.in", Some(&plain)), Some(EntryKind::Intake));
        assert_eq!(kind_of(&s, "ag.in", Some(&marker)), None);
        assert_eq!(kind_of(&s, "ag.x", None), None);
        // The other shards' journals.
        assert_eq!(kind_of(&s, "ag.j.3", None), Some(EntryKind::Owned));
        assert_eq!(
            kind_of(&s, "ag.j.3", Some(&marker)),
            Some(EntryKind::Marker)
        );
        assert_eq!(kind_of(&s, "ag.j.x", None), None);
        assert_eq!(kind_of(&s, "ag.jx", None), None);
    }
}
