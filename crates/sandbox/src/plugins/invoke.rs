//! Executes one plugin node: a fresh store from the pool, limits set, recorded calls replayed, the
//! component's answer checked, and one `PluginOutcome` back.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use super::PluginHost;
use super::bindings::node_export::{ContextEdit as WitContextEdit, Invocation, NodeResult};
use super::component::{LoadedPlugin, NodePre};
use super::ctx::NodeCtx;
use super::durable::Recorder;
use super::sandbox;
use crate::engine::{ContextEdit, NodeOutput, PluginOutcome};
use crate::run::{HostCall, Obj, RunState, RunStatus};
use crate::runner::executor::{NodeDone, NodeJob};
use crate::store::Store;

/// Runs `job` to its outcome; never panics on anything the component does.
pub async fn run_node(host: Arc<PluginHost>, store: Store, job: NodeJob) -> NodeDone {
    let run_id = job.run_id.clone();
    let mut ledger_len = job.ledger_len;
    let outcome = match host.plugin_for(&job.plugin, &job.digest) {
        Err(e) => PluginOutcome::Failed(e),
        Ok(plugin) => match first_execution(&job)
            .map(Ok)
            .unwrap_or_else(|| recorded(&store, &job.run_id, job.started_seq, &job.node_id))
        {
            Err(e) => PluginOutcome::Failed(e),
            Ok((replay, started_ms)) => {
                let (outcome, len) = execute(&host, store, &job, &plugin, replay, started_ms).await;
                ledger_len = len;
                outcome
            }
        },
    };
    NodeDone {
        run_id,
        outcome,
        ledger_len,
    }
}

/// What [`recorded`] would read, known without reading: when the node's `started` record is the run's last
/// durable one, nothing was recorded after it (this is its first execution, not a re-run after a restart or
/// an await), so there is nothing to replay; its time is known if the runner wrote it in this process, or
/// is now if there is no such record (seq 0, the ledger is empty).
fn first_execution(job: &NodeJob) -> Option<(Vec<HostCall>, u64)> {
    if job.ledger_len != job.started_seq {
        return None;
    }
    match (job.started_seq, job.started_ms) {
        (0, _) => Some((Vec::new(), crate::time::now_ms())),
        (_, Some(ms)) => Some((Vec::new(), ms)),
        (_, None) => None,
    }
}

/// The host calls stamped `node_id` recorded after the node's `started` record (seq `started_seq`), and the
/// time that record was written.
pub(crate) fn recorded(
    store: &Store,
    run_id: &str,
    started_seq: u64,
    node_id: &str,
) -> Result<(Vec<HostCall>, u64), String> {
    let mut calls = Vec::new();
    let mut started_ms = crate::time::now_ms();
    let mut cursor = started_seq.saturating_sub(1);
    loop {
        let page = store
            .ledger_after(run_id, cursor, 1000)
            .map_err(|e| format!("cannot read the ledger to replay node {node_id}: {e}"))?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for entry in &page {
            // Most records belong to other nodes: only two fields are read before deciding.
            let Ok(probe) = serde_json::from_str::<Probe<'_>>(entry.json.get()) else {
                continue;
            };
            if entry.seq == started_seq {
                if let Some(ms) = probe.started_at.as_deref().and_then(crate::time::iso_ms) {
                    started_ms = ms;
                }
                continue;
            }
            if probe.node_id.as_deref() == Some(node_id)
                && let Ok(v) = serde_json::from_str::<Value>(entry.json.get())
                && let Some(call) = HostCall::from_record(&v)
            {
                calls.push(call);
            }
        }
    }
    Ok((calls, started_ms))
}

/// The two fields of a ledger record replay looks at first.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    node_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    started_at: Option<Cow<'a, str>>,
}

async fn execute(
    host: &PluginHost,
    store: Store,
    job: &NodeJob,
    plugin: &LoadedPlugin,
    replay: Vec<HostCall>,
    started_ms: u64,
) -> (PluginOutcome, u64) {
    let name = &job.node_type;
    let grants = plugin.grants.clone();
    let inv = match invocation(host, job, &plugin.pre) {
        Ok(inv) => inv,
        Err(e) => return (PluginOutcome::Failed(e), job.ledger_len),
    };
    // Admission first (a cancel also ends the wait): a node waiting for a slot holds no instance, and its
    // clock starts only once it has one.
    let slot = tokio::select! {
        slot = host.admission.acquire(plugin.owner.class()) => slot,
        _ = job.cancel.cancelled() => Err(sandbox::Stop::Cancelled),
    };
    let _slot = match slot {
        Ok(slot) => slot,
        Err(sandbox::Stop::Cancelled) => {
            return (
                PluginOutcome::Cancelled(sandbox::Stop::Cancelled.describe(name)),
                job.ledger_len,
            );
        }
        Err(stop) => return (PluginOutcome::Failed(stop.describe(name)), job.ledger_len),
    };
    let _in_use = super::metrics::InstanceInUse::start(match plugin.owner.class() {
        sandbox::Class::General => "general",
        sandbox::Class::Reserved => "reserved",
    });
    let began = std::time::Instant::now();
    let rec = Recorder::new(
        Some(store),
        identity(job),
        job.node_id.clone(),
        job.started_seq,
        replay,
        job.ledger_len,
        grants.max_host_calls,
        job.cancel.clone(),
    )
    .on_shard(job.shard);
    let seed = format!("{}:{}", job.run_id, job.started_seq);
    let mut ctx = NodeCtx::new(
        grants.clone(),
        host.caps.clone(),
        rec,
        started_ms,
        &seed,
        plugin.owner.clone(),
    );
    ctx.workspace_root = job.workspace_root.clone();
    ctx.bundle = job.bundle.clone();
    let limits = sandbox::Limits::of(&grants);
    let mut ws = sandbox::store(&host.engine.engine, ctx, limits, Some(job.cancel.clone()));
    let max = grants.max_output_bytes;
    let result = sandbox::run(&mut ws, limits, Some(job.cancel.clone()), async |ws| {
        Ok(match inv {
            Call::Current(pre, inv) => {
                let inst = pre.instantiate_async(&mut *ws).await?;
                let got = inst
                    .abstractgateway_plugin_node()
                    .call_run(&mut *ws, &inv)
                    .await?;
                got.map(|r| node_output(name, r, max))
                    .map_err(|e| (super::caps::code_name(e.code), e.message))
            }
            Call::V0_1(pre, inv) => {
                let inst = pre.instantiate_async(&mut *ws).await?;
                let got = inst
                    .abstractgateway_plugin_node()
                    .call_run(&mut *ws, &inv)
                    .await?;
                got.map(|text| legacy_output(name, text, max))
                    .map_err(|e| (legacy_code_name(e.code), e.message))
            }
        })
    })
    .await;
    let flushed = ws.data_mut().rec.flush();
    let data = ws.data();
    let len = data.rec.ledger_len();
    let outcome = match (result, flushed) {
        (_, Err(e)) => PluginOutcome::Failed(format!("PluginError: {e}")),
        (Err(sandbox::Stop::Suspended), _) => match data.suspend.clone() {
            Some(wait) => PluginOutcome::Suspended(wait),
            None => PluginOutcome::Failed(sandbox::Stop::Suspended.describe(name)),
        },
        (Err(sandbox::Stop::Cancelled), _) => {
            PluginOutcome::Cancelled(sandbox::Stop::Cancelled.describe(name))
        }
        (Err(stop), _) => PluginOutcome::Failed(stop.describe(name)),
        (Ok(Err((code, message))), _) => {
            PluginOutcome::Failed(format!("PluginError: {name}: {code}: {message}"))
        }
        (Ok(Ok(outcome)), _) => outcome,
    };
    let label = match &outcome {
        PluginOutcome::Failed(_) => "failed",
        PluginOutcome::Suspended(_) => "suspended",
        PluginOutcome::Cancelled(_) => "cancelled",
        _ => "completed",
    };
    super::metrics::node_executed(&job.plugin, label, began.elapsed());
    (outcome, len)
}

/// An invocation in the contract version of the component it goes to, with that component.
enum Call<'p> {
    Current(
        &'p super::bindings::node::NodePluginPre<NodeCtx>,
        Invocation,
    ),
    V0_1(
        &'p super::v0_1::bindings::node::NodePluginPre<NodeCtx>,
        super::v0_1::node_export::Invocation,
    ),
}

/// The invocation of `job`: its config (with `_gateway`), inputs and what its node type reads, as JSON text.
fn invocation<'p>(host: &PluginHost, job: &NodeJob, pre: &'p NodePre) -> Result<Call<'p>, String> {
    let (default_provider, default_model) = host
        .caps
        .llm
        .as_ref()
        .and_then(|l| l.default_route())
        .unwrap_or_default();
    let config = ConfigText {
        data: &job.config,
        gateway: GatewayInfo {
            tool_mode: host.caps.tool_mode.as_str(),
            run_id: &job.run_id,
            workflow_id: &job.workflow_id,
            session_id: job.session_id.as_deref(),
            actor_id: job.actor_id.as_deref(),
            default_provider: &default_provider,
            default_model: &default_model,
        },
    };
    let config = serde_json::to_string(&config).map_err(|e| format!("PluginError: {e}"))?;
    Ok(match pre {
        NodePre::Current(pre) => Call::Current(
            pre,
            Invocation {
                node_type: job.node_type.clone(),
                node_id: job.node_id.clone(),
                config,
                inputs: job.inputs.to_string(),
                run_context: job.run_context.as_ref().map(Value::to_string),
                vars: job.vars.as_ref().map(Value::to_string),
            },
        ),
        NodePre::V0_1(pre) => Call::V0_1(
            pre,
            super::v0_1::invocation(
                job.node_type.clone(),
                job.node_id.clone(),
                config,
                &job.inputs,
                job.run_context.as_ref(),
            ),
        ),
    })
}

/// The config a component reads: the flow node's `data` with `_gateway` set (in the place of one `data` may
/// carry, else last), written as JSON text straight from `data`, without copying it into a new map.
struct ConfigText<'a> {
    data: &'a Obj,
    gateway: GatewayInfo<'a>,
}

impl Serialize for ConfigText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let replaces = self.data.contains_key(GATEWAY_KEY);
        let mut m = s.serialize_map(Some(self.data.len() + usize::from(!replaces)))?;
        for (k, v) in self.data {
            if k == GATEWAY_KEY {
                m.serialize_entry(k, &self.gateway)?;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        if !replaces {
            m.serialize_entry(GATEWAY_KEY, &self.gateway)?;
        }
        m.end()
    }
}

const GATEWAY_KEY: &str = "_gateway";

/// What a node may know of its host, beside its own config (never credentials).
#[derive(Serialize)]
struct GatewayInfo<'a> {
    tool_mode: &'a str,
    run_id: &'a str,
    workflow_id: &'a str,
    session_id: Option<&'a str>,
    actor_id: Option<&'a str>,
    default_provider: &'a str,
    default_model: &'a str,
}

/// What the node's records are stamped with: run, session (a run's own id when it has none) and actor. Only
/// these fields are read; building a whole fresh run (uuid, timestamps, default limits) cost more than the node.
fn identity(job: &NodeJob) -> RunState {
    stamp(
        job.run_id.clone(),
        job.workflow_id.clone(),
        Some(job.node_id.clone()),
        job.actor_id.clone(),
        Some(job.session_id.clone().unwrap_or_else(|| job.run_id.clone())),
        job.ledger_len,
    )
}

/// A run state carrying only what records are stamped with; every other field empty.
pub(super) fn stamp(
    run_id: String,
    workflow_id: String,
    current_node: Option<String>,
    actor_id: Option<String>,
    session_id: Option<String>,
    ledger_len: u64,
) -> RunState {
    RunState {
        run_id,
        workflow_id,
        status: RunStatus::Running,
        current_node,
        vars: Default::default(),
        waiting: None,
        output: None,
        error: None,
        created_at: String::new(),
        updated_at: String::new(),
        actor_id,
        session_id,
        parent_run_id: None,
        ledger_len,
        control: Default::default(),
        bundle_sha256: None,
        inflight: None,
        components: Default::default(),
        workspace: None,
        usage: Default::default(),
    }
}

/// A 0.2.0 node's result: every JSON field checked, its total size within the plugin's output limit.
fn node_output(name: &str, r: NodeResult, max: u64) -> PluginOutcome {
    let edit_len = match &r.context_edit {
        Some(WitContextEdit::Append(t) | WitContextEdit::Replace(t)) => t.len(),
        None => 0,
    };
    let opt_len = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    let size = r.outputs.len()
        + opt_len(&r.ambient)
        + opt_len(&r.complete_output)
        + opt_len(&r.effect_payload)
        + edit_len;
    if size as u64 > max {
        return PluginOutcome::Failed(format!(
            "PluginError: {name} returned {size} bytes of output; its limit is {max}"
        ));
    }
    let field = |what: &str, text: &str| {
        serde_json::from_str::<Value>(text)
            .map_err(|e| format!("PluginError: {name} returned invalid JSON in {what}: {e}"))
    };
    let list = |what: &str, text: &str| match field(what, text)? {
        Value::Array(list) => Ok(list),
        other => Err(format!(
            "PluginError: {name} returned a context edit that is not a list of messages: {other}"
        )),
    };
    let opt = |what: &str, o: &Option<String>| o.as_deref().map(|t| field(what, t)).transpose();
    let built = (|| {
        Ok::<_, String>(NodeOutput {
            outputs: pins(field("outputs", &r.outputs)?),
            ambient: opt("ambient", &r.ambient)?,
            complete: opt("complete-output", &r.complete_output)?,
            effect_payload: opt("effect-payload", &r.effect_payload)?,
            context_edit: match &r.context_edit {
                Some(WitContextEdit::Append(t)) => {
                    Some(ContextEdit::Append(list("context-edit", t)?))
                }
                Some(WitContextEdit::Replace(t)) => {
                    Some(ContextEdit::Replace(list("context-edit", t)?))
                }
                None => None,
            },
        })
    })();
    match built {
        Ok(out) => PluginOutcome::Output(out),
        Err(e) => PluginOutcome::Failed(e),
    }
}

/// Output pins from a JSON value: an object is the pins, anything else the single pin `result`.
fn pins(v: Value) -> Obj {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = Obj::new();
            m.insert("result".into(), other);
            m
        }
    }
}

/// A 0.1.0 node's output text.
fn legacy_output(name: &str, out: String, max: u64) -> PluginOutcome {
    if out.len() as u64 > max {
        return PluginOutcome::Failed(format!(
            "PluginError: {name} returned {} bytes of output; its limit is {max}",
            out.len()
        ));
    }
    match serde_json::from_str::<Value>(&out) {
        Ok(v) => PluginOutcome::Output(super::v0_1::node_output(pins(v))),
        Err(e) => PluginOutcome::Failed(format!("PluginError: {name} returned invalid JSON: {e}")),
    }
}

/// The WIT name of a 0.1.0 error code.
fn legacy_code_name(
    code: super::v0_1::bindings::node::abstractgateway::plugin::types::ErrorCode,
) -> &'static str {
    let e: super::bindings::types::Error =
        super::v0_1::bindings::node::abstractgateway::plugin::types::Error {
            code,
            message: String::new(),
            retryable: false,
        }
        .into();
    super::caps::code_name(e.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(outputs: &str) -> NodeResult {
        NodeResult {
            outputs: outputs.into(),
            ambient: None,
            complete_output: None,
            effect_payload: None,
            context_edit: None,
        }
    }

    fn failure(o: PluginOutcome) -> String {
        match o {
            PluginOutcome::Failed(m) => m,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_node_result_is_checked_field_by_field() {
        let ok = node_output(
            "n",
            NodeResult {
                ambient: Some("{\"a\":1}".into()),
                context_edit: Some(WitContextEdit::Append("[{\"role\":\"user\"}]".into())),
                ..result("{\"x\":2}")
            },
            1000,
        );
        let PluginOutcome::Output(out) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(Value::Object(out.outputs), json!({"x": 2}));
        assert_eq!(out.ambient, Some(json!({"a": 1})));
        assert_eq!(
            out.context_edit,
            Some(ContextEdit::Append(vec![json!({"role": "user"})]))
        );
        // A scalar output is the single pin `result`.
        let PluginOutcome::Output(scalar) = node_output("n", result("3"), 1000) else {
            panic!("scalar")
        };
        assert_eq!(Value::Object(scalar.outputs), json!({"result": 3}));
        // Every field counts toward the output limit, not only the pins.
        let big = "x".repeat(600);
        let over = node_output(
            "n",
            NodeResult {
                effect_payload: Some(format!("\"{big}\"")),
                ..result(&format!("\"{big}\""))
            },
            1000,
        );
        assert!(failure(over).contains("its limit is 1000"));
        let bad = node_output(
            "n",
            NodeResult {
                complete_output: Some("{nope".into()),
                ..result("{}")
            },
            1000,
        );
        assert!(failure(bad).contains("invalid JSON in complete-output"));
        let not_list = node_output(
            "n",
            NodeResult {
                context_edit: Some(WitContextEdit::Replace("{\"role\":\"user\"}".into())),
                ..result("{}")
            },
            1000,
        );
        assert!(failure(not_list).contains("not a list of messages"));
    }

    /// The config text as a map built with `_gateway` inserted, then printed.
    fn via_map(data: &Obj, g: &GatewayInfo<'_>) -> String {
        let mut config = data.clone();
        config.insert(
            "_gateway".into(),
            json!({"tool_mode": g.tool_mode, "run_id": g.run_id, "workflow_id": g.workflow_id,
                "session_id": g.session_id, "actor_id": g.actor_id, "default_provider": g.default_provider,
                "default_model": g.default_model}),
        );
        Value::Object(config).to_string()
    }

    #[test]
    fn the_config_text_is_data_with_gateway_in_place() {
        let gateway = || GatewayInfo {
            tool_mode: "passthrough",
            run_id: "r-1",
            workflow_id: "wf \"q\"",
            session_id: None,
            actor_id: Some("gateway"),
            default_provider: "lmstudio",
            default_model: "",
        };
        let datas = [
            json!({}),
            json!({"effectConfig": {"b": 1, "a": [null, 2.5, "é"]}, "outputs": ["x"]}),
            json!({"z": 1, "_gateway": {"forged": true}, "a": 2}),
        ];
        for data in datas {
            let Value::Object(data) = data else {
                panic!("an object")
            };
            let got = serde_json::to_string(&ConfigText {
                data: &data,
                gateway: gateway(),
            })
            .expect("text");
            assert_eq!(got, via_map(&data, &gateway()));
            let back: Value = serde_json::from_str(&got).expect("json");
            assert_eq!(back["_gateway"]["run_id"], "r-1");
        }
        let with_session = GatewayInfo {
            session_id: Some("s"),
            ..gateway()
        };
        let data = Obj::new();
        assert_eq!(
            serde_json::to_string(&ConfigText {
                data: &data,
                gateway: with_session,
            })
            .expect("text"),
            via_map(
                &data,
                &GatewayInfo {
                    session_id: Some("s"),
                    ..gateway()
                }
            )
        );
    }
}
