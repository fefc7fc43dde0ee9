//! The gateway's internal [`RECORD_EVENT_COMMAND`]: an API endpoint (run summary, chat, voice) asks the runner,
//! the one ledger writer, to append an `emit_event` record to a run's ledger. An active run gets it through the
//! world (after the host calls of a plugin node it is executing); a stored run, active elsewhere or terminal, gets
//! it appended after its durable ledger. The record and the command's outcome commit together.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::commands::{Applied, Rejection, outcome};
use crate::run::{CommandOutcome, CommandRecord, RunState, StepRecord};
use crate::store::{Batch, Store, StoreError};
use crate::world::World;

pub(crate) use crate::run::RECORD_EVENT_COMMAND;

/// Longest `node_id`, `name` or `idempotency_key` accepted.
const MAX_FIELD: usize = 256;

/// Ledger lengths of stored runs that this batch of commands already appended to.
pub(crate) type Lens = HashMap<String, u64>;

/// Applies one record command: adds its record to `world` or `batch`. A run that cannot be read rejects the
/// command (it must not stop the runner, which would meet the same command again after a restart).
pub(crate) fn apply(
    store: &Store,
    world: &mut World,
    batch: &mut Batch,
    lens: &mut Lens,
    cmd: &CommandRecord,
) -> CommandOutcome {
    let result = record(store, world, batch, lens, cmd)
        .unwrap_or_else(|e| Err(Rejection::RunUnreadable(cmd.run_id.clone(), e.to_string())));
    outcome(cmd, result)
}

fn field<'a>(cmd: &'a CommandRecord, key: &'static str) -> Result<&'a str, Rejection> {
    cmd.payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_FIELD)
        .ok_or(Rejection::RecordField(key))
}

/// The seed's shape of an API-written event record.
fn event_record(run: &RunState, cmd: &CommandRecord) -> Result<StepRecord, Rejection> {
    let node_id = field(cmd, "node_id")?;
    let name = field(cmd, "name")?;
    let key = field(cmd, "idempotency_key")?;
    let payload = cmd.payload.get("payload").cloned().unwrap_or(Value::Null);
    let mut rec = StepRecord::new(run, node_id, "completed");
    rec.effect = Some(json!({
        "type": "emit_event",
        "payload": {"name": name, "scope": "run", "run_id": run.run_id, "payload": payload},
        "result_key": null,
    }));
    rec.result = Some(json!({"emitted": true, "name": name, "payload": payload}));
    rec.idempotency_key = Some(key.to_string());
    Ok(rec)
}

fn record(
    store: &Store,
    world: &mut World,
    batch: &mut Batch,
    lens: &mut Lens,
    cmd: &CommandRecord,
) -> Result<Applied, StoreError> {
    let id = cmd.run_id.as_str();
    if let Some(run) = world.runs.get(id) {
        return Ok(match event_record(run, cmd) {
            Ok(rec) => {
                world.record(id, vec![rec]);
                Ok(vec![id.to_string()])
            }
            Err(r) => Err(r),
        });
    }
    let Some(run) = store.get_run(id)? else {
        return Ok(Err(Rejection::RunNotFound(id.to_string())));
    };
    Ok(match event_record(&run, cmd) {
        Ok(rec) => {
            let len = match lens.get(id) {
                Some(len) => *len,
                None => store.ledger_len(id),
            };
            batch.append_ledger(id, len + 1, &rec);
            lens.insert(id.to_string(), len + 1);
            Ok(vec![id.to_string()])
        }
        Err(r) => Err(r),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use crate::bundle::Limits;
    use crate::engine::NodeRegistry;
    use crate::run::{CommandOutcome, Obj, RunStatus};
    use crate::store::NewCommand;
    use crate::{Gateway, GatewayOptions, StartRequest, catalog};

    fn gateway(dir: &std::path::Path) -> Arc<Gateway> {
        let path = abstractgateway_testkit::repo_root().join("bundles/echo-upper@1.0.0.flow");
        let bundle = Arc::new(crate::bundle::read_bundle(&path, &Limits::default()).unwrap());
        let (flows, _, problems) = catalog::build(vec![bundle], &NodeRegistry::new());
        assert!(problems.is_empty(), "{problems:?}");
        let opts = GatewayOptions {
            data_dir: dir.to_path_buf(),
            runner: true,
            max_steps: 100,
            executor: None,
        };
        Gateway::open(opts, flows).unwrap()
    }

    fn record(gw: &Gateway, id: &str, run_id: &str, payload: Value) -> CommandOutcome {
        gw.submit_command(NewCommand {
            command_id: id.into(),
            run_id: run_id.into(),
            kind: super::RECORD_EVENT_COMMAND.into(),
            payload,
            ts: None,
            client_id: None,
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((_, Some(o))) = gw.store().get_command(id).unwrap() {
                return o;
            }
            assert!(Instant::now() < deadline, "command {id} never applied");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn records_land_after_a_finished_runs_ledger_and_bad_ones_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let gw = gateway(dir.path());
        let run = gw
            .start_run(StartRequest {
                workflow_id: "echo-upper@1.0.0:echo".into(),
                input: Obj::new(),
                ..Default::default()
            })
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while gw.store().get_run(&run.run_id).unwrap().unwrap().status != RunStatus::Completed {
            assert!(Instant::now() < deadline, "run never completed");
            std::thread::sleep(Duration::from_millis(10));
        }
        let before = gw.store().ledger_len(&run.run_id);
        let good = json!({"node_id": "observer", "name": "abstract.summary", "payload": {"text": "t"},
            "idempotency_key": "observer:summary:x"});
        let o = record(&gw, "r1", &run.run_id, good.clone());
        assert_eq!(o.status, "applied", "{o:?}");
        assert_eq!(gw.store().ledger_len(&run.run_id), before + 1);
        let last = gw.store().ledger_after(&run.run_id, before, 10).unwrap();
        let rec: Value = serde_json::from_str(last[0].json.get()).unwrap();
        assert_eq!(rec["node_id"], "observer");
        assert_eq!(rec["effect"]["payload"]["name"], "abstract.summary");
        assert_eq!(
            rec["result"],
            json!({"emitted": true, "name": "abstract.summary", "payload": {"text": "t"}})
        );
        assert_eq!(rec["idempotency_key"], "observer:summary:x");

        for (id, run_id, payload) in [
            (
                "r2",
                run.run_id.as_str(),
                json!({"name": "n", "idempotency_key": "k"}),
            ),
            (
                "r3",
                run.run_id.as_str(),
                json!({"node_id": "o", "name": "", "idempotency_key": "k"}),
            ),
            (
                "r4",
                run.run_id.as_str(),
                json!({"node_id": "o", "name": "x".repeat(300), "idempotency_key": "k"}),
            ),
            ("r5", "no-such-run", good.clone()),
        ] {
            let o = record(&gw, id, run_id, payload);
            assert_eq!(o.status, "rejected", "{id}: {o:?}");
        }
        assert_eq!(
            gw.store().ledger_len(&run.run_id),
            before + 1,
            "nothing else written"
        );
        // The runner goes on.
        let o = record(&gw, "r6", &run.run_id, good);
        assert_eq!(o.status, "applied");
        gw.shutdown();
    }
}
