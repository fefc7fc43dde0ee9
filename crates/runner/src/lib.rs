//! The runner: owns every active run in memory, steps them fairly, applies commands and commits
//! each round's changes to the store in one group commit. Nothing polls: new runs, commands and
//! timers wake it directly.
//!
//! One runner loop per shard this process steps (`shard.rs`): one on a single machine; in cluster mode one per
//! shard lease the process holds, each with its own world, command cursor and outbox.

use abstractgateway_bundle as bundle;
use abstractgateway_engine::{engine, flow};
use abstractgateway_model::{run, time};
use abstractgateway_store as store;

pub mod catalog;
mod cluster;
pub mod commands;
pub mod containment;
pub mod executor;
pub mod flows;
mod inline;
pub mod metrics;
mod observer;
pub mod schedule;
pub mod shard;
pub mod workspace;
pub mod world;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use executor::{CancelFlag, NodeDone, NodeExecutor, NodeJob};
pub use flows::Flows;
use world::World;

use crate::engine::budget::BudgetError;
use crate::engine::pinexpr::PinFailure;
use crate::flow::CompileError;
use crate::run::{DELIVER_EVENT_COMMAND, Obj, RunState, new_run_state};
use crate::store::{Appended, Batch, NewCommand, Store, StoreError};
use schedule::ScheduleError;
use workspace::WorkspaceError;

/// Runs stepped between two commits; bounds both latency and batch size.
const ROUND_RUNS: usize = 256;
/// Commands applied per commit.
const COMMAND_BATCH: usize = 200;
/// How long a shard being handed back waits for its executing plugin nodes before it stops them.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// How a gateway process is set up.
#[derive(Clone)]
pub struct GatewayOptions {
    pub data_dir: PathBuf,
    /// Start the runner thread (off for an API-only process).
    pub runner: bool,
    /// Steps per run before it yields to the others (`ABSTRACTGATEWAY_TICK_MAX_STEPS`).
    pub max_steps: usize,
    /// Executes plugin nodes; without one they fail with a clear error.
    pub executor: Option<Arc<dyn NodeExecutor>>,
}

impl std::fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayOptions")
            .field("data_dir", &self.data_dir)
            .field("runner", &self.runner)
            .field("max_steps", &self.max_steps)
            .field("executor", &self.executor.is_some())
            .finish()
    }
}

/// Why a run could not be started (or scheduled). A client asked for something that is not loaded
/// (`*NotFound`), asked for something refused (`Budget`, `Workspace`, `Schedule`, `Flow`), or the store
/// failed (`Store`); the HTTP layer picks its status from the variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    /// No loaded workflow has this id.
    #[error("Workflow '{0}' not found")]
    WorkflowNotFound(String),
    /// A schedule's target workflow is not loaded.
    #[error("Target workflow '{0}' not found")]
    TargetNotFound(String),
    /// The input is over a budget of a run's state.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The client's `workspace_root` is refused.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The schedule breaks one of its rules.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The schedule's generated wrapper flow does not compile.
    #[error(transparent)]
    Flow(#[from] CompileError),
    /// The store could not record the run.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`Gateway::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The operator's workspace settings are refused.
    #[error("workspace configuration: {0}")]
    Workspace(#[from] WorkspaceError),
    /// The store could not be opened or read (another process holds the data dir: `StoreError::Locked`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runner thread could not be spawned.
    #[error("starting the runner thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What a caller asks to start.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub workflow_id: String,
    pub input: Obj,
    pub session_id: Option<String>,
    pub bundle_sha256: Option<String>,
    /// Store meta key recorded with the run in the same commit (value = run_id), for idempotent starts.
    pub idempotency_key: Option<String>,
}

/// The result of a task the caller waited on: a panic goes on unwinding in the caller; a task the runtime
/// dropped (it is shutting down) is a closed store.
fn joined<T, E: From<StoreError>>(r: Result<Result<T, E>, tokio::task::JoinError>) -> Result<T, E> {
    match r {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Closed.into()),
    }
}

/// A start whose batch is built but not yet committed.
struct PreparedStart {
    /// The listener runs, then the root run.
    runs: Vec<RunState>,
    root_id: String,
    idempotency_key: Option<String>,
}

enum Msg {
    Adopt(Vec<RunState>),
    /// Runs another node created (cluster mode): adopted unless already known or finished.
    AdoptNew(Vec<RunState>),
    Commands,
    Reload,
    NodeDone(Box<NodeDone>),
    /// The answer to a run's pin-expression batch, evaluated off the runner thread.
    PinDone {
        run_id: String,
        sites: Vec<String>,
        result: crate::engine::pinexpr::PinResult,
    },
    Shutdown,
    /// Hand the shard back (rebalancing): finish what is executing, commit, stop.
    Release,
}

/// A running loop: its inbox and its thread.
struct LoopHandle {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// A running gateway: store, flows and (optionally) the runner loops.
pub struct Gateway {
    store: Store,
    flows: Arc<flows::SharedFlows>,
    /// How many shards runs are spread over: 1 on one machine, the cluster's count in cluster mode.
    shards: AtomicU32,
    /// The runner loop of each shard this process steps. Nothing is queued for a shard without one (an API node
    /// never runs one; a loop started later finds everything in the store).
    loops: Mutex<HashMap<u32, LoopHandle>>,
    max_steps: usize,
    executor: Option<Arc<dyn NodeExecutor>>,
    /// Where runs' file tools work (the host decides).
    workspaces: Arc<workspace::Workspaces>,
}

impl Gateway {
    /// Opens the store and, if asked, starts the runner (which first recovers every active run).
    pub fn open(opts: GatewayOptions, flows: Flows) -> Result<Arc<Gateway>, OpenError> {
        let store = Store::open(&opts.data_dir)?;
        Gateway::open_on(opts, flows, store)
    }

    /// [`Gateway::open`] on a store the caller opened (a cluster replica, see `Store::open_replica`). With a
    /// replica, runs and commands that other nodes write reach this gateway's runner through the store.
    pub fn open_on(
        opts: GatewayOptions,
        flows: Flows,
        store: Store,
    ) -> Result<Arc<Gateway>, OpenError> {
        let workspaces = Arc::new(workspace::Workspaces::from_env(&opts.data_dir)?);
        let flows = Arc::new(flows::SharedFlows::new(flows));
        load_dynamic_flows(&store, &flows)?;
        let gw = Arc::new(Gateway {
            store,
            flows,
            shards: AtomicU32::new(1),
            loops: Mutex::new(HashMap::new()),
            max_steps: opts.max_steps,
            executor: opts.executor.clone(),
            workspaces,
        });
        if gw.store.is_replica() {
            gw.store
                .set_intake_listener(cluster::listener(Arc::downgrade(&gw)));
        }
        if opts.runner {
            gw.start_runner()?;
        }
        Ok(gw)
    }

    /// Cluster mode: how many shards the cluster spreads runs over. Set it before any runner loop starts.
    pub fn set_shards(&self, shards: u32) {
        self.shards.store(shards.max(1), Ordering::SeqCst);
    }

    /// How many shards runs are spread over.
    pub fn shards(&self) -> u32 {
        self.shards.load(Ordering::SeqCst)
    }

    /// The shard a run created outside a runner (a start, a schedule, a listener) belongs to.
    pub fn shard_of_new(&self, run: &RunState) -> u32 {
        shard::of_root(shard::root_of_new(run), self.shards())
    }

    /// Starts the runner loop of every shard (one machine: the one shard); each first recovers its active runs.
    pub fn start_runner(&self) -> Result<(), OpenError> {
        for s in 0..self.shards() {
            self.start_shard(s)?;
        }
        Ok(())
    }

    /// Starts the runner loop of `shard` (it first recovers the shard's active runs); does nothing if it runs
    /// already. A cluster node calls it once it holds the shard's lease and its replica has caught up.
    pub fn start_shard(&self, shard: u32) -> Result<(), OpenError> {
        let mut loops = self.loops.lock();
        if loops.contains_key(&shard) {
            return Ok(());
        }
        let (tx, rx) = channel();
        let ctx = LoopCtx {
            workspaces: self.workspaces.clone(),
            store: self.store.clone(),
            flows: self.flows.clone(),
            max_steps: self.max_steps,
            executor: self.executor.clone(),
            tx: tx.clone(),
            shard,
            shards: self.shards(),
        };
        // Registered before the loop reads the store: whatever is applied after that read reaches its inbox.
        let handle = std::thread::Builder::new()
            .name(if shard == 0 {
                "runner".into()
            } else {
                format!("runner-{shard}")
            })
            .spawn(move || run_loop(ctx, rx))
            .map_err(OpenError::Thread)?;
        loops.insert(
            shard,
            LoopHandle {
                tx,
                thread: Some(handle),
            },
        );
        Ok(())
    }

    /// Hands `shard` back (rebalancing): its loop finishes the plugin nodes executing (stopping them after a
    /// while), commits, and stops. Returns once it stopped; then nothing of this process writes the shard's runs
    /// but host calls of nodes it stopped, which the shard's fence refuses once its lease is handed back.
    pub fn stop_shard(&self, shard: u32) {
        let Some(mut handle) = self.loops.lock().remove(&shard) else {
            return;
        };
        let _ = handle.tx.send(Msg::Release);
        if let Some(t) = handle.thread.take() {
            let _ = t.join();
        }
    }

    /// The shards whose loop runs here.
    pub fn running_shards(&self) -> Vec<u32> {
        let mut shards: Vec<u32> = self.loops.lock().keys().copied().collect();
        shards.sort_unstable();
        shards
    }

    /// The durable store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The flows currently loaded.
    pub fn flows(&self) -> Arc<Flows> {
        self.flows.get()
    }

    /// Replaces the loaded flows (bundle upload, delete, reload); the runner sees them at once.
    pub fn reload(&self, flows: Flows) {
        self.flows.set_bundles(flows);
        self.broadcast(|| Msg::Reload);
    }

    /// Creates a scheduled run: its wrapper flow and parent run, durably, then hands it to the runner.
    pub fn schedule_run(&self, spec: schedule::ScheduleSpec) -> Result<RunState, StartError> {
        if self.flows().get(&spec.target_workflow_id).is_none() {
            return Err(StartError::TargetNotFound(spec.target_workflow_id));
        }
        let id = format!("scheduled:{}", uuid::Uuid::new_v4());
        let plan = schedule::plan(&id, &spec)?;
        self.flows.put_dynamic(&id, plan.flow.clone())?;
        let entry = self.flows().entry(&id).unwrap_or_else(|| "start".into());
        let run = new_run_state(&id, &entry, plan.vars, spec.session_id.clone(), None, None);
        let mut batch = Batch::default();
        batch.put_run(&run);
        write_dynamic_flow(&mut batch, &id, &plan.flow);
        batch.set_intake();
        self.store.commit(batch)?;
        metrics::run_started(&run);
        if !self.store.is_replica() {
            self.broadcast(|| Msg::Reload);
            self.route_new(vec![run.clone()]);
        }
        Ok(run)
    }

    /// The host's workspace rules.
    pub fn workspaces(&self) -> &workspace::Workspaces {
        &self.workspaces
    }

    /// The JSON of a generated (schedule wrapper) flow.
    pub fn dynamic_flow(&self, workflow_id: &str) -> Option<Value> {
        self.flows.dynamic(workflow_id)
    }

    /// Creates a run (and the listener runs of its `on_event` nodes), durably, then hands it to the runner.
    pub fn start_run(&self, req: StartRequest) -> Result<RunState, StartError> {
        let (start, batch) = self.prepare_start(req)?;
        self.store.commit(batch)?;
        if let Some(winner) = self.idempotency_winner(&start)? {
            return Ok(winner);
        }
        let root = start.runs.last().cloned();
        self.hand_over(start.runs);
        root.ok_or_else(|| StoreError::Corrupt("a start created no run".into()).into())
    }

    /// [`Gateway::start_run`] for async callers; answers the new run's id (the state is the runner's from here
    /// on, so it is not copied for the caller).
    ///
    /// A plain start builds its batch on the caller's thread (CPU work only) and waits for its commit without
    /// holding a thread: under load a start is then two thread hand-offs (to the committer and back) instead
    /// of four. A start that must touch the file system (a client-chosen workspace is resolved) or read the
    /// store after its commit (an idempotency key) runs on a blocking thread, as `start_run`. Either way the
    /// commit and the hand-over to the runner finish even when the caller stops waiting (a client that hangs
    /// up): a run made durable is always stepped.
    pub async fn start_run_async(self: Arc<Self>, req: StartRequest) -> Result<String, StartError> {
        if req.idempotency_key.is_some() || req.input.contains_key("workspace_root") {
            return joined(tokio::task::spawn_blocking(move || self.start_run(req)).await)
                .map(|run| run.run_id);
        }
        let (start, batch) = self.prepare_start(req)?;
        let durable = self.store.submit_async(batch);
        joined(
            tokio::spawn(async move {
                durable.await?;
                self.hand_over(start.runs);
                Ok(start.root_id)
            })
            .await,
        )
    }

    /// [`Gateway::submit_command`] for async callers: appends without holding a thread, and wakes the runner
    /// even when the caller stops waiting once the append is queued (a command made durable is always applied).
    pub async fn submit_command_async(
        self: Arc<Self>,
        cmd: NewCommand,
    ) -> Result<Appended, StoreError> {
        joined(
            tokio::spawn(async move {
                let appended = self.store.append_command_async(cmd).await?;
                self.wake_for(&appended);
                Ok(appended)
            })
            .await,
        )
    }

    /// The runs a start creates and the batch that records them; nothing is written yet.
    fn prepare_start(&self, req: StartRequest) -> Result<(PreparedStart, Batch), StartError> {
        let flows = self.flows();
        let flow = flows
            .get(&req.workflow_id)
            .ok_or_else(|| StartError::WorkflowNotFound(req.workflow_id.clone()))?;
        let mut input = req.input;
        crate::engine::budget::check_vars(&input)?;
        let asked = input
            .get("workspace_root")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut root = new_run_state(
            &req.workflow_id,
            &flow.entry,
            Obj::new(),
            req.session_id,
            None,
            req.bundle_sha256.clone(),
        );
        // The host chooses the directory (the client only with the operator's consent, inside the
        // operator's roots); the var shows the choice. It is reserved, not created: runs that never touch
        // files leave no directory behind.
        let owner = root
            .session_id
            .clone()
            .unwrap_or_else(|| root.run_id.clone());
        let dir = self.workspaces.choose(asked.as_deref(), &owner)?;
        let dir = dir.to_string_lossy().into_owned();
        input.insert("workspace_root".into(), Value::String(dir.clone()));
        let limits = root.vars.remove("_limits");
        root.vars = input.clone();
        if let Some(l) = limits {
            root.vars.entry("_limits").or_insert(l);
        }
        root.workspace = Some(dir);
        // Listeners go first so they are parked on their event before the root can emit one.
        let mut runs = Vec::new();
        for node in &flow.listeners {
            let lid = crate::bundle::event_listener_workflow_id(&req.workflow_id, node);
            let mut vars = input.clone();
            vars.retain(|k, _| !k.starts_with('_'));
            runs.push(new_run_state(
                &lid,
                node,
                vars,
                root.session_id.clone(),
                Some(root.run_id.clone()),
                req.bundle_sha256.clone(),
            ));
        }
        let root_id = root.run_id.clone();
        let mut batch = Batch::default();
        // A run that touches nothing outside itself takes its first round now and commits once with it.
        for rec in inline::first_round(&mut root, &flow, self.max_steps) {
            root.ledger_len += 1;
            batch.append_ledger(&root_id, root.ledger_len, &rec);
        }
        runs.push(root);
        for r in &runs {
            batch.put_run(r);
        }
        batch.set_intake();
        if let Some(key) = &req.idempotency_key {
            batch.put_meta(key, root_id.as_bytes());
            // Two nodes of a cluster may start with one key at once: the first start in the log wins whole.
            batch.only_if_absent(key);
        }
        Ok((
            PreparedStart {
                runs,
                root_id,
                idempotency_key: req.idempotency_key,
            },
            batch,
        ))
    }

    /// After a start's commit: the run another start created with the same idempotency key, if that start
    /// won the key (then this start wrote nothing).
    fn idempotency_winner(&self, start: &PreparedStart) -> Result<Option<RunState>, StartError> {
        let Some(key) = &start.idempotency_key else {
            return Ok(None);
        };
        let Some(winner) = self.store.get_meta(key)? else {
            return Ok(None);
        };
        if winner == start.root_id.as_bytes() {
            return Ok(None);
        }
        let winner = String::from_utf8_lossy(&winner).into_owned();
        match self.store.get_run(&winner)? {
            Some(run) => Ok(Some(run)),
            None => Err(StoreError::Corrupt(format!(
                "idempotency key {key} names run {winner}, which is not stored"
            ))
            .into()),
        }
    }

    /// After a start's commit: the new runs go to the runner, except one that ended in its first round.
    fn hand_over(&self, mut runs: Vec<RunState>) {
        runs.iter().for_each(metrics::run_started);
        runs.retain(|r| {
            let ended = r.status.is_terminal();
            if ended {
                metrics::run_finished(r);
            }
            !ended
        });
        if !self.store.is_replica() && !runs.is_empty() {
            self.route_new(runs);
        }
    }

    /// Appends a command durably and wakes the runner.
    pub fn submit_command(&self, cmd: NewCommand) -> Result<Appended, StoreError> {
        let appended = self.store.append_command(cmd)?;
        self.wake_for(&appended);
        Ok(appended)
    }

    /// Wakes the runner loops to apply a command just appended (a duplicate was applied already).
    fn wake_for(&self, appended: &Appended) {
        if !appended.duplicate {
            self.broadcast(|| Msg::Commands);
        }
    }

    /// Hands new runs to the loops of their shards. A shard without a loop here gets nothing: a process that never
    /// runs one (an API node) would keep every message forever, and a loop starting later finds all of it in the
    /// store (its recovery loads the active runs and the commands after its cursor, and the flows as they are).
    fn route_new(&self, runs: Vec<RunState>) {
        self.route(runs, Msg::Adopt);
    }

    /// [`Gateway::route_new`] for runs another node created: each loop adopts them unless it knows them already.
    fn route_created_elsewhere(&self, runs: Vec<RunState>) {
        self.route(runs, Msg::AdoptNew);
    }

    fn route(&self, runs: Vec<RunState>, msg: fn(Vec<RunState>) -> Msg) {
        let mut by_shard: HashMap<u32, Vec<RunState>> = HashMap::new();
        for run in runs {
            by_shard
                .entry(self.shard_of_new(&run))
                .or_default()
                .push(run);
        }
        let loops = self.loops.lock();
        for (shard, runs) in by_shard {
            if let Some(l) = loops.get(&shard) {
                let _ = l.tx.send(msg(runs));
            }
        }
    }

    /// Tells every loop of this process.
    fn broadcast(&self, msg: impl Fn() -> Msg) {
        for l in self.loops.lock().values() {
            let _ = l.tx.send(msg());
        }
    }

    /// Stops every runner loop after its current round and waits for them.
    pub fn shutdown(&self) {
        let handles: Vec<LoopHandle> = self.loops.lock().drain().map(|(_, h)| h).collect();
        for h in &handles {
            let _ = h.tx.send(Msg::Shutdown);
        }
        for mut h in handles {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the runner thread owns.
struct LoopCtx {
    store: Store,
    workspaces: Arc<workspace::Workspaces>,
    flows: Arc<flows::SharedFlows>,
    max_steps: usize,
    executor: Option<Arc<dyn NodeExecutor>>,
    /// The loop's own inbox, for executors to report back.
    tx: Sender<Msg>,
    /// The shard this loop steps, and how many there are.
    shard: u32,
    shards: u32,
}

/// The runner thread. Work on one run is contained (`containment`); if the thread stops other than
/// when asked to, on an error or a panic nothing contained, the process exits.
fn run_loop(ctx: LoopCtx, rx: Receiver<Msg>) {
    let guard = containment::ExitIfRunnerDies::arm();
    if runner(ctx, rx) {
        guard.disarm();
    }
}

/// Reports why a runner loop stops on an error, in the log and on stderr (the process then exits, see
/// `run_loop`), and answers `runner`'s false.
fn stopped(shard: u32, what: &str, e: &dyn std::fmt::Display) -> bool {
    tracing::error!(shard, "runner: {what}, stopping: {e}");
    eprintln!("abstractgateway: runner of shard {shard}: {what}, stopping: {e}");
    false
}

/// The runner's rounds; true when it stops because it was asked to, false on an error.
fn runner(ctx: LoopCtx, rx: Receiver<Msg>) -> bool {
    let LoopCtx {
        store,
        flows,
        max_steps,
        shard,
        shards,
        ..
    } = &ctx;
    let (store, flows) = (store.clone(), flows.clone());
    let mut own = Shard {
        keys: shard::Keys::new(*shard),
        shards: *shards,
        roots: shard::Roots::default(),
    };
    let mut world = World::new(flows.get(), *max_steps);
    world.shared = Some(flows.clone());
    world.defer_pin_exprs = true;
    world.deferred_key = own.keys.deferred.clone();
    if *shards > 1 {
        world.outbox = Some(world::Outbox::new(own.keys.outbox_prefix.clone()));
    }
    let mut parked = cluster::Parked::default();
    if let Err(e) = recover(&store, &mut world, &mut parked, &mut own) {
        return stopped(*shard, "recovery failed", &e);
    }
    if let Err(e) = resend_outbox(&store, &own) {
        return stopped(*shard, "resending the outbox failed", &e);
    }
    dispatch(&ctx, &mut world);
    let mut cursor = own.keys.cursor(&store).unwrap_or(0);
    let mut flags = Flags {
        commands_pending: true,
        shutdown: false,
        releasing: None,
    };
    loop {
        flags.shutdown = false;
        while let Ok(msg) = rx.try_recv() {
            take(msg, &store, &mut world, &mut parked, &mut flags);
        }
        if let Some(since) = flags.releasing {
            if !world.is_clean()
                && let Err(e) = commit_round(&store, &mut world, &own)
            {
                return stopped(*shard, "commit failed while handing the shard back", &e);
            }
            if world.executing.is_empty() || flags.shutdown {
                metrics::ready_queue(*shard, 0);
                tracing::info!(shard, "runner loop stopped: the shard is handed back");
                return true;
            }
            if since.elapsed() >= RELEASE_WAIT {
                // The next owner re-runs them from their recorded host calls.
                world.executing.values().for_each(|f| f.cancel());
                tracing::warn!(
                    shard,
                    executing = world.executing.len(),
                    "plugin nodes still executing when the shard is handed back: stopped"
                );
                return true;
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(msg) => take(msg, &store, &mut world, &mut parked, &mut flags),
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            continue;
        }
        world.flows = flows.get();
        parked.release(&store, &mut world);
        // The commands' outcomes and cursor ride in the round's batch: a resumed run is stepped and durable in
        // one commit instead of two, and a crash before it re-applies the commands to the state they found.
        let mut round = own.keys.batch();
        if flags.commands_pending {
            match apply_commands(&store, &mut world, &mut cursor, &mut own, &mut round) {
                Ok(more) => flags.commands_pending = more,
                Err(e) => return stopped(*shard, "reading the command inbox failed", &e),
            }
        }
        world.fire_timers();
        let mut n = 0;
        while n < ROUND_RUNS
            && let Some(id) = world.pop_ready()
        {
            world.step_run(&id);
            n += 1;
        }
        metrics::ready_queue(*shard, world.ready_len());
        if (!round.is_empty() || !world.is_clean())
            && let Err(e) = commit_with(&store, &mut world, &own, round)
        {
            return stopped(*shard, "commit failed", &e);
        }
        dispatch(&ctx, &mut world);
        if flags.shutdown {
            return true;
        }
        if world.has_ready() || flags.commands_pending {
            continue;
        }
        // The round may have armed new timers (or fired due ones): sleep until the earliest.
        let next_timer = world.fire_timers();
        if world.has_ready() {
            continue;
        }
        let wait = next_timer
            .and_then(|u| time::parse_iso(&u))
            .map(|t| {
                let d = t - ::time::OffsetDateTime::now_utc();
                Duration::from_micros(d.whole_microseconds().clamp(0, 3_600_000_000) as u64)
            })
            .unwrap_or(Duration::from_secs(3600))
            .min(parked.next_check());
        match rx.recv_timeout(wait) {
            Ok(msg) => take(msg, &store, &mut world, &mut parked, &mut flags),
            Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if flags.shutdown {
            return true;
        }
    }
}

/// Adopts a run created by this process, unless the loop knows it already: a run committed while the loop was
/// recovering is found by the recovery too (`World::recovered`), may have been stepped since, and its stored
/// state is then the truth. A run the recovery did not see cannot have been stepped, so it is adopted without
/// reading the store.
fn adopt_fresh(store: &Store, world: &mut World, run: RunState) {
    if world.runs.contains_key(&run.run_id) {
        return;
    }
    // A start hands its run over once, so the entry is not needed again.
    if world.recovered.remove(&run.run_id) && store.ledger_len(&run.run_id) > run.ledger_len {
        if let Ok(Some(mut stored)) = store.get_run(&run.run_id)
            && !stored.status.is_terminal()
        {
            stored.ledger_len = stored.ledger_len.max(store.ledger_len(&stored.run_id));
            world.adopt(stored);
        }
        return;
    }
    world.adopt(run);
}

/// What the loop's messages asked for.
struct Flags {
    commands_pending: bool,
    shutdown: bool,
    /// Set when the shard is being handed back: no new work, only what is executing finishes.
    releasing: Option<std::time::Instant>,
}

/// Takes one message into the world (or the flags).
fn take(
    msg: Msg,
    store: &Store,
    world: &mut World,
    parked: &mut cluster::Parked,
    flags: &mut Flags,
) {
    match msg {
        Msg::Adopt(runs) => runs.into_iter().for_each(|r| adopt_fresh(store, world, r)),
        Msg::AdoptNew(runs) => parked.add(runs),
        Msg::Commands => flags.commands_pending = true,
        Msg::Reload => {}
        Msg::NodeDone(done) => flags.commands_pending |= node_done(world, *done),
        Msg::PinDone {
            run_id,
            sites,
            result,
        } => world.finish_pin(&run_id, sites, result),
        Msg::Shutdown => flags.shutdown = true,
        Msg::Release => {
            flags.releasing.get_or_insert_with(std::time::Instant::now);
        }
    }
}

/// What a loop knows of its shard.
struct Shard {
    keys: shard::Keys,
    shards: u32,
    roots: shard::Roots,
}

impl Shard {
    /// Whether run `id` belongs to this loop's shard (its tree's root hashes here).
    fn owns(&mut self, store: &Store, world: &World, id: &str) -> bool {
        if self.shards <= 1 || world.runs.contains_key(id) {
            return true;
        }
        let root = self.roots.of(store, id);
        shard::of_root(&root, self.shards) == self.keys.shard
    }
}

/// Commits the round as the shard's owner, then hands the events its runs emitted to the other shards.
fn commit_round(store: &Store, world: &mut World, own: &Shard) -> Result<(), StoreError> {
    commit_with(store, world, own, own.keys.batch())
}

/// [`commit_round`] on top of `batch` (the round's command outcomes and cursor), all in one atomic write.
fn commit_with(
    store: &Store,
    world: &mut World,
    own: &Shard,
    mut batch: Batch,
) -> Result<(), StoreError> {
    let evict = world.drain_into(&mut batch);
    store.commit(batch)?;
    world.evict(&evict);
    flush_outbox(store, world, own)
}

/// Appends the events of the last durable round as internal commands for the other shards, then removes them
/// from the outbox. A crash in between leaves them in the outbox: the next owner appends them again, and the
/// inbox keeps one command per id.
fn flush_outbox(store: &Store, world: &mut World, own: &Shard) -> Result<(), StoreError> {
    let Some(outbox) = world.outbox.as_mut() else {
        return Ok(());
    };
    if outbox.written.is_empty() {
        return Ok(());
    }
    let written = std::mem::take(&mut outbox.written);
    let prefix = outbox.prefix.clone();
    deliver_elsewhere(store, own, &prefix, written)
}

/// Appends outbox entries as `gateway.deliver_event` commands and deletes them from the outbox.
fn deliver_elsewhere(
    store: &Store,
    own: &Shard,
    prefix: &str,
    entries: Vec<(String, Value)>,
) -> Result<(), StoreError> {
    let mut done = own.keys.batch();
    for (id, entry) in entries {
        let run_id = entry
            .get("run_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut payload = entry;
        payload["origin_shard"] = Value::from(own.keys.shard);
        store.append_command(crate::store::NewCommand {
            command_id: id.clone(),
            run_id,
            kind: DELIVER_EVENT_COMMAND.to_string(),
            payload,
            ts: None,
            client_id: Some("gateway".into()),
        })?;
        done.delete_meta(&format!("{prefix}{id}"));
    }
    store.commit(done)
}

/// At a loop's start: the outbox entries a previous owner of the shard wrote but may not have appended.
fn resend_outbox(store: &Store, own: &Shard) -> Result<(), StoreError> {
    if own.shards <= 1 {
        return Ok(());
    }
    let prefix = &own.keys.outbox_prefix;
    let entries: Vec<(String, Value)> = store
        .meta_scan(prefix, usize::MAX)?
        .into_iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix(prefix.as_str())?.to_string();
            Some((id, serde_json::from_slice(&v).ok()?))
        })
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    deliver_elsewhere(store, own, prefix, entries)
}

/// Which loops apply a command: every loop for events (each delivers to its own waiters), else the loop of the
/// shard of the command's run. `writes_outcome`: whether this loop records the outcome.
fn command_route(
    store: &Store,
    world: &World,
    own: &mut Shard,
    cmd: &crate::run::CommandRecord,
) -> (bool, bool) {
    let kind = cmd.kind.to_ascii_lowercase();
    if kind == DELIVER_EVENT_COMMAND {
        let origin = cmd
            .payload
            .get("origin_shard")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mine = u64::from(own.keys.shard) == origin;
        // The emitting shard delivered it already: it only records the outcome.
        return (!mine, mine);
    }
    let owns_run = own.owns(store, world, &cmd.run_id);
    if kind == "emit_event" {
        return (true, owns_run);
    }
    (owns_run, owns_run)
}

/// Applies up to one batch of commands to the world and puts their outcomes and the new cursor in `batch`,
/// which the round commits with the state they changed; returns whether more may be waiting.
fn apply_commands(
    store: &Store,
    world: &mut World,
    cursor: &mut u64,
    own: &mut Shard,
    batch: &mut Batch,
) -> Result<bool, StoreError> {
    let cmds = store.commands_after(*cursor, COMMAND_BATCH)?;
    if cmds.is_empty() {
        return Ok(false);
    }
    let mut lens = observer::Lens::new();
    for cmd in &cmds {
        *cursor = (*cursor).max(cmd.seq);
        let (apply, record) = command_route(store, world, own, cmd);
        if cmd.kind == DELIVER_EVENT_COMMAND {
            if apply {
                deliver_forwarded(world, cmd);
            }
            if record {
                batch.put_outcome(&commands::outcome(cmd, Ok(vec![])));
            }
            continue;
        }
        if !apply {
            continue;
        }
        if defer_if_executing(world, cmd) {
            continue;
        }
        let outcome = if cmd.kind == observer::RECORD_EVENT_COMMAND {
            observer::apply(store, world, batch, &mut lens, cmd)
        } else {
            commands::apply(world, cmd)
        };
        if !record {
            continue;
        }
        if outcome.status == "rejected" {
            tracing::info!(
                "command {} rejected: {}",
                cmd.command_id,
                outcome.reason.as_deref().unwrap_or("")
            );
        }
        batch.put_outcome(&outcome);
    }
    // The outcomes, the state they changed and the cursor land atomically (in the round's commit):
    // exactly-once application.
    own.keys.set_cursor(batch, *cursor);
    Ok(cmds.len() == COMMAND_BATCH)
}

/// An event another shard's run emitted: delivered to this shard's waiters.
fn deliver_forwarded(world: &mut World, cmd: &crate::run::CommandRecord) {
    let keys: Vec<String> = cmd
        .payload
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let envelope = cmd.payload.get("envelope").cloned().unwrap_or(Value::Null);
    world::deliver(world, &keys, &envelope);
}

/// A command touching a run whose plugin node is executing waits for it (a cancel also stops it).
fn defer_if_executing(world: &mut World, cmd: &crate::run::CommandRecord) -> bool {
    let targets = match cmd.kind.to_ascii_lowercase().as_str() {
        "pause" | "resume" | "cancel" => world.tree(&cmd.run_id),
        "update_schedule" => vec![cmd.run_id.clone()],
        _ => return false,
    };
    let busy: Vec<Arc<CancelFlag>> = targets
        .iter()
        .filter_map(|id| world.executing.get(id).cloned())
        .collect();
    if busy.is_empty() {
        return false;
    }
    if cmd.kind.eq_ignore_ascii_case("cancel") {
        busy.iter().for_each(|f| f.cancel());
    }
    world.defer(cmd.clone());
    true
}

/// Applies a finished plugin node, then retries deferred commands; true if some are still deferred.
fn node_done(world: &mut World, done: NodeDone) -> bool {
    // A node stopped by a deferred cancel ends as that command says (cancelled), not as a failure of its own.
    let stopped_by_cancel = matches!(
        done.outcome,
        crate::engine::PluginOutcome::Failed(_) | crate::engine::PluginOutcome::Cancelled(_)
    ) && world.deferred.iter().any(|c| {
        c.kind.eq_ignore_ascii_case("cancel") && world.tree(&c.run_id).contains(&done.run_id)
    });
    if stopped_by_cancel {
        world.drop_plugin(&done.run_id, done.ledger_len);
    } else {
        world.finish_plugin(&done.run_id, done.outcome, done.ledger_len);
    }
    for cmd in world.take_deferred() {
        if defer_if_executing(world, &cmd) {
            continue;
        }
        let outcome = commands::apply(world, &cmd);
        world.outcomes.push(outcome);
    }
    false
}

/// Where runs stored by a gateway before plugin contract 0.2 keep an in-flight node's run context.
const LEGACY_RUN_CONTEXT_KEY: &str = "_run_context";

/// The job that executes run `id`'s in-flight plugin node, if it has one.
pub fn node_job(
    world: &World,
    store: &Store,
    workspaces: &workspace::Workspaces,
    id: &str,
    cancel: Arc<CancelFlag>,
) -> Option<NodeJob> {
    let run = world.runs.get(id)?;
    let mut inflight = run.inflight.clone()?;
    // A node started by a gateway before plugin contract 0.2 carried the run's context among its inputs.
    if inflight.run_context.is_none()
        && let serde_json::Value::Object(inputs) = &mut inflight.inputs
        && let Some(ctx) = inputs.remove(LEGACY_RUN_CONTEXT_KEY)
    {
        inflight.run_context = Some(ctx);
    }
    let config = world
        .flows
        .get(&run.workflow_id)
        .and_then(|f| f.node(&inflight.node_id).map(|n| n.node.data.clone()))
        .unwrap_or_default();
    Some(NodeJob {
        run_id: id.to_string(),
        session_id: run.session_id.clone(),
        actor_id: run.actor_id.clone(),
        workflow_id: run.workflow_id.clone(),
        node_id: inflight.node_id,
        node_type: inflight.node_type,
        plugin: inflight.plugin,
        digest: inflight.digest,
        config,
        inputs: inflight.inputs,
        run_context: inflight.run_context,
        vars: inflight.vars,
        workspace_root: Some(workspace_of(world, id, workspaces)),
        bundle: bundle_of(world, id),
        started_seq: inflight.started_seq,
        started_ms: inflight.started_ms,
        ledger_len: store.ledger_len(id),
        shard: 0,
        cancel,
    })
}

/// Evaluates each batch a step waits for on a thread of its own: an expression that runs to its deadline
/// holds that thread, never the runner. Exactly one `PinDone` comes back per batch.
fn dispatch_pin_exprs(ctx: &LoopCtx, world: &mut World) {
    for (run_id, req) in world.take_pin_jobs() {
        let sites = req.sites();
        let tx = ctx.tx.clone();
        let (id, where_) = (run_id.clone(), sites.clone());
        let spawned = std::thread::Builder::new()
            .name("pin-expr".into())
            .spawn(move || {
                let result =
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| req.evaluate()))
                    {
                        Ok(r) => r,
                        Err(p) => Err(PinFailure::Panic(crate::engine::exec::panic_cause(
                            p.as_ref(),
                        ))),
                    };
                let _ = tx.send(Msg::PinDone {
                    run_id,
                    sites,
                    result,
                });
            });
        if let Err(e) = spawned {
            // The run must not wait forever: its step fails with the reason.
            let result = Err(PinFailure::Error(format!(
                "cannot start a pin-expression evaluation: {e}"
            )));
            world.finish_pin(&id, where_, result);
        }
    }
}

/// Hands every plugin node whose `started` record is durable to the executor.
fn dispatch(ctx: &LoopCtx, world: &mut World) {
    dispatch_pin_exprs(ctx, world);
    for id in world.take_dispatch() {
        let Some(run) = world.runs.get(&id) else {
            continue;
        };
        let Some(inflight) = run.inflight.clone() else {
            continue;
        };
        let Some(executor) = ctx.executor.clone() else {
            let msg = format!(
                "PluginError: node '{}' ({}) needs the plugin host, which this process does not run",
                inflight.node_id, inflight.node_type
            );
            world.finish_plugin(&id, crate::engine::PluginOutcome::Failed(msg), 0);
            continue;
        };
        let cancel = Arc::new(CancelFlag::default());
        let Some(mut job) = node_job(world, &ctx.store, &ctx.workspaces, &id, cancel.clone())
        else {
            continue;
        };
        job.shard = ctx.shard;
        world.executing.insert(id.clone(), cancel);
        let tx = ctx.tx.clone();
        executor.spawn(
            ctx.store.clone(),
            job,
            Box::new(move |done| {
                let _ = tx.send(Msg::NodeDone(Box::new(done)));
            }),
        );
    }
}

/// The workspace the host chose for a run, else for its nearest ancestor that has one; a run tree with none
/// (started before workspaces were host-owned, or generated: listeners, schedules) works in its top run's
/// session directory. Never read from vars: a flow can write those.
fn workspace_of(world: &World, run_id: &str, workspaces: &workspace::Workspaces) -> String {
    let mut id = run_id.to_string();
    let mut top = None;
    for _ in 0..64 {
        let Some(run) = world.runs.get(&id) else {
            break;
        };
        if let Some(w) = &run.workspace {
            return w.clone();
        }
        top = Some(run.session_id.clone().unwrap_or_else(|| run.run_id.clone()));
        match &run.parent_run_id {
            Some(p) => id = p.clone(),
            None => break,
        }
    }
    let owner = top.unwrap_or_else(|| run_id.to_string());
    workspaces.for_owner(&owner).to_string_lossy().into_owned()
}

/// The bundle (`id@version`) a run's flow comes from: its own namespaced workflow id, else its nearest
/// ancestor's (listener and schedule wrappers have generated ids).
fn bundle_of(world: &World, run_id: &str) -> Option<String> {
    let mut id = run_id;
    for _ in 0..64 {
        let run = world.runs.get(id)?;
        if let Some((bundle, _)) = run.workflow_id.split_once(':')
            && bundle.contains('@')
        {
            return Some(bundle.to_string());
        }
        id = run.parent_run_id.as_deref()?;
    }
    None
}

/// Loads every active run; repairs parents whose child finished just before a crash. In a cluster, a run whose
/// workflow this node has not loaded yet (its bundle is still on its way) waits in `parked` like a new run.
fn recover(
    store: &Store,
    world: &mut World,
    parked: &mut cluster::Parked,
    own: &mut Shard,
) -> Result<(), StoreError> {
    world.deferred = store
        .get_meta(&own.keys.deferred)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let (runs, unreadable) = store.active_runs()?;
    for u in &unreadable {
        let root = match &u.parent_run_id {
            Some(p) => own.roots.of(store, p),
            None => u.run_id.clone(),
        };
        if shard::of_root(&root, own.shards) == own.keys.shard {
            quarantine(store, u, own.keys.shard);
        }
    }
    // Only this shard's runs: the other shards' loops (here or on other runners) recover theirs.
    runs.iter().for_each(|r| own.roots.learn(r));
    let runs: Vec<RunState> = runs
        .into_iter()
        .filter(|r| shard::of_root(&own.roots.of(store, &r.run_id), own.shards) == own.keys.shard)
        .collect();
    let n = runs.len();
    world.recovered = runs.iter().map(|r| r.run_id.clone()).collect();
    for mut r in runs {
        if store.is_replica() && world.flows.get(&r.workflow_id).is_none() {
            parked.add(vec![r]);
            continue;
        }
        // An interrupted plugin node appended host calls past the committed state.
        r.ledger_len = r.ledger_len.max(store.ledger_len(&r.run_id));
        world.adopt(r);
    }
    let waiting_parents: Vec<(String, String)> = world
        .runs
        .values()
        .filter_map(|r| {
            let k = r
                .waiting
                .as_ref()?
                .wait_key
                .as_deref()?
                .strip_prefix("subworkflow:")?;
            (!world.runs.contains_key(k)).then(|| (r.run_id.clone(), k.to_string()))
        })
        .collect();
    for (parent, child) in waiting_parents {
        if let Some(c) = store.get_run(&child)?
            && c.status.is_terminal()
        {
            let _ = world.resume(&parent, world::child_payload(&c));
        }
    }
    if n > 0 {
        tracing::info!(shard = own.keys.shard, "runner recovered {n} active runs");
    }
    if !world.is_clean() {
        commit_round(store, world, own)?;
    }
    Ok(())
}

/// Ends an active run whose stored state cannot be decoded: it fails with a record saying why, and keeps
/// what its index entries still tell (workflow, session, parent, creation time). The other runs recover;
/// a run that cannot even be rewritten is left behind with an error and skipped again at the next start.
fn quarantine(store: &Store, u: &crate::store::UnreadableRun, shard: u32) {
    let mut run = new_run_state(
        u.workflow_id.as_deref().unwrap_or_default(),
        "",
        Obj::new(),
        u.session_id.clone(),
        u.parent_run_id.clone(),
        None,
    );
    run.run_id = u.run_id.clone();
    run.session_id = Some(u.session_id.clone().unwrap_or_else(|| u.run_id.clone()));
    if let Some(c) = &u.created_at {
        run.created_at = c.clone();
    }
    run.current_node = None;
    run.vars.clear();
    run.ledger_len = store.ledger_len(&u.run_id);
    let mut recs = Vec::new();
    let error = format!(
        "RunStateUnreadable: the stored state of the run cannot be read, the run is quarantined: {}",
        u.error
    );
    crate::engine::fail(&mut run, &mut recs, "", error);
    let mut batch = Batch::default();
    batch.set_shard(shard);
    for rec in &recs {
        run.ledger_len += 1;
        batch.append_ledger(&run.run_id, run.ledger_len, rec);
    }
    batch.put_run(&run);
    match store.commit(batch) {
        Ok(()) => tracing::error!(
            run_id = %u.run_id,
            "recovery quarantined a run whose stored state cannot be read: {}",
            u.error
        ),
        Err(e) => tracing::error!(
            run_id = %u.run_id,
            "recovery cannot quarantine a run whose stored state cannot be read ({}): {e}",
            u.error
        ),
    }
}

/// Meta key listing every generated flow id.
const LEGACY_DYNAMIC_INDEX: &str = "dynamic_flows";
/// Meta key prefix of generated flows.
pub(crate) const DYNAMIC_PREFIX: &str = "dynamic_flow:";

fn dynamic_key(id: &str) -> String {
    format!("{DYNAMIC_PREFIX}{id}")
}

/// Adds a generated flow (and the updated index) to `batch`.
pub fn write_dynamic_flow(batch: &mut Batch, id: &str, flow: &Value) {
    // One key per flow, found again by prefix: no shared index to read-modify-write, so schedules created at once
    // on several nodes of a cluster cannot drop each other's entry.
    batch.put_meta(
        &dynamic_key(id),
        &serde_json::to_vec(flow).unwrap_or_default(),
    );
}

/// Loads every generated flow (at startup, so scheduled runs survive restarts; in a cluster, whenever another node
/// wrote one).
pub(crate) fn load_dynamic_flows(
    store: &Store,
    flows: &flows::SharedFlows,
) -> Result<(), StoreError> {
    // Stores written before flows were found by prefix also list them in an index.
    let mut ids: Vec<String> = store
        .get_meta(LEGACY_DYNAMIC_INDEX)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for key in store.meta_keys(DYNAMIC_PREFIX, usize::MAX)? {
        if let Some(id) = key.strip_prefix(DYNAMIC_PREFIX)
            && !ids.iter().any(|x| x == id)
        {
            ids.push(id.to_string());
        }
    }
    for id in ids {
        let Some(raw) = store
            .get_meta(&dynamic_key(&id))?
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        if let Err(e) = flows.put_dynamic(&id, raw) {
            tracing::warn!("generated flow {id} does not compile any more: {e}");
        }
    }
    Ok(())
}
