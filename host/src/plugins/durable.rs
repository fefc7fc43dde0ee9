//! The one record/replay wrapper every host function goes through (Golem's durability pattern): a call is
//! answered from the ledger while a replay lasts, and otherwise executed live and appended to the ledger.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasmtime::{bail, format_err as anyhow};

use super::bindings::types::Error as WitError;
use crate::run::{HostCall, RunState, host_call_record};
use crate::runner::executor::CancelFlag;
use crate::store::{Batch, CommitTicket, Store};

/// Names one host function and how its record must be persisted.
#[derive(Debug, Clone, Copy)]
pub struct HostFn {
    pub interface: &'static str,
    pub function: &'static str,
    /// A side effect outside this process: its record is fsynced before the component sees the answer, so it
    /// is never repeated. Local calls ride the next group commit (a lost one is simply re-executed).
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
    calls: u64,
    max_calls: u64,
    tickets: Vec<CommitTicket>,
    cancel: Arc<CancelFlag>,
    /// Wall time spent inside live host calls (excluded from the node's CPU budget).
    pub host_time: Duration,
}

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
            calls: 0,
            max_calls,
            tickets: Vec::new(),
            cancel,
            host_time: Duration::ZERO,
        }
    }

    /// A recorder for the host calls of a tool plugin run by this node's next call (`tools.invoke`): it appends
    /// to the same ledger cursor, under node id `<node>/<label>#<call>` so the caller's own replay skips its
    /// records, and its idempotency keys extend the caller's key of that call.
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
            calls: 0,
            max_calls: self.max_calls,
            tickets: Vec::new(),
            cancel: self.cancel.clone(),
            host_time: Duration::ZERO,
        }
    }

    /// Sets what to replay (records of an earlier, interrupted try) and the call budget of a nested recorder.
    pub fn with_replay(mut self, replay: Vec<HostCall>, max_calls: u64) -> Recorder {
        self.replay = replay.into();
        self.max_calls = max_calls;
        self
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
        format!("{}:{}", self.key_base, self.calls + 1)
    }

    /// The store of the run's ledger.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The run id this node belongs to.
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// Records or replays one call. `live` runs only when no recorded answer is left; the outer error traps
    /// the component (divergence, cancellation, a ledger that cannot be written).
    pub async fn call<R, F>(
        &mut self,
        f: HostFn,
        request: Value,
        live: F,
    ) -> wasmtime::Result<Result<R, WitError>>
    where
        R: Serialize + DeserializeOwned,
        F: Future<Output = Result<R, WitError>>,
    {
        self.calls += 1;
        if self.calls > self.max_calls {
            bail!(
                "PluginError: more than {} host calls in one node execution",
                self.max_calls
            );
        }
        if let Some(rec) = self.replay.pop_front() {
            if rec.interface != f.interface || rec.function != f.function || rec.request != request
            {
                bail!(
                    "ReplayDivergence: host call #{} was recorded as {}.{}({}) but the component now calls {}.{}({})",
                    self.calls,
                    rec.interface,
                    rec.function,
                    clip(&rec.request),
                    f.interface,
                    f.function,
                    clip(&request)
                );
            }
            return match rec.answer {
                Ok(v) => Ok(Ok(serde_json::from_value(v).map_err(|e| {
                    anyhow!(
                        "ReplayDivergence: recorded answer of {}.{} cannot be read back: {e}",
                        f.interface,
                        f.function
                    )
                })?)),
                Err(e) => Ok(Err(super::caps::error_from_json(&e).ok_or_else(|| {
                    anyhow!(
                        "ReplayDivergence: recorded error of {}.{} cannot be read back: {e}",
                        f.interface,
                        f.function
                    )
                })?)),
            };
        }
        if self.cancel.is_cancelled() {
            bail!("cancelled");
        }
        let Some(store) = self.store.clone() else {
            bail!("PluginError: host calls are not allowed in describe()");
        };
        let t0 = Instant::now();
        let cancel = self.cancel.clone();
        let answer = tokio::select! {
            a = live => a,
            _ = cancel.cancelled() => bail!("cancelled during {}.{}", f.interface, f.function),
        };
        let took = t0.elapsed();
        self.host_time += took;
        let recorded = match &answer {
            Ok(v) => Ok(serde_json::to_value(v)?),
            Err(e) => Err(super::caps::error_json(e)),
        };
        let mut rec = host_call_record(
            &self.run,
            &self.node_id,
            (f.interface, f.function),
            request,
            recorded,
            took.as_secs_f64() * 1000.0,
        );
        rec.idempotency_key = Some(format!("{}:{}", self.key_base, self.calls));
        let seq = self.cursor.fetch_add(1, Ordering::SeqCst) + 1;
        let mut batch = Batch::new();
        batch.append_ledger(&self.run.run_id, seq, &rec);
        if f.remote {
            store
                .commit_async(batch)
                .await
                .map_err(|e| anyhow!("ledger write failed: {e}"))?;
        } else {
            self.tickets.push(store.submit(batch));
        }
        Ok(answer)
    }

    /// Waits until every buffered record is durable (before the node's outcome is reported).
    pub fn flush(&mut self) -> Result<(), String> {
        for t in self.tickets.drain(..) {
            t.wait().map_err(|e| format!("ledger write failed: {e}"))?;
        }
        Ok(())
    }
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
    use super::*;
    use serde_json::json;

    fn recorder(store: &Store, replay: Vec<HostCall>) -> Recorder {
        let run = crate::runner::new_run_state("wf", "n", Default::default(), None, None, None);
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
            .call::<String, _>(
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
            .call::<String, _>(HostFn::local("log", "log"), json!({"url": "a"}), async {
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
            .call::<(), _>(HostFn::local("log", "log"), json!({}), async { Ok(()) })
            .await
            .expect_err("over budget");
        assert!(format!("{err}").contains("more than 2 host calls"));
    }
}
