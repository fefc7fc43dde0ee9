//! The runner's in-memory view of every active run, with the indexes that replace the seed's polling:
//! a FIFO ready queue, a timer set, event waiters by wait key, and parents by child.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde_json::{Value, json};

use super::executor::CancelFlag;
use super::flows::Flows;
use crate::engine::{self, Host};
use crate::run::{CommandOutcome, CommandRecord, Obj, RunState, RunStatus, StepRecord, WaitReason};
use crate::store::Batch;
use crate::time;

/// Meta key of the commands deferred behind executing plugin nodes.
pub const DEFERRED_KEY: &str = "deferred_commands";

/// Why [`World::resume`] resumed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// No active run has this id.
    #[error("Run '{0}' is not active")]
    NotActive(String),
    /// The run's workflow is not loaded (any more).
    #[error("Workflow '{0}' is not loaded")]
    WorkflowNotLoaded(String),
    /// The engine refused (the run is not waiting).
    #[error(transparent)]
    Engine(#[from] engine::ResumeError),
}

/// All active runs and the work pending on them. Owned by the runner thread.
pub struct World {
    pub runs: HashMap<String, RunState>,
    ready: VecDeque<String>,
    queued: HashSet<String>,
    /// `(until, run_id)` of every run waiting with a deadline.
    timers: BTreeSet<(String, String)>,
    /// wait_key → runs waiting on it (events, user, subworkflow). Wait keys derive from names clients and flows
    /// choose (events, sessions), so this map keeps std's keyed SipHash; the others are keyed by the host's ids.
    waiters: std::collections::HashMap<String, BTreeSet<String>>,
    /// parent → children that are still active.
    children: HashMap<String, BTreeSet<String>>,
    /// Records and state changes not yet committed.
    pending: HashMap<String, Vec<StepRecord>>,
    dirty: HashSet<String>,
    pub flows: Arc<Flows>,
    /// Where generated flows (schedule wrappers) are updated, when running inside a gateway.
    pub shared: Option<Arc<super::flows::SharedFlows>>,
    /// Small durable writes (generated flows) to commit with the next batch.
    pub meta_writes: Vec<(String, Vec<u8>)>,
    pub max_steps: usize,
    /// Runs whose plugin node must be handed to the executor once this round is durable.
    dispatch: Vec<String>,
    /// Runs whose plugin node is executing now, with the flag that cancels it.
    pub executing: HashMap<String, Arc<CancelFlag>>,
    /// Commands that touch an executing run; applied, in order, once it returns.
    pub deferred: Vec<CommandRecord>,
    /// Outcomes of deferred commands, committed with the next batch.
    pub outcomes: Vec<CommandOutcome>,
    deferred_changed: bool,
    /// Evaluate pin expressions off the runner thread (the runner sets it; direct callers evaluate in place).
    pub defer_pin_exprs: bool,
    /// Runs waiting for a pin-expression batch, with the answers their current step already has.
    pin_memo: HashMap<String, engine::pinexpr::Memo>,
    evaluating: HashSet<String>,
    /// Batches to hand to an evaluation thread once this round is committed.
    pin_jobs: Vec<(String, engine::pinexpr::PinRequest)>,
    /// Meta key of this world's deferred commands (one per shard).
    pub deferred_key: String,
    /// Events this world's runs emitted that other shards must deliver too (cluster mode with several shards).
    pub outbox: Option<Outbox>,
    /// The runs the loop's recovery found. A run this process creates is checked against the store on adoption
    /// only when it is one of them (recovery may have stepped it already); any other is adopted as it is.
    pub recovered: HashSet<String>,
}

/// Events emitted by a shard's runs, on their way to the other shards: written with the round that emitted them
/// (a transactional outbox), then appended to the inbox as internal commands once that round is durable.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Meta key prefix of this shard's outbox entries.
    pub prefix: String,
    /// Emitted this round: `(id, {"run_id", "keys", "envelope"})`.
    pending: Vec<(String, Value)>,
    /// Written to the store with the last drained batch, to append once it is durable.
    pub written: Vec<(String, Value)>,
}

impl Outbox {
    pub fn new(prefix: String) -> Outbox {
        Outbox {
            prefix,
            ..Outbox::default()
        }
    }
}

impl World {
    /// An empty world over `flows`.
    pub fn new(flows: Arc<Flows>, max_steps: usize) -> Self {
        World {
            runs: HashMap::new(),
            ready: VecDeque::new(),
            queued: HashSet::new(),
            timers: BTreeSet::new(),
            waiters: std::collections::HashMap::new(),
            children: HashMap::new(),
            pending: HashMap::new(),
            dirty: HashSet::new(),
            flows,
            shared: None,
            meta_writes: Vec::new(),
            max_steps: max_steps.max(1),
            dispatch: Vec::new(),
            executing: HashMap::new(),
            deferred: Vec::new(),
            outcomes: Vec::new(),
            deferred_changed: false,
            defer_pin_exprs: false,
            pin_memo: HashMap::new(),
            evaluating: HashSet::new(),
            pin_jobs: Vec::new(),
            deferred_key: DEFERRED_KEY.to_string(),
            outbox: None,
            recovered: HashSet::new(),
        }
    }

    /// Adopts a run (new, or recovered at startup) and indexes it.
    pub fn adopt(&mut self, run: RunState) {
        let id = run.run_id.clone();
        if let Some(p) = &run.parent_run_id {
            self.children
                .entry(p.clone())
                .or_default()
                .insert(id.clone());
        }
        self.index(&run);
        let runnable = run.status == RunStatus::Running && !run.control.paused;
        self.runs.insert(id.clone(), run);
        if runnable {
            self.enqueue(&id);
        }
    }

    fn enqueue(&mut self, id: &str) {
        if self.evaluating.contains(id) {
            // Its step waits for a pin-expression batch; the answer enqueues it.
            return;
        }
        if self.runs.get(id).is_some_and(|r| r.inflight.is_some()) {
            // A run on a plugin node is driven by the executor, not by the step loop.
            if !self.dispatch.iter().any(|d| d == id) {
                self.dispatch.push(id.to_string());
            }
            return;
        }
        if self.queued.insert(id.to_string()) {
            self.ready.push_back(id.to_string());
        }
    }

    fn index(&mut self, run: &RunState) {
        if let Some(w) = &run.waiting {
            if let Some(u) = &w.until {
                self.timers.insert((u.clone(), run.run_id.clone()));
            }
            if let Some(k) = &w.wait_key {
                self.waiters
                    .entry(k.clone())
                    .or_default()
                    .insert(run.run_id.clone());
            }
        }
    }

    fn unindex(&mut self, run: &RunState) {
        if let Some(w) = &run.waiting {
            if let Some(u) = &w.until {
                self.timers.remove(&(u.clone(), run.run_id.clone()));
            }
            if let Some(k) = &w.wait_key
                && let Some(set) = self.waiters.get_mut(k)
            {
                set.remove(&run.run_id);
                if set.is_empty() {
                    self.waiters.remove(k);
                }
            }
        }
    }

    /// Queues records for `run_id` and marks it for the next commit.
    pub fn record(&mut self, run_id: &str, recs: Vec<StepRecord>) {
        self.dirty.insert(run_id.to_string());
        if !recs.is_empty() {
            self.pending
                .entry(run_id.to_string())
                .or_default()
                .extend(recs);
        }
    }

    /// Applies `f` to an active run with its indexes kept right; returns `None` for unknown runs, and when
    /// `f` panicked: the run then fails (unless it had already ended) and the others go on.
    pub fn with_run<T>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut RunState, &mut Vec<StepRecord>, &Flows) -> T,
    ) -> Option<T> {
        let mut run = self.runs.remove(id)?;
        self.unindex(&run);
        let mut recs = Vec::new();
        let flows = self.flows.clone();
        let before = run.status;
        let out = super::containment::contain(&mut run, &mut recs, before, |run, recs| {
            f(run, recs, &flows)
        });
        run.updated_at = time::now_iso();
        self.record(id, recs);
        self.settle(run, before);
        out
    }

    /// Resumes a waiting run with `payload` (engine semantics, indexes kept right).
    pub fn resume(&mut self, id: &str, payload: Value) -> Result<(), ResumeError> {
        self.with_run(id, |run, recs, flows| {
            let flow = flows
                .get(&run.workflow_id)
                .ok_or_else(|| ResumeError::WorkflowNotLoaded(run.workflow_id.clone()))?;
            Ok(engine::resume(run, &flow, payload, recs)?)
        })
        .unwrap_or_else(|| Err(ResumeError::NotActive(id.to_string())))
    }

    /// Re-indexes a run after a change; runs terminal transitions' consequences.
    fn settle(&mut self, run: RunState, before: RunStatus) {
        let id = run.run_id.clone();
        self.index(&run);
        let runnable = run.status == RunStatus::Running && !run.control.paused;
        let became_terminal = run.status.is_terminal() && !before.is_terminal();
        if became_terminal {
            crate::metrics::run_finished(&run);
        }
        self.runs.insert(id.clone(), run);
        if runnable {
            self.enqueue(&id);
        }
        if became_terminal {
            if let Some(flag) = self.executing.get(&id) {
                flag.cancel();
            }
            self.on_terminal(&id);
        }
    }

    /// A terminal child resumes its waiting parent; a terminal root cancels its event listeners.
    fn on_terminal(&mut self, id: &str) {
        // Only what is needed is read out: copying the whole run here was a tenth of a trivial run's stepping.
        let Some((parent, status)) = self
            .runs
            .get(id)
            .map(|r| (r.parent_run_id.clone(), r.status))
        else {
            return;
        };
        if let Some(parent) = &parent {
            if let Some(c) = self.children.get_mut(parent) {
                c.remove(id);
            }
            let key = format!("subworkflow:{id}");
            let waiting = self.runs.get(parent).is_some_and(|p| {
                p.status == RunStatus::Waiting
                    && p.waiting.as_ref().and_then(|w| w.wait_key.as_deref()) == Some(key.as_str())
            });
            if waiting && let Some(payload) = self.runs.get(id).map(child_payload) {
                let _ = self.resume(parent, payload);
            }
        }
        // Listener children of a finished root would otherwise wait forever (seed bug §7.13).
        let listeners: Vec<String> = self
            .children
            .get(id)
            .map(|c| {
                c.iter()
                    .filter(|cid| {
                        self.runs
                            .get(*cid)
                            .is_some_and(|r| r.workflow_id.starts_with("visual_event_listener_"))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for l in listeners {
            let reason = format!("Root run {id} ended ({})", status.as_str());
            self.with_run(&l, |r, recs, _| cancel(r, recs, &reason, "system"));
        }
    }

    /// How many runs wait to be stepped.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The next run to step, FIFO.
    pub fn pop_ready(&mut self) -> Option<String> {
        while let Some(id) = self.ready.pop_front() {
            self.queued.remove(&id);
            if self
                .runs
                .get(&id)
                .is_some_and(|r| r.status == RunStatus::Running && !r.control.paused)
                && !self.executing.contains_key(&id)
                && !self.evaluating.contains(&id)
            {
                return Some(id);
            }
        }
        None
    }

    /// True when some run is ready to step.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Steps one run up to `max_steps`.
    pub fn step_run(&mut self, id: &str) {
        let Some(mut run) = self.runs.remove(id) else {
            return;
        };
        self.unindex(&run);
        let before = run.status;
        let mut recs = Vec::new();
        match self.flows.get(&run.workflow_id) {
            Some(flow) => {
                let max = self.max_steps;
                let memo = self.pin_memo.remove(id).unwrap_or_default();
                let defer = self.defer_pin_exprs;
                let mut host = WorldHost {
                    world: self,
                    new_runs: Vec::new(),
                };
                let mut step = |run: &mut RunState, recs: &mut Vec<StepRecord>| {
                    // `advance` contains each step; this also covers what happens around them.
                    super::containment::contain(run, recs, before, |run, recs| {
                        engine::advance(run, &flow, &mut host, max, recs);
                    });
                };
                let waiting = if defer {
                    let ((), memo, wanted) =
                        engine::pinexpr::deferring(memo, || step(&mut run, &mut recs));
                    wanted.map(|req| (memo, req))
                } else {
                    step(&mut run, &mut recs);
                    None
                };
                let new_runs = std::mem::take(&mut host.new_runs);
                for child in new_runs {
                    crate::metrics::run_started(&child);
                    self.record(&child.run_id.clone(), vec![]);
                    self.adopt(child);
                }
                if let Some((memo, req)) = waiting.filter(|_| !run.status.is_terminal()) {
                    self.pin_memo.insert(id.to_string(), memo);
                    self.evaluating.insert(id.to_string());
                    self.pin_jobs.push((id.to_string(), req));
                }
            }
            None => {
                let node = run.current_node.clone().unwrap_or_default();
                let msg = format!(
                    "Workflow '{}' is not loaded on this gateway",
                    run.workflow_id
                );
                engine::fail(&mut run, &mut recs, &node, msg);
            }
        }
        run.updated_at = time::now_iso();
        self.record(id, recs);
        self.settle(run, before);
    }

    /// Pin-expression batches to evaluate off the runner thread.
    pub fn take_pin_jobs(&mut self) -> Vec<(String, engine::pinexpr::PinRequest)> {
        std::mem::take(&mut self.pin_jobs)
    }

    /// The answer to run `id`'s batch: its step runs again (unless the run ended or left meanwhile).
    pub fn finish_pin(&mut self, id: &str, sites: Vec<String>, result: engine::pinexpr::PinResult) {
        if !self.evaluating.remove(id) {
            return;
        }
        let Some(run) = self.runs.get(id) else {
            self.pin_memo.remove(id);
            return;
        };
        if run.status.is_terminal() {
            self.pin_memo.remove(id);
            return;
        }
        self.pin_memo
            .entry(id.to_string())
            .or_default()
            .answer(sites, result);
        if run.status == RunStatus::Running && !run.control.paused {
            self.enqueue(id);
        }
    }

    /// Runs whose plugin node should start executing now (their state is durable).
    pub fn take_dispatch(&mut self) -> Vec<String> {
        let mut ids = std::mem::take(&mut self.dispatch);
        ids.retain(|id| {
            !self.executing.contains_key(id)
                && self.runs.get(id).is_some_and(|r| {
                    r.status == RunStatus::Running && !r.control.paused && r.inflight.is_some()
                })
        });
        ids
    }

    /// Applies what a plugin node produced; `ledger_len` counts the host calls it recorded.
    pub fn finish_plugin(&mut self, id: &str, outcome: engine::PluginOutcome, ledger_len: u64) {
        self.executing.remove(id);
        self.with_run(id, |run, recs, flows| {
            run.ledger_len = run.ledger_len.max(ledger_len);
            if run.status.is_terminal() {
                run.inflight = None;
                return;
            }
            match flows.get(&run.workflow_id) {
                Some(flow) => engine::plugin_node::finish(run, &flow, outcome, recs),
                None => {
                    run.inflight = None;
                    let node = run.current_node.clone().unwrap_or_default();
                    let msg = format!(
                        "Workflow '{}' is not loaded on this gateway",
                        run.workflow_id
                    );
                    engine::fail(run, recs, &node, msg);
                }
            }
        });
    }

    /// Forgets the in-flight plugin node of run `id` without applying an outcome (a cancel that stopped it
    /// decides how the run ends); `ledger_len` counts the host calls it recorded.
    pub fn drop_plugin(&mut self, id: &str, ledger_len: u64) {
        self.executing.remove(id);
        self.with_run(id, |run, _, _| {
            run.ledger_len = run.ledger_len.max(ledger_len);
            run.inflight = None;
        });
    }

    /// Holds a command until the executing runs it touches return.
    pub fn defer(&mut self, cmd: CommandRecord) {
        self.deferred.push(cmd);
        self.deferred_changed = true;
    }

    /// Takes the deferred commands to try again.
    pub fn take_deferred(&mut self) -> Vec<CommandRecord> {
        if !self.deferred.is_empty() {
            self.deferred_changed = true;
        }
        std::mem::take(&mut self.deferred)
    }

    /// Fires every timer due by now; returns the next deadline, if any.
    pub fn fire_timers(&mut self) -> Option<String> {
        let now = time::now_iso();
        loop {
            let (until, id) = self.timers.iter().next().cloned()?;
            if until > now {
                return Some(until);
            }
            self.timers.remove(&(until.clone(), id.clone()));
            let paused = self.runs.get(&id).is_none_or(|r| r.control.paused);
            if paused {
                // Fired again when the run is resumed.
                continue;
            }
            self.with_run(&id, fire_timer);
        }
    }

    /// Runs waiting on `wait_key`.
    pub fn waiters_of(&self, wait_key: &str) -> Vec<String> {
        self.waiters
            .get(wait_key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The run and all its active descendants, breadth first.
    pub fn tree(&self, root: &str) -> Vec<String> {
        let mut out = vec![root.to_string()];
        let mut i = 0;
        while i < out.len() {
            if let Some(c) = self.children.get(&out[i]) {
                out.extend(c.iter().cloned());
            }
            i += 1;
        }
        out
    }

    /// Moves every pending change into `batch`, assigning ledger seqs; returns runs to evict after commit.
    pub fn drain_into(&mut self, batch: &mut Batch) -> Vec<String> {
        let mut evict = Vec::new();
        for (k, v) in self.meta_writes.drain(..) {
            batch.put_meta(&k, &v);
        }
        for o in self.outcomes.drain(..) {
            batch.put_outcome(&o);
        }
        if std::mem::take(&mut self.deferred_changed) {
            batch.put_meta(
                &self.deferred_key,
                &serde_json::to_vec(&self.deferred).unwrap_or_default(),
            );
        }
        if let Some(outbox) = self.outbox.as_mut() {
            for (id, entry) in outbox.pending.drain(..) {
                batch.put_meta(
                    &format!("{}{id}", outbox.prefix),
                    &serde_json::to_vec(&entry).unwrap_or_default(),
                );
                outbox.written.push((id, entry));
            }
        }
        let dirty: Vec<String> = self.dirty.drain().collect();
        for id in dirty {
            let Some(run) = self.runs.get_mut(&id) else {
                continue;
            };
            if self.executing.contains_key(&id) {
                // Its executing plugin node owns the ledger tail; these records follow its host calls.
                batch.put_run(run);
                continue;
            }
            let mut last_at = None;
            for rec in self.pending.remove(&id).unwrap_or_default() {
                run.ledger_len += 1;
                batch.append_ledger(&id, run.ledger_len, &rec);
                last_at = Some(rec.started_at);
            }
            if let Some(f) = run.inflight.as_mut()
                && f.started_seq == 0
            {
                // The step loop stops at a plugin node, so its `started` record is the run's last one.
                f.started_seq = run.ledger_len;
                f.started_ms = last_at.as_deref().and_then(time::iso_ms);
            }
            batch.put_run(run);
            if run.status.is_terminal() && self.children.get(&id).is_none_or(BTreeSet::is_empty) {
                evict.push(id);
            }
        }
        evict
    }

    /// Forgets terminal runs once their final state is durable.
    pub fn evict(&mut self, ids: &[String]) {
        for id in ids {
            if self.runs.get(id).is_some_and(|r| r.status.is_terminal()) && !self.dirty.contains(id)
            {
                if let Some(r) = self.runs.remove(id) {
                    self.unindex(&r);
                }
                self.pin_memo.remove(id);
                self.evaluating.remove(id);
                self.children.remove(id);
            }
        }
    }

    /// True when nothing waits to be committed.
    pub fn is_clean(&self) -> bool {
        self.dirty.is_empty()
            && self.meta_writes.is_empty()
            && self.outcomes.is_empty()
            && !self.deferred_changed
            && self.outbox.as_ref().is_none_or(|o| o.pending.is_empty())
    }
}

/// The payload a terminal child resumes its parent with (gateway runner semantics).
pub fn child_payload(child: &RunState) -> Value {
    let output = match &child.output {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(other) => json!({"result": other}),
        None => json!({}),
    };
    let mut out = output.as_object().cloned().unwrap_or_default();
    if child.status != RunStatus::Completed {
        out.insert("success".into(), Value::Bool(false));
        out.insert(
            "error".into(),
            child
                .error
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        if child.status == RunStatus::Cancelled {
            out.insert("cancelled".into(), Value::Bool(true));
        }
    }
    json!({"sub_run_id": child.run_id, "output": out})
}

/// A due deadline: `until` waits continue; event waits with a deadline resume with `timed_out`.
fn fire_timer(run: &mut RunState, recs: &mut Vec<StepRecord>, flows: &Flows) {
    let Some(flow) = flows.get(&run.workflow_id) else {
        return;
    };
    let Some(wait) = run.waiting.clone() else {
        return;
    };
    if wait.reason == WaitReason::Until {
        engine::resume_due(run, &flow, recs);
    } else {
        let _ = engine::resume(
            run,
            &flow,
            json!({"timed_out": true, "until": wait.until}),
            recs,
        );
    }
}

/// Cancels a non-terminal run (no-op on terminal ones).
pub fn cancel(run: &mut RunState, recs: &mut Vec<StepRecord>, reason: &str, by: &str) -> bool {
    if run.status.is_terminal() {
        return false;
    }
    run.status = RunStatus::Cancelled;
    run.error = Some(reason.to_string());
    run.waiting = None;
    run.inflight = None;
    run.control.cancelled_by = Some(by.to_string());
    let node = run.current_node.clone().unwrap_or_default();
    engine::exec::terminal_status(run, recs, &node);
    true
}

/// The engine's view of the world while one run steps.
struct WorldHost<'a> {
    world: &'a mut World,
    new_runs: Vec<RunState>,
}

impl Host for WorldHost<'_> {
    fn start_child(
        &mut self,
        parent: &RunState,
        workflow_id: &str,
        vars: Obj,
        session: Option<String>,
    ) -> Result<String, engine::ChildStartError> {
        if engine::pinexpr::is_waiting() {
            // The step waits for a pin-expression batch and will be discarded: start nothing.
            return Err(engine::ChildStartError::PinWait);
        }
        crate::engine::budget::check_vars(&vars)?;
        let flows = self.world.flows.clone();
        let Some(entry) = flows.entry(workflow_id) else {
            return Err(engine::ChildStartError::NotFound(workflow_id.to_string()));
        };
        let child = crate::run::new_run_state(
            workflow_id,
            &entry,
            vars,
            session.or(parent.session_id.clone()),
            Some(parent.run_id.clone()),
            parent.bundle_sha256.clone(),
        );
        let id = child.run_id.clone();
        self.new_runs.push(child);
        Ok(id)
    }

    fn emit_event(
        &mut self,
        emitter: &RunState,
        wait_keys: &[String],
        envelope: &Value,
    ) -> Vec<String> {
        if let Some(outbox) = self.world.outbox.as_mut() {
            // The waiters of the other shards get it once this round is durable.
            outbox.pending.push((
                format!("evt-{}", uuid::Uuid::new_v4().simple()),
                json!({"run_id": emitter.run_id, "keys": wait_keys, "envelope": envelope}),
            ));
        }
        // The runs it resumes are not the one stepping: their work never joins its deferral.
        engine::pinexpr::suspended(|| deliver(self.world, wait_keys, envelope))
    }
}

/// Resumes every (un-paused) run waiting on one of `wait_keys`; paused waiters keep the event
/// until they are resumed, so no event is lost and no waiter blocks the others.
pub fn deliver(world: &mut World, wait_keys: &[String], envelope: &Value) -> Vec<String> {
    let mut resumed = Vec::new();
    for key in wait_keys {
        for id in world.waiters_of(key) {
            let paused = world.runs.get(&id).is_some_and(|r| r.control.paused);
            if paused {
                world.with_run(&id, |r, _, _| {
                    r.control.pending_events.push(envelope.clone())
                });
                resumed.push(id);
                continue;
            }
            if world.resume(&id, envelope.clone()).is_ok() {
                resumed.push(id);
            }
        }
    }
    resumed
}
