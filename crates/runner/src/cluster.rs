//! Cluster mode: what the runner learns from changes other nodes made (the store is a replica of a shared log).
//!
//! The store calls the listener after applying each log entry. New runs, commands and generated flows written by
//! any node reach this process here; only the loops this process runs (the shards whose lease it holds) are told
//! about runs and commands, each run to the loop of its shard, because they alone step them (an API node would
//! queue them forever).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::run::RunState;
use crate::store::Store;
use crate::store::replica::{IntakeEvent, IntakeListener};
use crate::world::World;
use crate::{DYNAMIC_PREFIX, Gateway, Msg, load_dynamic_flows};

/// The listener a gateway sets on its replica store. It holds the gateway weakly: the store must not keep it alive.
pub(crate) fn listener(gw: Weak<Gateway>) -> IntakeListener {
    Arc::new(move |store: &Store, event: IntakeEvent| {
        let Some(gw) = gw.upgrade() else {
            return;
        };
        match event {
            IntakeEvent::Runs(runs) => gw.route_created_elsewhere(runs),
            IntakeEvent::Command => gw.broadcast(|| Msg::Commands),
            IntakeEvent::Meta(keys) => {
                if keys.iter().any(|k| k.starts_with(DYNAMIC_PREFIX)) {
                    if let Err(e) = load_dynamic_flows(store, &gw.flows) {
                        tracing::warn!("reloading generated flows: {e}");
                    }
                    gw.broadcast(|| Msg::Reload);
                }
            }
        }
    })
}

/// How long a run created on another node waits for its workflow to be loaded here (the bundle it was started
/// from reaches this node through the cluster's bundle bucket moments after the upload) before it is adopted anyway
/// and fails as "not loaded".
const FLOW_WAIT: Duration = Duration::from_secs(30);

/// Runs created by intake, waiting to be adopted.
#[derive(Default)]
pub(crate) struct Parked {
    runs: Vec<(Instant, RunState)>,
}

impl Parked {
    /// Queues runs another node created.
    pub(crate) fn add(&mut self, runs: Vec<RunState>) {
        let now = Instant::now();
        self.runs.extend(runs.into_iter().map(|r| (now, r)));
    }

    /// Adopts every queued run whose workflow is loaded, or that waited long enough.
    pub(crate) fn release(&mut self, store: &Store, world: &mut World) {
        if self.runs.is_empty() {
            return;
        }
        let now = Instant::now();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.runs)
            .into_iter()
            .partition(|(since, run)| {
                world.flows.get(&run.workflow_id).is_some()
                    || now.duration_since(*since) >= FLOW_WAIT
            });
        self.runs = waiting;
        adopt_new(store, world, ready.into_iter().map(|(_, r)| r).collect());
    }

    /// How long the runner may sleep before a queued run must be looked at again.
    pub(crate) fn next_check(&self) -> Duration {
        self.runs
            .iter()
            .map(|(since, _)| (*since + FLOW_WAIT).saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(3600))
    }
}

/// Adopts runs created by intake unless the runner knows them already (its recovery found them) or they ended
/// meanwhile; the stored state is fresher than the one in the event.
fn adopt_new(store: &Store, world: &mut World, runs: Vec<RunState>) {
    for run in runs {
        if world.runs.contains_key(&run.run_id) {
            continue;
        }
        match store.get_run(&run.run_id) {
            Ok(Some(mut stored)) if !stored.status.is_terminal() => {
                stored.ledger_len = stored.ledger_len.max(store.ledger_len(&stored.run_id));
                world.adopt(stored);
            }
            Ok(_) => {}
            Err(e) => tracing::error!("run {} created elsewhere cannot be read: {e}", run.run_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use serde_json::json;

    use crate::bundle::Limits;
    use crate::engine::NodeRegistry;
    use crate::run::{Obj, RunStatus};
    use crate::store::replica::memlog::{MemLog, MemLogWriter, MemTailer};
    use crate::store::{NewCommand, Store};
    use crate::{Gateway, GatewayOptions, StartRequest, catalog};

    struct Node {
        gw: Arc<Gateway>,
        _tailer: MemTailer,
        _dir: tempfile::TempDir,
    }

    fn flows(bundles: &[&str]) -> crate::Flows {
        let loaded = bundles
            .iter()
            .map(|b| {
                let path = abstractgateway_testkit::repo_root().join(format!("bundles/{b}.flow"));
                Arc::new(crate::bundle::read_bundle(&path, &Limits::default()).unwrap())
            })
            .collect();
        let (flows, _, problems) = catalog::build(loaded, &NodeRegistry::new());
        assert!(problems.is_empty(), "{problems:?}");
        flows
    }

    fn node(log: &Arc<MemLog>, owner: bool) -> Node {
        node_with(log, owner, &["ask-user@1.0.0", "echo-upper@1.0.0"])
    }

    fn node_with(log: &Arc<MemLog>, owner: bool, bundles: &[&str]) -> Node {
        let (node, writer) = replica_node(log, flows(bundles));
        if owner {
            let marker = writer.take_over();
            node.gw.store().wait_applied(marker).unwrap();
            node.gw.start_runner().unwrap();
        }
        node
    }

    /// A gateway on a replica of `log` (no runner yet), and its log writer.
    fn replica_node(log: &Arc<MemLog>, flows: crate::Flows) -> (Node, Arc<MemLogWriter>) {
        let dir = tempfile::tempdir().unwrap();
        let writer = log.writer();
        let store = Store::open_replica(dir.path(), writer.clone()).unwrap();
        let tailer = log.tail(store.applier().unwrap());
        let opts = GatewayOptions {
            data_dir: dir.path().to_path_buf(),
            runner: false,
            max_steps: 100,
            executor: None,
        };
        let gw = Gateway::open_on(opts, flows, store).unwrap();
        let node = Node {
            gw,
            _tailer: tailer,
            _dir: dir,
        };
        (node, writer)
    }

    /// Starts `workflow` on `gw`, with an idempotency key when given.
    fn start(gw: &Gateway, workflow: &str, key: Option<&str>) -> crate::run::RunState {
        gw.start_run(StartRequest {
            workflow_id: workflow.into(),
            input: Obj::new(),
            idempotency_key: key.map(str::to_string),
            ..Default::default()
        })
        .unwrap()
    }

    fn wait_status(store: &Store, run_id: &str, status: RunStatus) -> crate::run::RunState {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(r) = store.get_run(run_id).unwrap()
                && r.status == status
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} never reached {status:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_run_started_and_answered_on_an_api_node_is_run_by_the_owner() {
        let log = MemLog::new();
        let api = node(&log, false);
        // A run created before the runner exists is found by its recovery; one created after, by the listener.
        let early = start(&api.gw, "ask-user@1.0.0:ask", None);
        let owner = node(&log, true);
        let late = start(&api.gw, "ask-user@1.0.0:ask", Some("idem/late"));
        // The same key on the other node answers the same run.
        let again = start(&owner.gw, "ask-user@1.0.0:ask", Some("idem/late"));
        assert_eq!(again.run_id, late.run_id);
        for run in [&early, &late] {
            wait_status(api.gw.store(), &run.run_id, RunStatus::Waiting);
            let appended = api
                .gw
                .submit_command(NewCommand {
                    command_id: format!("answer-{}", run.run_id),
                    run_id: run.run_id.clone(),
                    kind: "resume".into(),
                    payload: json!({"payload": {"response": "blue"}}),
                    ts: None,
                    client_id: None,
                })
                .unwrap();
            assert!(!appended.duplicate);
            let done = wait_status(api.gw.store(), &run.run_id, RunStatus::Completed);
            assert!(done.output.is_some(), "{done:?}");
            // Both replicas hold the same ledger, record for record.
            let on_api = api.gw.store().ledger_after(&run.run_id, 0, 100).unwrap();
            owner.gw.store().wait_applied(log.len()).unwrap();
            let on_owner = owner.gw.store().ledger_after(&run.run_id, 0, 100).unwrap();
            assert_eq!(on_api.len(), on_owner.len());
            for (a, b) in on_api.iter().zip(&on_owner) {
                assert_eq!(a.json.get(), b.json.get());
            }
            let (_, outcome) = api
                .gw
                .store()
                .get_command(&format!("answer-{}", run.run_id))
                .unwrap()
                .unwrap();
            assert_eq!(outcome.unwrap().status, "applied");
        }
        // Nothing was adopted twice: one run per start, and each ran its steps once.
        let runs = api
            .gw
            .store()
            .list_runs(&crate::store::RunQuery::default())
            .unwrap();
        assert_eq!(runs.len(), 2);
        owner.gw.shutdown();
    }

    #[test]
    fn a_run_recovered_before_its_bundle_reached_the_owner_waits_for_it() {
        let log = MemLog::new();
        let api = node_with(&log, false, &["ask-user@1.0.0", "delay@1.0.0"]);
        let run = start(&api.gw, "delay@1.0.0:delay", None);
        // The owner starts (a takeover) with the run in its replica but not yet the run's bundle.
        let owner = node_with(&log, true, &["ask-user@1.0.0"]);
        runs_once_its_bundle_arrives(&api, &owner, &run);
    }

    #[test]
    fn a_run_of_a_bundle_the_owner_has_not_loaded_yet_waits_for_it() {
        let log = MemLog::new();
        let api = node_with(&log, false, &["ask-user@1.0.0", "delay@1.0.0"]);
        let owner = node_with(&log, true, &["ask-user@1.0.0"]);
        let run = start(&api.gw, "delay@1.0.0:delay", None);
        runs_once_its_bundle_arrives(&api, &owner, &run);
    }

    /// `run` (of delay, which `owner` has not loaded) is not failed while it waits; once the bundle reaches the
    /// owner (as through the cluster's bundle bucket, a moment later) it runs to completion. (A flow that needs a
    /// runner: a self-contained one such as echo-upper is finished by its start on the API node.)
    fn runs_once_its_bundle_arrives(api: &Node, owner: &Node, run: &crate::run::RunState) {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            api.gw.store().get_run(&run.run_id).unwrap().unwrap().status,
            RunStatus::Running,
            "not failed while its workflow is missing"
        );
        owner.gw.reload(flows(&["ask-user@1.0.0", "delay@1.0.0"]));
        let done = wait_status(api.gw.store(), &run.run_id, RunStatus::Completed);
        assert!(done.output.is_some());
        owner.gw.shutdown();
    }

    /// wait-event's waiters plus `emit`: start → emit_event (global "go") → end.
    fn event_flows() -> crate::Flows {
        let mut f = flows(&["wait-event@1.0.0"]);
        let exec = |id: &str| json!({"id": id, "type": "execution"});
        let emit = json!({"id": "emit", "name": "emit", "entryNode": "s", "nodes": [
            {"id": "s", "type": "on_flow_start", "data": {"outputs": [exec("exec-out")]}},
            {"id": "e", "type": "emit_event", "data": {"inputs": [exec("exec-in")], "outputs": [exec("exec-out")],
                "effectConfig": {"name": "go", "scope": "global"}}},
            {"id": "z", "type": "on_flow_end", "data": {"inputs": [exec("exec-in")]}}],
          "edges": [
            {"id": "1", "source": "s", "sourceHandle": "exec-out", "target": "e", "targetHandle": "exec-in"},
            {"id": "2", "source": "e", "sourceHandle": "exec-out", "target": "z", "targetHandle": "exec-in"}]});
        f.insert_with_listeners(crate::flow::compile(&emit, &NodeRegistry::new()).unwrap());
        f
    }

    /// A node stepping only `shard` of `shards`, and its log writer.
    fn shard_owner(log: &Arc<MemLog>, shards: u32, shard: u32) -> (Node, Arc<MemLogWriter>) {
        let (node, writer) = replica_node(log, event_flows());
        node.gw.set_shards(shards);
        let marker = writer.take_over_shard(shard);
        node.gw.store().wait_applied(marker).unwrap();
        node.gw.start_shard(shard).unwrap();
        (node, writer)
    }

    #[test]
    fn each_shard_steps_its_own_runs_and_events_cross_shards() {
        let log = MemLog::new();
        let (a, _) = shard_owner(&log, 2, 0);
        let (b, _) = shard_owner(&log, 2, 1);
        // Waiters until both shards have some: each is stepped by its shard's owner alone.
        let mut waiters = Vec::new();
        while [0, 1].iter().any(|s| {
            !waiters
                .iter()
                .any(|r: &crate::run::RunState| crate::shard::of_root(&r.run_id, 2) == *s)
        }) {
            waiters.push(start(&a.gw, "wait-event@1.0.0:waitev", None));
        }
        for w in &waiters {
            wait_status(a.gw.store(), &w.run_id, RunStatus::Waiting);
        }
        // One run emits: the waiters of its own shard get the event at once, the other shard's through the inbox.
        let emitter = start(&b.gw, "emit", None);
        wait_status(a.gw.store(), &emitter.run_id, RunStatus::Completed);
        for w in &waiters {
            wait_status(b.gw.store(), &w.run_id, RunStatus::Completed);
        }
        // Carried by exactly one internal command, recorded once by the emitting shard, and gone from its outbox.
        let store = a.gw.store();
        store.wait_applied(log.len()).unwrap();
        let forwarded: Vec<_> = store
            .commands_after(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|c| c.kind == crate::run::DELIVER_EVENT_COMMAND)
            .collect();
        assert_eq!(forwarded.len(), 1, "{forwarded:?}");
        let origin = crate::shard::of_root(&emitter.run_id, 2);
        assert_eq!(forwarded[0].payload["origin_shard"], json!(origin));
        let (_, outcome) = store
            .get_command(&forwarded[0].command_id)
            .unwrap()
            .unwrap();
        assert_eq!(outcome.unwrap().status, "applied");
        assert!(store.meta_keys("outbox.", 10).unwrap().is_empty());
        // Each loop moved its own cursor.
        let cursor = |s: u32| crate::shard::Keys::new(s).cursor(store).unwrap();
        assert!(cursor(0) > 0 && cursor(1) > 0);
        a.gw.shutdown();
        b.gw.shutdown();
    }

    #[test]
    fn a_shard_handed_back_is_recovered_by_its_next_owner() {
        let log = MemLog::new();
        let (a, a_writer) = shard_owner(&log, 2, 0);
        let (b, _) = shard_owner(&log, 2, 1);
        let waiters: Vec<_> = (0..6)
            .map(|_| start(&a.gw, "wait-event@1.0.0:waitev", None))
            .collect();
        for w in &waiters {
            wait_status(a.gw.store(), &w.run_id, RunStatus::Waiting);
        }
        // b hands shard 1 back; a takes it over and recovers its waiting runs.
        b.gw.stop_shard(1);
        assert!(b.gw.running_shards().is_empty());
        let marker = a_writer.take_over_shard(1);
        a.gw.store().wait_applied(marker).unwrap();
        a.gw.start_shard(1).unwrap();
        assert_eq!(a.gw.running_shards(), vec![0, 1]);
        let emitter = start(&a.gw, "emit", None);
        wait_status(a.gw.store(), &emitter.run_id, RunStatus::Completed);
        for w in &waiters {
            wait_status(a.gw.store(), &w.run_id, RunStatus::Completed);
        }
        a.gw.shutdown();
        b.gw.shutdown();
    }
}
