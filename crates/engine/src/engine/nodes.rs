//! The node-type registry: every type the engine can run, native or provided by a plugin.

use std::collections::HashMap;
use std::sync::Arc;

use crate::builtins::{self, BuiltinFn};

/// A node type provided by a plugin component; the engine suspends the run on it and the runner executes it.
/// Everything the engine treats differently from one plugin node to another is declared here by the
/// component (WIT `node-type`); the engine never looks at a plugin's or node type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginNode {
    /// The VisualFlow node type.
    pub node_type: String,
    /// Name of the plugin that provides it.
    pub plugin: String,
    /// sha256 of the component; a run replays against exactly this digest.
    pub digest: String,
    /// Effect type written in the ledger's started/completed records; `None` for a function-like node.
    pub effect: Option<String>,
    /// What the node reads of its run besides its inputs.
    pub reads: Reads,
    pub on_input_failure: InputFailure,
    pub on_failure: NodeFailure,
}

impl PluginNode {
    /// A node type with its kind's defaults: an effect node (one naming `effect`) fails its run when its
    /// inputs fail, a function-like one reports it; it reads nothing of its run, and its failure fails the run.
    pub fn new(
        node_type: impl Into<String>,
        plugin: impl Into<String>,
        digest: impl Into<String>,
        effect: Option<String>,
    ) -> Self {
        PluginNode {
            node_type: node_type.into(),
            plugin: plugin.into(),
            digest: digest.into(),
            on_input_failure: if effect.is_some() {
                InputFailure::FailRun
            } else {
                InputFailure::Report
            },
            effect,
            reads: Reads::default(),
            on_failure: NodeFailure::FailRun,
        }
    }

    /// The effect type its records show (`plugin_node` for a function-like node).
    pub fn effect_type(&self) -> &str {
        self.effect.as_deref().unwrap_or(FUNCTION_EFFECT)
    }
}

/// The effect type recorded for a function-like plugin node (one that declares no effect).
pub const FUNCTION_EFFECT: &str = "plugin_node";

/// What a plugin node reads of its run besides its inputs (WIT `reads`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// The run's `vars.context` (the conversation so far).
    pub run_context: bool,
    /// A read-only copy of the run's variables.
    pub vars: bool,
}

/// What happens when a plugin node's inputs cannot be resolved (WIT `input-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFailure {
    /// The node reports the error as its output (`_flow_error`), as a function-like node does.
    Report,
    /// The run fails, as an effect node's does.
    FailRun,
    /// The node runs with no inputs (the seed's agent node).
    StartEmpty,
}

/// What the run does when a plugin node fails (WIT `node-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFailure {
    /// The run fails.
    FailRun,
    /// The run completes with the node's error record `{success: false, error}` as its output (the seed's
    /// `code` node).
    CompleteRun,
}

/// Finds the plugins a bundle carries (and checks their digests) so its flows can use their node types.
pub trait BundlePlugins: Send + Sync {
    /// The node types of the components `bundle` declares; an error refuses the bundle.
    fn load(
        &self,
        bundle: &crate::bundle::Bundle,
    ) -> Result<Vec<Arc<PluginNode>>, BundlePluginsError>;
    /// Forgets what bundles other than `installed` (bundle refs) brought.
    fn retain(&self, installed: &[String]);
}

/// A bundle whose components [`BundlePlugins::load`] refused: the loader's own error (the engine does not
/// know the plugin host's types; a caller that does can `downcast_ref` it). Its text names the plugin and
/// the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct BundlePluginsError(pub Arc<dyn std::error::Error + Send + Sync>);

/// Two refusals are the same when they say the same (the loader's types are not known here).
impl PartialEq for BundlePluginsError {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

/// Control nodes drive the single cursor (§3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    If,
    Switch,
    Loop,
    For,
    While,
    Sequence,
    Parallel,
    LoopLimit,
}

/// Pass-through nodes write run variables and never set `_last_output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarWrite {
    SetVar,
    SetVars,
    SetVarProperty,
    AddToList,
}

/// Effect nodes: their outcome is recorded in the ledger (started + completed/waiting/failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    AskUser,
    WaitUntil,
    WaitEvent,
    EmitEvent,
    Subflow,
    OnEvent,
    OnSchedule,
}

impl Effect {
    /// The seed's effect type string written in ledger records.
    pub fn effect_type(self) -> &'static str {
        match self {
            Effect::AskUser => "ask_user",
            Effect::WaitUntil | Effect::OnSchedule => "wait_until",
            Effect::WaitEvent | Effect::OnEvent => "wait_event",
            Effect::EmitEvent => "emit_event",
            Effect::Subflow => "start_subworkflow",
        }
    }
}

/// How the engine runs one node type.
#[derive(Clone)]
pub enum NodeKind {
    Start,
    /// `on_user_request` / `on_agent_message`: entry nodes that read their run's message.
    Entry(Entry),
    End,
    Control(Control),
    VarWrite(VarWrite),
    Builtin(BuiltinFn),
    Effect(Effect),
    Plugin(Arc<PluginNode>),
    /// `memact_compose`: rebuilds the run's Active Memory (`_runtime.active_memory`) from a KG query result.
    Memact,
    /// A type of the seed's catalogue whose backend this gateway lacks: it fails (or reports a failed tool
    /// call) when it runs, so that the rest of its bundle loads and runs.
    Missing(crate::flow::catalogue::Missing),
}

/// The entry nodes besides `on_flow_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    UserRequest,
    AgentMessage,
}

impl std::fmt::Debug for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeKind::Start => write!(f, "Start"),
            NodeKind::Entry(e) => write!(f, "Entry({e:?})"),
            NodeKind::Missing(m) => write!(f, "Missing({})", m.needs),
            NodeKind::End => write!(f, "End"),
            NodeKind::Memact => write!(f, "Memact"),
            NodeKind::Control(c) => write!(f, "Control({c:?})"),
            NodeKind::VarWrite(v) => write!(f, "VarWrite({v:?})"),
            NodeKind::Builtin(_) => write!(f, "Builtin"),
            NodeKind::Effect(e) => write!(f, "Effect({e:?})"),
            NodeKind::Plugin(p) => write!(f, "Plugin({})", p.node_type),
        }
    }
}

/// Node types the engine knows natively besides the pure builtins.
fn native(ty: &str) -> Option<NodeKind> {
    use Control as C;
    use Effect as E;
    Some(match ty {
        "on_flow_start" => NodeKind::Start,
        "on_flow_end" => NodeKind::End,
        "on_user_request" => NodeKind::Entry(Entry::UserRequest),
        "on_agent_message" => NodeKind::Entry(Entry::AgentMessage),
        "memact_compose" => NodeKind::Memact,
        "if" => NodeKind::Control(C::If),
        "switch" => NodeKind::Control(C::Switch),
        "loop" | "foreach" | "for_each" => NodeKind::Control(C::Loop),
        "for" => NodeKind::Control(C::For),
        "while" => NodeKind::Control(C::While),
        "sequence" => NodeKind::Control(C::Sequence),
        "parallel" => NodeKind::Control(C::Parallel),
        "loop_limit" => NodeKind::Control(C::LoopLimit),
        "set_var" => NodeKind::VarWrite(VarWrite::SetVar),
        "set_vars" => NodeKind::VarWrite(VarWrite::SetVars),
        "set_var_property" => NodeKind::VarWrite(VarWrite::SetVarProperty),
        "add_to_list" => NodeKind::VarWrite(VarWrite::AddToList),
        "ask_user" => NodeKind::Effect(E::AskUser),
        "wait_until" => NodeKind::Effect(E::WaitUntil),
        "wait_event" => NodeKind::Effect(E::WaitEvent),
        "emit_event" => NodeKind::Effect(E::EmitEvent),
        "subflow" => NodeKind::Effect(E::Subflow),
        "on_event" => NodeKind::Effect(E::OnEvent),
        "on_schedule" => NodeKind::Effect(E::OnSchedule),
        _ => return None,
    })
}

/// Components the gateway has but compiles only when a flow first needs one (the Python component shipped in
/// the binary: compiling it takes 10–25 s, and most gateways never run a `code` node).
pub trait DeferredPlugins: Send + Sync {
    /// Whether loading them would provide `node_type`.
    fn provides(&self, node_type: &str) -> bool;
    /// Whether loading them would provide a pin-expression evaluator.
    fn evaluates_pin_expressions(&self) -> bool;
    /// Loads them (once; later calls answer the same): their node types and evaluator, or `None` when they
    /// could not be loaded (the host logs why).
    fn load(&self) -> Option<DeferredLoaded>;
}

/// What loading the deferred components gave.
#[derive(Clone, Default)]
pub struct DeferredLoaded {
    /// Their node types.
    pub nodes: Vec<Arc<PluginNode>>,
    /// Their pin-expression evaluator, if one has one.
    pub pin_evaluator: Option<Arc<dyn super::PinExprEvaluator>>,
}

/// Maps node type strings to their implementation; plugins are registered by type name.
#[derive(Clone, Default)]
pub struct NodeRegistry {
    plugins: HashMap<String, Arc<PluginNode>>,
    bundles: Option<Arc<dyn BundlePlugins>>,
    /// The Python sandbox pin expressions run in; `None` refuses flows that have some.
    pin_exprs: Option<Arc<dyn super::PinExprEvaluator>>,
    /// Components loaded on a flow's first need of them.
    deferred: Option<Arc<dyn DeferredPlugins>>,
}

impl NodeRegistry {
    /// A registry with the native node types only.
    pub fn new() -> Self {
        Self::default()
    }
    /// Registers a plugin-provided node type (a plugin never shadows a native type).
    pub fn register_plugin(&mut self, plugin: Arc<PluginNode>) {
        self.plugins.insert(plugin.node_type.clone(), plugin);
    }
    /// Lets bundles bring their own components.
    pub fn set_bundle_plugins(&mut self, loader: Arc<dyn BundlePlugins>) {
        self.bundles = Some(loader);
    }
    /// Lets flows use pin expressions and `functions`, evaluated by `evaluator`.
    pub fn set_pin_evaluator(&mut self, evaluator: Arc<dyn super::PinExprEvaluator>) {
        self.pin_exprs = Some(evaluator);
    }
    /// The pin-expression sandbox, if this gateway has one.
    pub fn pin_evaluator(&self) -> Option<&Arc<dyn super::PinExprEvaluator>> {
        self.pin_exprs.as_ref()
    }
    /// Components to load when a flow first needs them.
    pub fn set_deferred(&mut self, deferred: Arc<dyn DeferredPlugins>) {
        self.deferred = Some(deferred);
    }
    /// Whether a flow with these node types and pin expressions needs the deferred components: some type is
    /// provided only by them, or it has expressions and only they evaluate them.
    pub fn needs_deferred<'a>(
        &self,
        mut node_types: impl Iterator<Item = &'a str>,
        has_pin_exprs: bool,
    ) -> bool {
        let Some(d) = &self.deferred else {
            return false;
        };
        (has_pin_exprs && self.pin_exprs.is_none() && d.evaluates_pin_expressions())
            || node_types.any(|t| self.lookup(t).is_none() && d.provides(t))
    }
    /// This registry plus the deferred components, loaded now if they were not yet; `None` when there are
    /// none or they could not be loaded. What this registry has already (a bundle's own types) wins.
    pub fn with_deferred_loaded(&self) -> Option<NodeRegistry> {
        let loaded = self.deferred.as_ref()?.load()?;
        let mut reg = self.clone();
        reg.deferred = None;
        for node in loaded.nodes {
            reg.plugins.entry(node.node_type.clone()).or_insert(node);
        }
        if reg.pin_exprs.is_none() {
            reg.pin_exprs = loaded.pin_evaluator;
        }
        Some(reg)
    }
    /// This registry plus the node types of the components `bundle` carries (theirs win for that bundle).
    pub fn for_bundle(
        &self,
        bundle: &crate::bundle::Bundle,
    ) -> Result<NodeRegistry, BundlePluginsError> {
        let Some(loader) = &self.bundles else {
            return Ok(self.clone());
        };
        let mut reg = self.clone();
        for p in loader.load(bundle)? {
            reg.register_plugin(p);
        }
        Ok(reg)
    }
    /// Forgets what bundles no longer installed brought (their tool plugins).
    pub fn retain_bundles(&self, installed: &[String]) {
        if let Some(loader) = &self.bundles {
            loader.retain(installed);
        }
    }
    /// Every plugin-provided node type.
    pub fn plugin_types(&self) -> impl Iterator<Item = &Arc<PluginNode>> {
        self.plugins.values()
    }
    /// How to run `node_type`, or `None` when nothing provides it.
    pub fn lookup(&self, node_type: &str) -> Option<NodeKind> {
        native(node_type)
            .or_else(|| builtins::lookup(node_type).map(NodeKind::Builtin))
            .or_else(|| self.plugins.get(node_type).cloned().map(NodeKind::Plugin))
    }
}
