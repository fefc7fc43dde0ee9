//! The one record/replay wrapper every host function goes through (Golem's durability pattern): a call is
//! answered from the ledger while a replay lasts, and otherwise executed live and appended to the ledger.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::bindings::types::Error as WitError;
use super::sandbox::{HostClock, HostStop};
use crate::run::{HostCall, RunState};
use crate::runner::executor::CancelFlag;
use crate::store::{Batch, CommitTicket, Store};

/// The recorded host calls of a node could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("ledger write failed: {0}")]
pub struct FlushError(#[from] crate::store::StoreError);

/// Names one host function and how its record must be persisted.
#[derive(Debug, Clone, Copy)]
pub struct HostFn {
    pub interface: &'static str,
    pub function: &'static str,
    /// A side effect outside this process: its record is fsynced before the component sees the answer, so it
    /// is never repeated. Local calls are queued in small batches, made durable with the node's next remote
    /// call or before its outcome is reported (a lost one is simply re-executed).
    pub remote: bool,
}

impl HostFn {
    /// A call with effects outside the process.
    pub const fn remote(interface: &'static str, function: &'static str) -> HostFn {
        HostFn {
            interface,
            function,
            remote: true,
        }
    }
    /// A call that only reads, or only touches this process.
    pub const fn local(interface: &'static str, function: &'static str) -> HostFn {
        HostFn {
            interface,
            function,
            remote: false,
        }
    }
}

/// The ledger cursor of one node execution: recorded calls to replay, then where live calls append.
pub struct Recorder {
    /// None while describing a component (no run, so no call can be recorded).
    store: Option<Store>,
    /// Identity used to stamp records (run id, session, actor; no vars).
    run: RunState,
    node_id: String,
    /// Seq of the node's `started` record.
    started_seq: u64,
    /// `run:started_seq`, the stable prefix of idempotency keys.
    key_base: String,
    replay: VecDeque<HostCall>,
    /// Last seq appended (or found) in the run's ledger; shared with the recorders of nested tool calls,
    /// which append into the same ledger while the caller waits.
    cursor: Arc<AtomicU64>,
    /// Records not yet handed to the store; shared with nested recorders like `cursor`.
    tail: Arc<Mutex<Tail>>,
    /// This recorder's calls (they number its records and idempotency keys).
    calls: u64,
    /// Calls made by this execution and every tool call nested in it: one budget for the whole tree.
    budget_used: Arc<AtomicU64>,
    max_calls: u64,
    /// How deep in nested tool calls this recorder is (0 = the node itself).
    depth: u32,
    cancel: Arc<CancelFlag>,
    /// Time spent inside live host calls (excluded from the component's own time budget).
    pub clock: Arc<HostClock>,
}

/// How deep tool calls may nest (a node calling a tool is depth 1).
pub const MAX_TOOL_DEPTH: u32 = 4;

impl Recorder {
    /// A recorder that first replays `replay`, then appends after `ledger_len`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Option<Store>,
        run: RunState,
        node_id: String,
        started_seq: u64,
        replay: Vec<HostCall>,
        ledger_len: u64,
        max_calls: u64,
        cancel: Arc<CancelFlag>,
    ) -> Recorder {
        Recorder {
            key_base: format!("{}:{started_seq}", run.run_id),
            started_seq,
            store,
            run,
            node_id,
            replay: replay.into(),
            cursor: Arc::new(AtomicU64::new(ledger_len)),
            tail: Arc::default(),
            calls: 0,
            budget_used: Arc::default(),
            max_calls,
            depth: 0,
            cancel,
            clock: HostClock::new(),
        }
    }

    /// A recorder with no run: every host call is refused (`describe()`, pin expressions).
    pub fn detached(label: &str) -> Recorder {
        Recorder::new(
            None,
            super::invoke::stamp(label.into(), label.into(), None, None, None, 0),
            label.into(),
            0,
            vec![],
            0,
            0,
            Arc::new(CancelFlag::default()),
        )
    }

    /// A recorder for the host calls of a tool plugin run by this node's next call (`tools.invoke`): it appends
    /// to the same ledger cursor, under node id `<node>/<label>#<call>` so the caller's own replay skips its
    /// records, and its idempotency keys extend the caller's key of that call. Its calls count against the
    /// caller's budget, and it is one level deeper.
    pub fn nested(&self, label: &str) -> Recorder {
        let call = self.calls + 1;
        Recorder {
            key_base: format!("{}:{call}", self.key_base),
            started_seq: self.started_seq,
            store: self.store.clone(),
            run: self.run.clone(),
            node_id: self.nested_node_id(label),
            replay: VecDeque::new(),
            cursor: self.cursor.clone(),
            tail: self.tail.clone(),
            calls: 0,
            budget_used: self.budget_used.clone(),
            max_calls: self.max_calls,
            depth: self.depth + 1,
            cancel: self.cancel.clone(),
            clock: HostClock::new(),
        }
    }

    /// Sets what to replay (records of an earlier, interrupted try) and narrows the call budget of a nested
    /// recorder to the tool's own limit (never beyond what the caller has left).
    pub fn with_replay(mut self, replay: Vec<HostCall>, max_calls: u64) -> Recorder {
        self.replay = replay.into();
        let used = self.budget_used.load(Ordering::SeqCst);
        self.max_calls = self.max_calls.min(used.saturating_add(max_calls));
        self
    }

    /// Names the shard of the run (cluster mode): every record and host-call write goes to that shard's journal.
    pub fn on_shard(self, shard: u32) -> Recorder {
        self.tail.lock().shard = shard;
        self
    }

    /// The shard of the run.
    pub fn shard(&self) -> u32 {
        self.tail.lock().shard
    }

    /// How deep in nested tool calls this recorder is.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The cancel flag of the execution (shared by nested tool calls).
    pub fn cancel_flag(&self) -> &Arc<CancelFlag> {
        &self.cancel
    }

    /// The node id records are stamped with.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The node id [`Recorder::nested`] would stamp records with.
    pub fn nested_node_id(&self, label: &str) -> String {
        format!("{}/{label}#{}", self.node_id, self.calls + 1)
    }

    /// Seq of the node's `started` record.
    pub fn started_seq(&self) -> u64 {
        self.started_seq
    }

    /// Last seq appended (or found) in the run's ledger.
    pub fn ledger_len(&self) -> u64 {
        self.cursor.load(Ordering::SeqCst)
    }

    /// True while recorded answers remain.
    pub fn replaying(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The idempotency key of the next call: stable across replays of this node execution.
    pub fn next_key(&self) -> String {
        call_key(&self.key_base, self.calls + 1)
    }

    /// The store of the run's ledger.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The run this node belongs to, as it was when the node started.
    pub fn run(&self) -> &RunState {
        &self.run
    }

    /// The run id this node belongs to.
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// Records or replays one call. `live` runs only when no recorded answer is left; the outer error traps
    /// the component (divergence, cancellation, a ledger that cannot be written).
    pub async fn call<Q, R, F>(
        &mut self,
        f: HostFn,
        request: Q,
        live: F,
    ) -> wasmtime::Result<Result<R, WitError>>
    where
        Q: Serialize,
        R: Serialize + DeserializeOwned,
        F: Future<Output = Result<R, WitError>>,
    {
        self.calls += 1;
        if self.budget_used.fetch_add(1, Ordering::SeqCst) >= self.max_calls {
            return Err(HostStop::HostCalls(self.max_calls).into());
        }
        if let Some(rec) = self.replay.pop_front() {
            // The request becomes a `Value` only to be compared with a recorded one; a first execution
            // writes it straight into its record.
            let request = serde_json::to_value(&request).map_err(|e| {
                HostStop::Failed(format!(
                    "the request of {}.{} cannot be encoded: {e}",
                    f.interface, f.function
                ))
            })?;
            if rec.interface != f.interface || rec.function != f.function || rec.request != request
            {
                return Err(HostStop::Divergence(format!(
                    "host call #{} was recorded as {}.{}({}) but the component now calls {}.{}({})",
                    self.calls,
                    rec.interface,
                    rec.function,
                    clip(&rec.request),
                    f.interface,
                    f.function,
                    clip(&request)
                ))
                .into());
            }
            return match rec.answer {
                Ok(v) => Ok(Ok(serde_json::from_value(v).map_err(|e| {
                    HostStop::Divergence(format!(
                        "recorded answer of {}.{} cannot be read back: {e}",
                        f.interface, f.function
                    ))
                })?)),
                Err(e) => Ok(Err(super::caps::error_from_json(&e).ok_or_else(|| {
                    HostStop::Divergence(format!(
                        "recorded error of {}.{} cannot be read back: {e}",
                        f.interface, f.function
                    ))
                })?)),
            };
        }
        if self.cancel.is_cancelled() {
            return Err(HostStop::Cancelled.into());
        }
        let Some(store) = self.store.clone() else {
            return Err(HostStop::Failed(format!(
                "{}.{}: host calls are not allowed here (no run to record them in)",
                f.interface, f.function
            ))
            .into());
        };
        if f.remote {
            // Records held back become visible before a call that may take long, not after it.
            self.tail.lock().submit(&store);
        }
        let t0 = Instant::now();
        let cancel = self.cancel.clone();
        self.clock.enter();
        let answer = tokio::select! {
            // The call first: most answer at once, and then the cancel future is never even polled.
            biased;
            a = live => Some(a),
            _ = cancel.cancelled() => None,
        };
        self.clock.exit();
        let Some(answer) = answer else {
            return Err(HostStop::Cancelled.into());
        };
        let took = t0.elapsed();
        super::metrics::host_call(f.interface, answer.is_ok());
        let error;
        let recorded = match &answer {
            Ok(v) => Ok(v),
            Err(e) => {
                error = super::caps::error_json(e);
                Err(&error)
            }
        };
        let key = call_key(&self.key_base, self.calls);
        let json = encode_call_record(
            &self.run,
            &self.node_id,
            f,
            &request,
            recorded,
            took.as_secs_f64() * 1000.0,
            &key,
            &Stamp::now(),
        )
        .map_err(|e| {
            HostStop::Failed(format!(
                "the record of {}.{} cannot be encoded: {e}",
                f.interface, f.function
            ))
        })?;
        // Seq taken and record queued under one lock, so records reach the committer in seq order whichever
        // recorder (this node's or a nested tool's) appends them.
        let durable = {
            let mut tail = self.tail.lock();
            let seq = self.cursor.fetch_add(1, Ordering::SeqCst) + 1;
            tail.batch.append_ledger_json(&self.run.run_id, seq, json);
            if f.remote {
                // The answer must not reach the component before its record (and every one before it) is
                // fsynced: a remote effect is never repeated.
                tail.since = None;
                Some(store.submit_async(tail.take()))
            } else {
                let first = tail.since.is_none();
                let since = *tail.since.get_or_insert(t0);
                tail.buffered += 1;
                if tail.buffered >= MAX_BUFFERED || since.elapsed() >= MAX_HELD {
                    tail.submit(&store);
                } else if first {
                    self.submit_later(&store);
                }
                None
            }
        };
        if let Some(done) = durable {
            done.await
                .map_err(|e| HostStop::Failed(format!("ledger write failed: {e}")))?;
        }
        Ok(answer)
    }

    /// Queues the batch just started once it is `MAX_HELD` old, even if the node makes no further call (a node
    /// that logs, then computes for long, still shows the log as it happens).
    fn submit_later(&self, store: &Store) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (tail, store) = (Arc::downgrade(&self.tail), store.clone());
        rt.spawn(async move {
            tokio::time::sleep(MAX_HELD).await;
            if let Some(tail) = tail.upgrade() {
                let mut tail = tail.lock();
                // A newer batch (started after this one was queued) has its own timer.
                if tail.since.is_some_and(|t| t.elapsed() >= MAX_HELD) {
                    tail.submit(&store);
                }
            }
        });
    }

    /// Hands buffered records to the store and waits until every one is durable (before the node's outcome is
    /// reported).
    pub fn flush(&mut self) -> Result<(), FlushError> {
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let tickets = {
            let mut tail = self.tail.lock();
            tail.submit(store);
            std::mem::take(&mut tail.tickets)
        };
        for t in tickets {
            t.wait()?;
        }
        Ok(())
    }
}

/// Local records held back at most this many at a time: they are queued as one batch (one channel message, one
/// continuity check), and a crash before they are durable only means those local calls run again.
const MAX_BUFFERED: usize = 256;
/// ... and at most this long, so a client following the ledger sees a busy node's records promptly.
const MAX_HELD: Duration = Duration::from_millis(20);

/// The ledger records of one node execution not yet durable: a batch being filled and the tickets of batches
/// already queued.
#[derive(Default)]
struct Tail {
    batch: Batch,
    /// The shard of the run (its owner's journal takes these records).
    shard: u32,
    buffered: usize,
    /// When the oldest record of `batch` was made.
    since: Option<Instant>,
    tickets: Vec<CommitTicket>,
}

impl Tail {
    /// Queues the records held back (in seq order: callers hold the lock that assigns seqs).
    fn submit(&mut self, store: &Store) {
        if !self.batch.is_empty() {
            let ticket = store.submit(self.take());
            self.tickets.push(ticket);
        }
        self.buffered = 0;
        self.since = None;
    }

    /// The batch being filled, marked with the run's shard; a new one starts.
    fn take(&mut self) -> Batch {
        let mut batch = std::mem::take(&mut self.batch);
        batch.set_shard(self.shard);
        batch
    }
}

/// A record's step id and timestamp (both `started_at` and `ended_at`: a host call is recorded once, done).
/// Both are ASCII with nothing to escape (hex digits and dashes; [`crate::time::now_iso`]'s fixed format).
struct Stamp {
    step_id: [u8; 36],
    at: String,
}

impl Stamp {
    /// A fresh v4 step id and now, as [`crate::run::StepRecord::new`] stamps records.
    fn now() -> Stamp {
        let mut step_id = [0u8; 36];
        uuid::Uuid::new_v4().hyphenated().encode_lower(&mut step_id);
        Stamp {
            step_id,
            at: crate::time::now_iso(),
        }
    }

    fn step_id(&self) -> &str {
        // Always the 36 ASCII characters `encode_lower` wrote.
        std::str::from_utf8(&self.step_id).unwrap_or_default()
    }
}

/// The ledger record of one host call, written straight from borrowed parts: the same 16 keys, in the same
/// order and with the same values, as serialising the [`crate::run::StepRecord`] that
/// [`crate::run::host_call_record`] builds (clients and replay read that shape; a unit test compares the
/// bytes). Keys, the step id, the timestamps and the status have nothing to escape and are copied as they
/// are; every other string and value goes through `serde_json`.
#[allow(clippy::too_many_arguments)]
fn encode_call_record<Q: Serialize + ?Sized, A: Serialize>(
    run: &RunState,
    node_id: &str,
    f: HostFn,
    request: &Q,
    answer: Result<&A, &Value>,
    duration_ms: f64,
    idempotency_key: &str,
    stamp: &Stamp,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(RECORD_CAPACITY);
    let w = &mut out;
    let (status, error) = match answer {
        Ok(_) => ("completed", None),
        Err(e) => ("failed", e.get("message").and_then(Value::as_str)),
    };
    w.extend_from_slice(br#"{"run_id":"#);
    serde_json::to_writer(&mut *w, &run.run_id)?;
    w.extend_from_slice(br#","step_id":""#);
    w.extend_from_slice(stamp.step_id().as_bytes());
    w.extend_from_slice(br#"","node_id":"#);
    serde_json::to_writer(&mut *w, node_id)?;
    w.extend_from_slice(br#","status":""#);
    w.extend_from_slice(status.as_bytes());
    w.extend_from_slice(br#"","effect":{"type":"host_call","payload":{"interface":"#);
    serde_json::to_writer(&mut *w, f.interface)?;
    w.extend_from_slice(br#","function":"#);
    serde_json::to_writer(&mut *w, f.function)?;
    w.extend_from_slice(br#","request":"#);
    serde_json::to_writer(&mut *w, request)?;
    w.extend_from_slice(br#"},"result_key":null},"result":{"#);
    match answer {
        Ok(ok) => {
            w.extend_from_slice(br#""ok":"#);
            serde_json::to_writer(&mut *w, ok)?;
        }
        Err(e) => {
            w.extend_from_slice(br#""error":"#);
            serde_json::to_writer(&mut *w, e)?;
        }
    }
    w.extend_from_slice(br#","duration_ms":"#);
    serde_json::to_writer(&mut *w, &duration_ms)?;
    w.extend_from_slice(br#"},"error":"#);
    serde_json::to_writer(&mut *w, &error)?;
    w.extend_from_slice(br#","started_at":""#);
    w.extend_from_slice(stamp.at.as_bytes());
    w.extend_from_slice(br#"","ended_at":""#);
    w.extend_from_slice(stamp.at.as_bytes());
    w.extend_from_slice(br#"","actor_id":"#);
    serde_json::to_writer(&mut *w, &run.actor_id)?;
    w.extend_from_slice(br#","session_id":"#);
    serde_json::to_writer(&mut *w, &run.session_id)?;
    w.extend_from_slice(br#","attempt":1,"idempotency_key":"#);
    serde_json::to_writer(&mut *w, idempotency_key)?;
    w.extend_from_slice(br#","prev_hash":null,"record_hash":null,"signature":null}"#);
    Ok(out)
}

/// Room for a typical host-call record, so encoding one rarely reallocates.
const RECORD_CAPACITY: usize = 640;

/// `<key_base>:<n>`, the idempotency key of a node's n-th host call (built once per call: without the
/// formatting machinery, which was a tenth of a `log` call's instructions).
fn call_key(key_base: &str, n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut key = String::with_capacity(key_base.len() + 1 + digits.len());
    key.push_str(key_base);
    key.push(':');
    key.push_str(digits);
    key
}

fn clip(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_call_key_is_the_base_and_the_call_number() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            assert_eq!(super::call_key("run-1:7", n), format!("run-1:7:{n}"), "{n}");
        }
        assert_eq!(super::call_key("", 3), ":3");
    }

    use super::*;
    use serde_json::json;

    fn recorder(store: &Store, replay: Vec<HostCall>) -> Recorder {
        let run = crate::run::new_run_state("wf", "n", Default::default(), None, None, None);
        Recorder::new(
            Some(store.clone()),
            run,
            "n".into(),
            1,
            replay,
            1,
            10,
            Arc::new(CancelFlag::default()),
        )
    }

    fn recorded(request: Value, answer: Value) -> HostCall {
        HostCall {
            interface: "http".into(),
            function: "fetch".into(),
            request,
            answer: Ok(answer),
        }
    }

    /// A typed answer with nested data, as caps return them.
    #[derive(Serialize)]
    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Option<String>,
        ratio: f64,
    }

    #[test]
    fn a_record_encoded_from_its_parts_is_byte_identical_to_the_step_record() {
        let mut run = crate::run::new_run_state("wf", "n", Default::default(), None, None, None);
        let stamp = Stamp {
            step_id: *b"0f6c1d2e-3b4a-4c5d-8e9f-a0b1c2d3e4f5",
            at: "2026-11-28T12:07:35.617408+00:00".into(),
        };
        let request = json!({"url": "https://x.test/a?b=\"c\"", "headers": {"z": "1", "a": "2"}, "n": [1, 2.5]});
        let answer = Answer {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; é".into())],
            body: None,
            ratio: 0.1,
        };
        let error = json!({"code": "denied", "message": "no \u{1} grant", "details": {"k": null}});
        let bare_error = json!({"code": "io"});
        for actor in [None, Some("actor-1".to_string())] {
            run.actor_id = actor;
            let cases: [(Result<Value, Value>, Vec<u8>); 4] = [
                (
                    Ok(serde_json::to_value(&answer).expect("value")),
                    encode(&run, &request, Ok(&answer), &stamp),
                ),
                (Ok(Value::Null), encode(&run, &request, Ok(&()), &stamp)),
                (
                    Err(error.clone()),
                    encode::<()>(&run, &request, Err(&error), &stamp),
                ),
                (
                    Err(bare_error.clone()),
                    encode::<()>(&run, &request, Err(&bare_error), &stamp),
                ),
            ];
            for (recorded, got) in cases {
                let mut rec = crate::run::host_call_record(
                    &run,
                    "node-1",
                    ("http", "fetch"),
                    request.clone(),
                    recorded.clone(),
                    12.345,
                );
                rec.step_id = stamp.step_id().to_string();
                rec.started_at = stamp.at.clone();
                rec.ended_at = Some(stamp.at.clone());
                rec.idempotency_key = Some("r:3:7".into());
                let want = serde_json::to_vec(&rec).expect("encode");
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
                // Replay reads it back as the call it was.
                let back: Value = serde_json::from_slice(&got).expect("json");
                let call = HostCall::from_record(&back).expect("a host call");
                assert_eq!(call.request, request);
                assert_eq!(call.answer, recorded);
            }
        }
    }

    fn encode<A: Serialize>(
        run: &RunState,
        request: &Value,
        answer: Result<&A, &Value>,
        stamp: &Stamp,
    ) -> Vec<u8> {
        encode_call_record(
            run,
            "node-1",
            HostFn::remote("http", "fetch"),
            request,
            answer,
            12.345,
            "r:3:7",
            stamp,
        )
        .expect("encode")
    }

    #[test]
    fn a_step_id_is_a_lowercase_hyphenated_v4_uuid() {
        let stamp = Stamp::now();
        let id = uuid::Uuid::parse_str(stamp.step_id()).expect("uuid");
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(stamp.step_id(), id.hyphenated().to_string());
        assert!(crate::time::parse_iso(&stamp.at).is_some());
    }

    #[tokio::test]
    async fn replay_answers_from_the_record_without_running_the_call() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = recorder(
            &store,
            vec![recorded(json!({"url": "u"}), json!("recorded"))],
        );
        let got: Result<String, WitError> = rec
            .call(
                HostFn::remote("http", "fetch"),
                json!({"url": "u"}),
                async { panic!("must not run live") },
            )
            .await
            .expect("no trap");
        assert_eq!(got.ok().as_deref(), Some("recorded"));
        assert!(!rec.replaying());
        assert_eq!(rec.ledger_len(), 1, "a replayed call appends nothing");
    }

    #[tokio::test]
    async fn a_call_that_differs_from_its_record_is_a_divergence() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = recorder(&store, vec![recorded(json!({"url": "a"}), json!("x"))]);
        let err = rec
            .call::<_, String, _>(
                HostFn::remote("http", "fetch"),
                json!({"url": "b"}),
                async { Ok("live".into()) },
            )
            .await
            .expect_err("diverges");
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("ReplayDivergence: host call #1 was recorded as http.fetch"),
            "{msg}"
        );
        let mut rec = recorder(&store, vec![recorded(json!({"url": "a"}), json!("x"))]);
        let err = rec
            .call::<_, String, _>(HostFn::local("log", "log"), json!({"url": "a"}), async {
                Ok("live".into())
            })
            .await
            .expect_err("diverges");
        assert!(format!("{err:#}").contains("now calls log.log"));
    }

    #[tokio::test]
    async fn the_call_budget_is_enforced() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = recorder(&store, vec![]);
        rec.max_calls = 2;
        for _ in 0..2 {
            let r: Result<(), WitError> = rec
                .call(HostFn::local("log", "log"), json!({}), async { Ok(()) })
                .await
                .expect("ok");
            assert!(r.is_ok());
        }
        let err = rec
            .call::<_, (), _>(HostFn::local("log", "log"), json!({}), async { Ok(()) })
            .await
            .expect_err("over budget");
        assert!(format!("{err}").contains("more than 2 host calls"));
    }

    /// A recorder of a fresh run whose ledger is empty (its records start at seq 1).
    fn fresh(store: &Store) -> Recorder {
        let run = crate::run::new_run_state("wf", "n", Default::default(), None, None, None);
        Recorder::new(
            Some(store.clone()),
            run,
            "n".into(),
            0,
            vec![],
            0,
            100,
            Arc::new(CancelFlag::default()),
        )
    }

    async fn call(rec: &mut Recorder, f: HostFn, n: u64) {
        let r: Result<(), WitError> = rec
            .call(f, json!({"n": n}), async { Ok(()) })
            .await
            .expect("recorded");
        assert!(r.is_ok());
    }

    /// `(node_id, function, request.n)` of every durable record, in seq order (checking seqs are 1..=len).
    fn durable(store: &Store, run_id: &str) -> Vec<(String, String, u64)> {
        let page = store.ledger_after(run_id, 0, 100).expect("read");
        page.iter()
            .enumerate()
            .map(|(i, e)| {
                assert_eq!(e.seq, i as u64 + 1);
                let v: Value = serde_json::from_str(e.json.get()).expect("json");
                let call = HostCall::from_record(&v).expect("a host call");
                let node = v["node_id"].as_str().unwrap_or_default().to_string();
                (node, call.function, call.request["n"].as_u64().unwrap_or(0))
            })
            .collect()
    }

    #[tokio::test]
    async fn local_records_wait_for_the_next_remote_call_or_the_flush() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = fresh(&store);
        let run_id = rec.run_id().to_string();
        for n in 1..=3 {
            call(&mut rec, HostFn::local("log", "log"), n).await;
        }
        assert_eq!(store.ledger_len(&run_id), 0, "local records are held back");
        call(&mut rec, HostFn::remote("http", "fetch"), 4).await;
        // The remote answer came back only once its record, and every local one before it, was durable.
        let got = durable(&store, &run_id);
        assert_eq!(got.len(), 4);
        assert_eq!(got[3], ("n".into(), "fetch".into(), 4));
        assert_eq!(got[0], ("n".into(), "log".into(), 1));
        call(&mut rec, HostFn::local("log", "log"), 5).await;
        rec.flush().expect("flush");
        assert_eq!(durable(&store, &run_id).len(), 5);
        assert_eq!(rec.ledger_len(), 5);
    }

    #[tokio::test]
    async fn a_held_record_is_queued_after_max_held_without_another_call() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = fresh(&store);
        let run_id = rec.run_id().to_string();
        call(&mut rec, HostFn::local("log", "log"), 1).await;
        // The node now "computes" (no host call, no flush): the record still becomes durable.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.ledger_len(&run_id) == 0 {
            assert!(
                Instant::now() < deadline,
                "the held record was never queued"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            durable(&store, &run_id),
            vec![("n".into(), "log".into(), 1)]
        );
        rec.flush().expect("flush");
    }

    #[tokio::test]
    async fn nested_records_interleave_with_the_callers_in_seq_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = fresh(&store);
        let run_id = rec.run_id().to_string();
        call(&mut rec, HostFn::local("log", "log"), 1).await;
        // Named for the caller's next call, its second.
        let mut inner = rec.nested("tool:t");
        call(&mut inner, HostFn::local("log", "log"), 2).await;
        call(&mut inner, HostFn::remote("http", "fetch"), 3).await;
        call(&mut inner, HostFn::local("log", "log"), 4).await;
        inner.flush().expect("nested flush");
        call(&mut rec, HostFn::local("tools", "invoke"), 5).await;
        rec.flush().expect("flush");
        let nodes: Vec<(String, u64)> = durable(&store, &run_id)
            .into_iter()
            .map(|(node, _, n)| (node, n))
            .collect();
        assert_eq!(
            nodes,
            vec![
                ("n".to_string(), 1),
                ("n/tool:t#2".to_string(), 2),
                ("n/tool:t#2".to_string(), 3),
                ("n/tool:t#2".to_string(), 4),
                ("n".to_string(), 5),
            ]
        );
    }

    #[tokio::test]
    async fn a_flood_of_local_calls_is_queued_in_bounded_batches() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let mut rec = fresh(&store);
        rec.max_calls = 1000;
        let run_id = rec.run_id().to_string();
        for n in 1..=(MAX_BUFFERED as u64 + 1) {
            call(&mut rec, HostFn::local("log", "log"), n).await;
        }
        // At least one batch was queued on its own before the flush (a full one, or an old one on a slow machine).
        assert!(rec.tail.lock().buffered < MAX_BUFFERED);
        assert!(!rec.tail.lock().tickets.is_empty());
        rec.flush().expect("flush");
        assert_eq!(store.ledger_len(&run_id), MAX_BUFFERED as u64 + 1);
    }
}
