//! The durable run model: `RunState`, `WaitState`, `StepRecord` and commands, in the seed's wire shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JSON object, insertion-ordered (the seed's dicts keep insertion order on the wire).
pub type Obj = Map<String, Value>;

/// The five statuses of the seed; "paused" is a flag, not a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// Completed, failed and cancelled never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "waiting" => Self::Waiting,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// Why a run waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitReason {
    Event,
    Until,
    User,
    Job,
    Subworkflow,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Until => "until",
            Self::User => "user",
            Self::Job => "job",
            Self::Subworkflow => "subworkflow",
        }
    }
}

/// A pending wait, exactly the seed's `WaitState` keys and order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitState {
    pub reason: WaitReason,
    pub wait_key: Option<String>,
    pub until: Option<String>,
    pub resume_to_node: Option<String>,
    pub result_key: Option<String>,
    pub prompt: Option<String>,
    pub choices: Option<Vec<Value>>,
    #[serde(default = "yes")]
    pub allow_free_text: bool,
    pub details: Option<Value>,
}

fn yes() -> bool {
    true
}

impl WaitState {
    pub fn new(reason: WaitReason) -> Self {
        WaitState {
            reason,
            wait_key: None,
            until: None,
            resume_to_node: None,
            result_key: None,
            prompt: None,
            choices: None,
            allow_free_text: true,
            details: None,
        }
    }
    /// The synthetic wait an operator pause puts on a running run.
    pub fn is_pause(&self) -> bool {
        self.wait_key
            .as_deref()
            .is_some_and(|k| k.starts_with("pause:"))
    }
}

/// Operator control flags (the seed keeps these under `vars._runtime.control`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Control {
    pub paused: bool,
    pub paused_at: Option<String>,
    pub pause_reason: Option<String>,
    pub resumed_at: Option<String>,
    pub cancelled_by: Option<String>,
    /// Events that reached this run while it was paused; delivered in order when it is resumed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_events: Vec<serde_json::Value>,
}

/// What a run has used of the budgets `engine::budget` sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Steps since the run last waited for time, an event or a user.
    #[serde(default)]
    pub steps: u64,
    /// Child runs started since the run last waited for time, an event or a user.
    #[serde(default)]
    pub children: u64,
    /// Bytes (encoded, approximately) of the records the run has written to its ledger.
    #[serde(default)]
    pub ledger_bytes: u64,
}

impl Usage {
    /// Nothing used yet (not stored).
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

/// A field that is present holds a value, even `null` (serde's `Option` would read `null` as absent).
fn present_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The durable state of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub workflow_id: String,
    pub status: RunStatus,
    pub current_node: Option<String>,
    pub vars: Obj,
    pub waiting: Option<WaitState>,
    /// `Some(Value::Null)` (a flow that ends with `null`) is kept apart from `None` (no output yet): the
    /// stored form omits `None` and keeps `null`, so every state reads back exactly as written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub actor_id: Option<String>,
    pub session_id: Option<String>,
    pub parent_run_id: Option<String>,
    /// Number of ledger records of this run (= the cursor after its last record).
    #[serde(default)]
    pub ledger_len: u64,
    #[serde(default)]
    pub control: Control,
    /// Digest of the bundle this run was started from (replays use exactly that bundle).
    #[serde(default)]
    pub bundle_sha256: Option<String>,
    /// The plugin node this run is executing, if any (the runner owns its ledger tail until it returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflight: Option<InFlight>,
    /// sha256 of every component this run has executed, by plugin name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub components: std::collections::BTreeMap<String, String>,
    /// The directory the host chose for this run's file tools (child runs use their root's). Host-owned:
    /// no input, var or pin changes it; the `workspace_root` var only shows it to the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// What the run has used of its budgets (`engine::budget`).
    #[serde(default, skip_serializing_if = "Usage::is_zero")]
    pub usage: Usage,
}

/// What a run's summary shows (`GET /runs/{id}`, listings), read from a stored run without decoding the bulk of
/// its variables: of `vars` only `_limits` and `_meta` become values, every other variable is skipped as it is
/// parsed. A status poll then costs a fraction of a full decode. The fields and their serde rules are
/// [`RunState`]'s; a test decodes both from the same bytes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunHead {
    pub run_id: String,
    pub workflow_id: String,
    pub status: RunStatus,
    pub current_node: Option<String>,
    pub vars: SummaryVars,
    pub waiting: Option<WaitState>,
    #[serde(default, deserialize_with = "present_value")]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub actor_id: Option<String>,
    pub session_id: Option<String>,
    pub parent_run_id: Option<String>,
    #[serde(default)]
    pub control: Control,
}

impl RunHead {
    /// The head of a state already decoded.
    pub fn of(run: &RunState) -> RunHead {
        RunHead {
            run_id: run.run_id.clone(),
            workflow_id: run.workflow_id.clone(),
            status: run.status,
            current_node: run.current_node.clone(),
            vars: SummaryVars::of(&run.vars),
            waiting: run.waiting.clone(),
            output: run.output.clone(),
            error: run.error.clone(),
            created_at: run.created_at.clone(),
            updated_at: run.updated_at.clone(),
            actor_id: run.actor_id.clone(),
            session_id: run.session_id.clone(),
            parent_run_id: run.parent_run_id.clone(),
            control: run.control.clone(),
        }
    }
}

/// The variables a summary reads: `_limits` (token budget) and `_meta` (a scheduled run's schedule).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryVars {
    pub limits: Option<Value>,
    pub meta: Option<Value>,
}

impl SummaryVars {
    /// The same two variables of a full state.
    pub fn of(vars: &Obj) -> SummaryVars {
        SummaryVars {
            limits: vars.get("_limits").cloned(),
            meta: vars.get("_meta").cloned(),
        }
    }
}

impl<'de> Deserialize<'de> for SummaryVars {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SummaryVarsVisitor)
    }
}

/// A variable's name, classified without allocating it.
enum VarName {
    Limits,
    Meta,
    Other,
}

impl<'de> Deserialize<'de> for VarName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = VarName;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a variable name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VarName, E> {
                Ok(match v {
                    "_limits" => VarName::Limits,
                    "_meta" => VarName::Meta,
                    _ => VarName::Other,
                })
            }
        }
        d.deserialize_str(Name)
    }
}

struct SummaryVarsVisitor;

impl<'de> serde::de::Visitor<'de> for SummaryVarsVisitor {
    type Value = SummaryVars;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the run's variables")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SummaryVars, A::Error> {
        let mut out = SummaryVars::default();
        // A repeated name keeps its last value, as a full decode into a map does.
        while let Some(name) = map.next_key::<VarName>()? {
            match name {
                VarName::Limits => out.limits = Some(map.next_value()?),
                VarName::Meta => out.meta = Some(map.next_value()?),
                VarName::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A plugin node in execution: enough to run it again after a crash, replaying its recorded host calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub node_id: String,
    pub node_type: String,
    pub plugin: String,
    /// The component the run is pinned to.
    pub digest: String,
    /// The resolved input pins the node was started with.
    pub inputs: Value,
    /// The run's context when the node started, if its type reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_context: Option<Value>,
    /// The run's variables when the node started, if its type reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<Value>,
    /// Ledger seq of the node's `started` record; its host calls follow it (0 until committed).
    #[serde(default)]
    pub started_seq: u64,
    /// Set while the node waits, suspended in `durability.await`, for this wait key or event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<String>,
    /// When the `started` record was written, ms since the epoch, if this process wrote it (never stored: a
    /// node resumed after a restart reads it back from the ledger).
    #[serde(skip)]
    pub started_ms: Option<u64>,
}

/// One ledger entry: the seed's 16 keys, always present, in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub run_id: String,
    pub step_id: String,
    pub node_id: String,
    pub status: String,
    pub effect: Option<Value>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub actor_id: Option<String>,
    pub session_id: Option<String>,
    pub attempt: u32,
    pub idempotency_key: Option<String>,
    pub prev_hash: Option<String>,
    pub record_hash: Option<String>,
    pub signature: Option<String>,
}

impl StepRecord {
    /// A record for `run` with a fresh step id and both timestamps set to now.
    pub fn new(run: &RunState, node_id: &str, status: &str) -> Self {
        let now = crate::time::now_iso();
        StepRecord {
            run_id: run.run_id.clone(),
            step_id: uuid::Uuid::new_v4().to_string(),
            node_id: node_id.to_string(),
            status: status.to_string(),
            effect: None,
            result: None,
            error: None,
            started_at: now.clone(),
            ended_at: Some(now),
            actor_id: run.actor_id.clone(),
            session_id: run.session_id.clone(),
            attempt: 1,
            idempotency_key: None,
            prev_hash: None,
            record_hash: None,
            signature: None,
        }
    }
}

/// The six command types of the seed's inbox.
pub const COMMAND_TYPES: [&str; 6] = [
    "pause",
    "resume",
    "cancel",
    "emit_event",
    "update_schedule",
    "compact_memory",
];

/// The gateway's own command that appends an `emit_event` record to a run's ledger (active or not) on behalf of
/// an API endpoint (the seed's observer and voice records: `abstract.summary`, `abstract.chat`,
/// `abstract.voice.tts`, ...). The runner is the one ledger writer, so the API asks it through the inbox. Never
/// accepted from clients: `POST /commands` takes only [`COMMAND_TYPES`].
///
/// Payload: `{"node_id": str, "name": str, "payload": any, "idempotency_key": str}`.
pub const RECORD_EVENT_COMMAND: &str = "gateway.record_event";

/// The gateway's own command that carries an event a run emitted to the waiters of the other shards (cluster mode
/// with several shards; see docs/scale-out.md). Never accepted from clients.
///
/// Payload: `{"run_id": str, "keys": [wait keys], "envelope": event, "origin_shard": n}`.
pub const DELIVER_EVENT_COMMAND: &str = "gateway.deliver_event";

/// A command as stored in the durable inbox (the seed's `commands.jsonl` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandRecord {
    pub command_id: String,
    pub run_id: String,
    /// `pause`, `resume`, `cancel`, `emit_event`, `update_schedule` or `compact_memory`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the type needs.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
    /// ISO 8601: the client's, else when it was stored.
    pub ts: String,
    pub client_id: Option<String>,
    /// Its place in the inbox.
    pub seq: u64,
}

/// The durable result of applying a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandOutcome {
    pub command_id: String,
    pub seq: u64,
    /// `applied` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Runs the command changed.
    pub runs: Vec<String>,
    /// ISO 8601.
    pub applied_at: String,
}

/// The ledger record of one host call a plugin made: `(interface, function)`, its request and its answer
/// (`{"ok": ..}` or `{"error": ..}`). Replay reads these back in order.
pub fn host_call_record(
    run: &RunState,
    node_id: &str,
    call: (&str, &str),
    request: Value,
    answer: Result<Value, Value>,
    duration_ms: f64,
) -> StepRecord {
    let failed = answer.is_err();
    let mut rec = StepRecord::new(run, node_id, if failed { "failed" } else { "completed" });
    rec.effect = Some(serde_json::json!({"type": "host_call", "payload": {
        "interface": call.0, "function": call.1, "request": request}, "result_key": null}));
    rec.result = Some(match answer {
        Ok(v) => serde_json::json!({"ok": v, "duration_ms": duration_ms}),
        Err(e) => {
            rec.error = e.get("message").and_then(Value::as_str).map(String::from);
            serde_json::json!({"error": e, "duration_ms": duration_ms})
        }
    });
    rec
}

/// A host-call record read back from the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCall {
    pub interface: String,
    pub function: String,
    pub request: Value,
    /// `Ok(answer)` or `Err(error value)`, exactly as recorded.
    pub answer: Result<Value, Value>,
}

impl HostCall {
    /// Reads a ledger record back as a host call; `None` for any other record.
    pub fn from_record(rec: &Value) -> Option<HostCall> {
        let effect = rec.get("effect")?;
        if effect.get("type")?.as_str()? != "host_call" {
            return None;
        }
        let payload = effect.get("payload")?;
        let result = rec.get("result")?;
        let answer = match (result.get("ok"), result.get("error")) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(e)) => Err(e.clone()),
            (None, None) => return None,
        };
        Some(HostCall {
            interface: payload.get("interface")?.as_str()?.to_string(),
            function: payload.get("function")?.as_str()?.to_string(),
            request: payload.get("request").cloned().unwrap_or(Value::Null),
            answer,
        })
    }
}

/// A new run id: the UUID4 text clients know (version 4, RFC variant, 74 random bits), whose first 48 bits are
/// the creation time in milliseconds, laid out as UUIDv7 lays them. Every store key of a run (its state, its
/// indexes, its ledger) begins with the id, so new keys land next to each other at the end of the key space:
/// an insert touches the few hot nodes there instead of a random path through the whole memtable, and a flushed
/// table covers a narrow range that compaction can move instead of rewrite. With fully random ids both costs
/// grew with the store. The id is no secret (every route takes the bearer token); 74 random bits keep it unique.
pub fn new_run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    // Bytes 6 (version) and 8 (variant) are set by `new_v4`; only the random bytes before them are replaced.
    let mut b = *uuid::Uuid::new_v4().as_bytes();
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    uuid::Uuid::from_bytes(b).to_string()
}

/// A fresh run record at `entry` (the seed's defaults for `_limits`).
pub fn new_run_state(
    workflow_id: &str,
    entry: &str,
    mut vars: Obj,
    session_id: Option<String>,
    parent: Option<String>,
    bundle_sha256: Option<String>,
) -> RunState {
    let run_id = new_run_id();
    let now = crate::time::now_iso();
    // Built once: a `json!` object is nine hashed inserts, a clone of the template copies them.
    static LIMITS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        serde_json::json!({"max_iterations": 20, "current_iteration": 0, "max_tokens": 32768, "max_output_tokens": null,
               "max_input_tokens": null, "estimated_tokens_used": 0, "max_history_messages": -1,
               "warn_iterations_pct": 80, "warn_tokens_pct": 80})
    });
    vars.entry("_limits").or_insert_with(|| LIMITS.clone());
    RunState {
        session_id: Some(session_id.unwrap_or_else(|| run_id.clone())),
        run_id,
        workflow_id: workflow_id.to_string(),
        status: RunStatus::Running,
        current_node: Some(entry.to_string()),
        vars,
        waiting: None,
        output: None,
        error: None,
        created_at: now.clone(),
        updated_at: now,
        actor_id: Some("gateway".into()),
        parent_run_id: parent,
        ledger_len: 0,
        control: Default::default(),
        bundle_sha256,
        inflight: None,
        components: Default::default(),
        workspace: None,
        usage: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_uuid4_text_in_creation_order() {
        let a = new_run_id();
        let parsed = uuid::Uuid::parse_str(&a).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4, "{a}");
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{a}");
        assert_eq!(
            parsed.hyphenated().to_string(),
            a,
            "lower-case hyphenated text"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_run_id();
        assert!(a < b, "a later id sorts after an earlier one: {a} {b}");
        // The time prefix is the creation time (within this test's few milliseconds).
        let ms = u64::from_str_radix(&b.replace('-', "")[..12], 16).expect("hex");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert!(now.abs_diff(ms) < 60_000, "{ms} vs {now}");
    }

    /// A state with every field a summary shows set, and variables a summary skips (nested, escaped, large).
    fn rich_state() -> RunState {
        let mut vars = Obj::new();
        vars.insert("text".into(), Value::from("a \"quoted\" \\ value ✓"));
        vars.insert(
            "_temp".into(),
            serde_json::json!({"node_outputs": {"n1": {"x": [1, 2, {"y": null}]}}}),
        );
        vars.insert(
            "_meta".into(),
            serde_json::json!({"schedule": {"interval": "5m"}, "other": 1}),
        );
        vars.insert("big".into(), Value::from("z".repeat(10_000)));
        vars.insert("we\u{e9}ird \"key\"".into(), Value::from(1.5));
        let mut run = new_run_state(
            "b@1:f",
            "start",
            vars,
            Some("s1".into()),
            Some("p1".into()),
            None,
        );
        run.status = RunStatus::Waiting;
        run.waiting = Some(WaitState {
            reason: WaitReason::User,
            wait_key: Some("k".into()),
            until: None,
            resume_to_node: None,
            result_key: None,
            prompt: Some("why?".into()),
            choices: Some(vec!["a".into()]),
            allow_free_text: true,
            details: None,
        });
        run.output = Some(Value::Null);
        run.error = Some("boom".into());
        run.control.paused = true;
        run.control.pause_reason = Some("ops".into());
        run
    }

    #[test]
    fn a_head_read_from_stored_bytes_is_the_head_of_the_full_state() {
        let mut cases = vec![rich_state()];
        // No output yet (absent, not null), no `_meta`, a `_meta` that is not an object.
        let mut bare = rich_state();
        bare.output = None;
        bare.vars.shift_remove("_meta");
        bare.waiting = None;
        cases.push(bare);
        let mut odd = rich_state();
        odd.vars.insert("_meta".into(), Value::from(5));
        odd.vars
            .insert("_limits".into(), serde_json::json!(["not", "an", "object"]));
        cases.push(odd);
        for run in cases {
            let bytes = serde_json::to_vec(&run).expect("encode");
            let head: RunHead = serde_json::from_slice(&bytes).expect("head");
            assert_eq!(head, RunHead::of(&run));
            let full: RunState = serde_json::from_slice(&bytes).expect("full");
            assert_eq!(RunHead::of(&full), head);
        }
    }

    #[test]
    fn a_repeated_variable_keeps_its_last_value_as_a_full_decode_does() {
        let run = rich_state();
        let mut json = serde_json::to_value(&run).expect("encode").to_string();
        json = json.replacen(
            "\"vars\":{",
            "\"vars\":{\"_limits\":{\"max_tokens\":1},\"_meta\":7,",
            1,
        );
        let head: RunHead = serde_json::from_str(&json).expect("head");
        let full: RunState = serde_json::from_str(&json).expect("full");
        assert_eq!(head, RunHead::of(&full));
        assert_eq!(head.vars.limits, run.vars.get("_limits").cloned());
    }

    #[test]
    fn run_ids_made_in_one_millisecond_are_still_distinct() {
        let ids: std::collections::HashSet<String> = (0..20_000).map(|_| new_run_id()).collect();
        assert_eq!(ids.len(), 20_000);
    }
}
