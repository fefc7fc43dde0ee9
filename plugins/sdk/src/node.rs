//! Node plugins: describing node types, reading an invocation, and the `Node` trait.

use serde_json::{Map, Value};

use crate::bindings::node::exports::abstractgateway::plugin::node as wit;
use crate::error::{Error, parse_host_json};

/// The output pins of a node, as a JSON object.
pub type Outputs = Map<String, Value>;

/// One input or output pin as the VisualFlow editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The pin id (the key in `inputs` / the output object).
    pub id: String,
    /// The label the editor shows.
    pub label: String,
    /// VisualFlow pin type: string, number, boolean, object, array, any...
    pub pin_type: String,
}

/// What a node type reads of its run besides its inputs (WIT `reads`); nothing by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// The run's context (`vars.context`), passed as [`Invocation::run_context`].
    pub run_context: bool,
    /// A read-only copy of the run's variables, passed as [`Invocation::vars`].
    pub vars: bool,
}

/// What happens when a node's inputs cannot be resolved, e.g. a pulled node raised (WIT `input-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFailure {
    /// The node reports the error as its output (`_flow_error`), as a function-like node does.
    Report,
    /// The run fails, as an effect node's does.
    FailRun,
    /// The node runs with no inputs.
    StartEmpty,
}

/// What the run does when the node fails or returns `{success: false, error}` (WIT `node-failure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NodeFailure {
    /// The run fails (the default).
    #[default]
    FailRun,
    /// The run completes with the node's error record as its output (as a `code` node's does).
    CompleteRun,
}

/// A node type a plugin provides; build it with [`NodeType::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeType {
    /// The VisualFlow `type` string nodes use to name it.
    pub name: String,
    /// Human label; defaults to the name.
    pub label: String,
    /// One or two sentences for the editor.
    pub description: String,
    /// Input pins, in display order.
    pub inputs: Vec<Pin>,
    /// Output pins, in display order.
    pub outputs: Vec<Pin>,
    /// The effect type recorded in the ledger; `None` for a function-like node.
    pub effect: Option<String>,
    /// What the node reads of its run besides its inputs.
    pub reads: Reads,
    /// Set by [`NodeType::on_input_failure`]; `None`: fail-run with an effect, report without.
    pub on_input_failure: Option<InputFailure>,
    /// What the run does when the node fails.
    pub on_failure: NodeFailure,
}

impl NodeType {
    /// A node type called `name` with no pins; the label starts as the name.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        NodeType {
            label: name.clone(),
            name,
            description: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            effect: None,
            reads: Reads::default(),
            on_input_failure: None,
            on_failure: NodeFailure::FailRun,
        }
    }

    /// Sets the label the editor shows.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds an input pin whose label is its id.
    pub fn input(self, id: &str, pin_type: &str) -> Self {
        self.input_labeled(id, id, pin_type)
    }

    /// Adds an input pin with a label.
    pub fn input_labeled(mut self, id: &str, label: &str, pin_type: &str) -> Self {
        self.inputs.push(pin(id, label, pin_type));
        self
    }

    /// Adds an output pin whose label is its id.
    pub fn output(self, id: &str, pin_type: &str) -> Self {
        self.output_labeled(id, id, pin_type)
    }

    /// Adds an output pin with a label.
    pub fn output_labeled(mut self, id: &str, label: &str, pin_type: &str) -> Self {
        self.outputs.push(pin(id, label, pin_type));
        self
    }

    /// Sets the effect type written in the ledger (and makes a failing input pull fail the run).
    pub fn effect(mut self, effect: impl Into<String>) -> Self {
        self.effect = Some(effect.into());
        self
    }

    /// Asks for the run's context as [`Invocation::run_context`].
    pub fn reads_run_context(mut self) -> Self {
        self.reads.run_context = true;
        self
    }

    /// Asks for a read-only copy of the run's variables as [`Invocation::vars`].
    pub fn reads_vars(mut self) -> Self {
        self.reads.vars = true;
        self
    }

    /// Sets what happens when the node's inputs cannot be resolved.
    pub fn on_input_failure(mut self, f: InputFailure) -> Self {
        self.on_input_failure = Some(f);
        self
    }

    /// Sets what the run does when the node fails.
    pub fn on_failure(mut self, f: NodeFailure) -> Self {
        self.on_failure = f;
        self
    }

    /// The input failure mode declared to the host: the explicit one, else fail-run for a node with an
    /// effect and report for a function-like one.
    pub fn input_failure(&self) -> InputFailure {
        match (self.on_input_failure, &self.effect) {
            (Some(f), _) => f,
            (None, Some(_)) => InputFailure::FailRun,
            (None, None) => InputFailure::Report,
        }
    }
}

fn pin(id: &str, label: &str, pin_type: &str) -> Pin {
    Pin {
        id: id.to_string(),
        label: label.to_string(),
        pin_type: pin_type.to_string(),
    }
}

/// One node to run: which type, its flow node id, its configuration, resolved inputs and what it reads.
#[derive(Debug, Clone)]
pub struct Invocation {
    node_type: String,
    node_id: String,
    config: Config,
    inputs: Value,
    run_context: Option<Value>,
    vars: Option<Value>,
}

impl PartialEq for Invocation {
    fn eq(&self, other: &Self) -> bool {
        self.node_type == other.node_type
            && self.node_id == other.node_id
            && self.config() == other.config()
            && self.inputs == other.inputs
            && self.run_context == other.run_context
            && self.vars == other.vars
    }
}

/// The node's `data` object, parsed on first use: most nodes never read it (an echo, a text tool reading only its
/// inputs), and parsing it is most of a small node's own work.
#[derive(Debug, Clone)]
struct Config {
    text: String,
    value: std::sync::OnceLock<Value>,
}

impl Config {
    fn parsed(value: Value) -> Self {
        Config {
            text: String::new(),
            value: std::sync::OnceLock::from(value),
        }
    }

    /// The host's text, kept until the node reads it.
    fn from_host(text: String) -> Self {
        if text.trim().is_empty() {
            return Config::parsed(Value::Null);
        }
        Config {
            text,
            value: std::sync::OnceLock::new(),
        }
    }

    fn value(&self) -> &Value {
        // The host writes this text with a JSON serializer (the WIT contract); were it ever malformed, the node
        // sees no configuration, as for a node whose flow gives none, instead of failing somewhere it cannot report.
        self.value
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }
}

impl Invocation {
    /// An invocation built by hand (tests, or a plugin calling its own node logic).
    pub fn new(
        node_type: impl Into<String>,
        node_id: impl Into<String>,
        config: Value,
        inputs: Value,
    ) -> Self {
        Invocation {
            node_type: node_type.into(),
            node_id: node_id.into(),
            config: Config::parsed(config),
            inputs,
            run_context: None,
            vars: None,
        }
    }

    /// The same invocation with the run's context (tests; the host passes it to nodes that read it).
    pub fn with_run_context(mut self, context: Value) -> Self {
        self.run_context = Some(context);
        self
    }

    /// The same invocation with the run's variables (tests; the host passes them to nodes that read them).
    pub fn with_vars(mut self, vars: Value) -> Self {
        self.vars = Some(vars);
        self
    }

    /// The run's context object (`vars.context`), when the node type reads it and the run has one.
    pub fn run_context(&self) -> Option<&Value> {
        self.run_context.as_ref()
    }

    /// The run's variables (read-only), when the node type reads them.
    pub fn vars(&self) -> Option<&Value> {
        self.vars.as_ref()
    }

    /// Which of the plugin's node types runs.
    pub fn node_type(&self) -> &str {
        &self.node_type
    }

    /// The node's id in its flow.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The node's `data` object from the flow.
    pub fn config(&self) -> &Value {
        self.config.value()
    }

    /// The resolved input pins as a JSON object.
    pub fn inputs(&self) -> &Value {
        &self.inputs
    }

    /// Takes the inputs out (avoids a copy when the node returns them).
    pub fn into_inputs(self) -> Value {
        self.inputs
    }

    /// One input pin; `None` when absent or null.
    pub fn input(&self, name: &str) -> Option<&Value> {
        self.inputs.get(name).filter(|v| !v.is_null())
    }

    /// A required string input.
    pub fn input_str(&self, name: &str) -> Result<&str, Error> {
        match self.input(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(wrong_type(name, "a string", other)),
            None => Err(missing(name)),
        }
    }

    /// An optional string input; a present non-string is an error.
    pub fn input_str_opt(&self, name: &str) -> Result<Option<&str>, Error> {
        match self.input(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", other)),
            None => Ok(None),
        }
    }

    /// A required number input.
    pub fn input_f64(&self, name: &str) -> Result<f64, Error> {
        self.input_f64_opt(name)?.ok_or_else(|| missing(name))
    }

    /// An optional number input; numeric strings are accepted since flows often carry them.
    pub fn input_f64_opt(&self, name: &str) -> Result<Option<f64>, Error> {
        match self.input(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| wrong_type(name, "a number", &Value::Number(n.clone()))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| wrong_type(name, "a number", &Value::String(s.clone()))),
            Some(other) => Err(wrong_type(name, "a number", other)),
        }
    }

    /// An optional integer input; integral floats and numeric strings are accepted.
    pub fn input_i64_opt(&self, name: &str) -> Result<Option<i64>, Error> {
        let Some(v) = self.input(name) else {
            return Ok(None);
        };
        if let Some(i) = v.as_i64() {
            return Ok(Some(i));
        }
        let f = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match f {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            _ => Err(wrong_type(name, "an integer", v)),
        }
    }

    /// A required integer input.
    pub fn input_i64(&self, name: &str) -> Result<i64, Error> {
        self.input_i64_opt(name)?.ok_or_else(|| missing(name))
    }

    /// An optional boolean input; "true"/"false" strings are accepted.
    pub fn input_bool_opt(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.input(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => Err(wrong_type(name, "a boolean", other)),
        }
    }

    /// A boolean input, `default` when absent.
    pub fn input_bool_or(&self, name: &str, default: bool) -> Result<bool, Error> {
        Ok(self.input_bool_opt(name)?.unwrap_or(default))
    }

    /// One configuration value (`data.<name>`); `None` when absent or null.
    pub fn config_value(&self, name: &str) -> Option<&Value> {
        self.config().get(name).filter(|v| !v.is_null())
    }

    /// An optional string from the configuration.
    pub fn config_str(&self, name: &str) -> Option<&str> {
        self.config_value(name).and_then(Value::as_str)
    }
}

fn missing(name: &str) -> Error {
    Error::invalid_input(format!("input '{name}' is required"))
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> Error {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Error::invalid_input(format!("input '{name}' must be {expected}, got {kind}"))
}

/// A change to the run's `context.messages` (WIT `context-edit`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContextEdit {
    /// Messages appended: a turn of a conversation that uses the context.
    Append(Vec<Value>),
    /// The new list: a compaction summary, spans rehydrated, a note kept in context.
    Replace(Vec<Value>),
}

/// What a node produced: its output pins, and what else the run takes from it (WIT `node-result`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeResult {
    /// The output pins.
    pub outputs: Outputs,
    /// The ambient payload (`_last_output`); `None`: a function-like node leaves its outputs, an effect node nothing.
    pub ambient: Option<Value>,
    /// What the run completes with when this node ends it; `None`: the outputs plus `success`.
    pub complete_output: Option<Value>,
    /// The effect payload the `completed` record shows; the outputs are then kept at `_temp.effects.<node>`.
    pub effect_payload: Option<Value>,
    /// A change to the run's `context.messages`.
    pub context_edit: Option<ContextEdit>,
}

impl From<Outputs> for NodeResult {
    fn from(outputs: Outputs) -> Self {
        NodeResult {
            outputs,
            ..Default::default()
        }
    }
}

impl NodeResult {
    /// The same result leaving `ambient` as the ambient payload.
    pub fn with_ambient(mut self, ambient: Value) -> Self {
        self.ambient = Some(ambient);
        self
    }

    /// The same result completing the run with `output` when this node ends it.
    pub fn with_complete_output(mut self, output: Value) -> Self {
        self.complete_output = Some(output);
        self
    }

    /// The same result with the effect payload the `completed` record shows.
    pub fn with_effect_payload(mut self, payload: Value) -> Self {
        self.effect_payload = Some(payload);
        self
    }

    /// The same result changing the run's `context.messages`.
    pub fn with_context_edit(mut self, edit: ContextEdit) -> Self {
        self.context_edit = Some(edit);
        self
    }
}

/// A node plugin: the node types it provides and how to run one node.
pub trait Node {
    /// The node types this plugin provides; called once when the host loads the plugin.
    fn describe() -> Vec<NodeType>;

    /// Runs one node; simple nodes return `Ok(outputs.into())`.
    fn run(inv: Invocation) -> Result<NodeResult, Error>;
}

/// Adapts a [`Node`] to the generated export trait; used by [`export_node!`](crate::export_node).
#[doc(hidden)]
pub struct NodeExport<T>(std::marker::PhantomData<T>);

impl<T: Node> wit::Guest for NodeExport<T> {
    fn describe() -> Vec<wit::NodeType> {
        T::describe().into_iter().map(to_wit_type).collect()
    }

    fn run(
        inv: wit::Invocation,
    ) -> Result<wit::NodeResult, crate::bindings::node::abstractgateway::plugin::types::Error> {
        let config = Config::from_host(inv.config);
        let inputs = if inv.inputs.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            parse_host_json("inputs", &inv.inputs)?
        };
        let optional = |what, text: Option<String>| {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| parse_host_json(what, &t))
                .transpose()
        };
        let mut call = Invocation::new(inv.node_type, inv.node_id, Value::Null, inputs);
        call.config = config;
        call.run_context = optional("run-context", inv.run_context)?;
        call.vars = optional("vars", inv.vars)?;
        Ok(to_wit_result(T::run(call)?))
    }
}

fn to_wit_result(r: NodeResult) -> wit::NodeResult {
    let text = |v: Value| v.to_string();
    wit::NodeResult {
        outputs: Value::Object(r.outputs).to_string(),
        ambient: r.ambient.map(text),
        complete_output: r.complete_output.map(text),
        effect_payload: r.effect_payload.map(text),
        context_edit: r.context_edit.map(|e| match e {
            ContextEdit::Append(list) => wit::ContextEdit::Append(Value::Array(list).to_string()),
            ContextEdit::Replace(list) => wit::ContextEdit::Replace(Value::Array(list).to_string()),
        }),
    }
}

fn to_wit_type(t: NodeType) -> wit::NodeType {
    let pins = |ps: Vec<Pin>| {
        ps.into_iter()
            .map(|p| wit::Pin {
                id: p.id,
                label: p.label,
                pin_type: p.pin_type,
            })
            .collect()
    };
    let mut reads = wit::Reads::empty();
    if t.reads.run_context {
        reads |= wit::Reads::RUN_CONTEXT;
    }
    if t.reads.vars {
        reads |= wit::Reads::VARS;
    }
    let on_input_failure = match t.input_failure() {
        InputFailure::Report => wit::InputFailure::Report,
        InputFailure::FailRun => wit::InputFailure::FailRun,
        InputFailure::StartEmpty => wit::InputFailure::StartEmpty,
    };
    let on_failure = match t.on_failure {
        NodeFailure::FailRun => wit::NodeFailure::FailRun,
        NodeFailure::CompleteRun => wit::NodeFailure::CompleteRun,
    };
    wit::NodeType {
        name: t.name,
        label: t.label,
        description: t.description,
        inputs: pins(t.inputs),
        outputs: pins(t.outputs),
        effect: t.effect,
        reads,
        on_input_failure,
        on_failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_config_text_is_read_on_first_use_and_equals_a_parsed_one() {
        let text = r#"{"model": "m", "_gateway": {"run_id": "r"}, "n": null}"#;
        let mut lazy = Invocation::new("t", "n1", Value::Null, json!({}));
        lazy.config = Config::from_host(text.to_string());
        let eager = Invocation::new("t", "n1", serde_json::from_str(text).unwrap(), json!({}));
        assert!(
            lazy.config.value.get().is_none(),
            "not parsed before it is read"
        );
        assert_eq!(lazy, eager);
        assert_eq!(lazy.config_str("model"), Some("m"));
        assert_eq!(lazy.config_value("n"), None);
        assert_eq!(lazy.config()["_gateway"]["run_id"], "r");
        // No text (or blank) is no configuration, as before.
        for blank in ["", "  "] {
            assert_eq!(Config::from_host(blank.to_string()).value(), &Value::Null);
        }
    }

    #[test]
    fn builder_defaults_follow_the_effect() {
        let f = NodeType::new("f");
        assert_eq!(f.input_failure(), InputFailure::Report);
        assert_eq!(
            (f.reads, f.on_failure),
            (Reads::default(), NodeFailure::FailRun)
        );
        assert_eq!(
            NodeType::new("e").effect("e").input_failure(),
            InputFailure::FailRun
        );
        let agent = NodeType::new("agent")
            .on_input_failure(InputFailure::StartEmpty)
            .effect("agent")
            .reads_run_context();
        assert_eq!(agent.input_failure(), InputFailure::StartEmpty);
        let w = to_wit_type(agent);
        assert_eq!(w.reads, wit::Reads::RUN_CONTEXT);
        assert_eq!(w.on_input_failure, wit::InputFailure::StartEmpty);
        let w = to_wit_type(
            NodeType::new("code")
                .reads_vars()
                .on_failure(NodeFailure::CompleteRun),
        );
        assert_eq!(w.reads, wit::Reads::VARS);
        assert_eq!(w.on_input_failure, wit::InputFailure::Report);
        assert_eq!(w.on_failure, wit::NodeFailure::CompleteRun);
    }

    #[test]
    fn results_travel_as_json_text() {
        let mut outputs = Outputs::new();
        outputs.insert("a".into(), json!(1));
        let w = to_wit_result(outputs.clone().into());
        assert_eq!(w.outputs, r#"{"a":1}"#);
        assert_eq!((w.ambient, w.context_edit), (None, None));
        let w = to_wit_result(
            NodeResult::from(outputs)
                .with_ambient(json!({"b": 2}))
                .with_complete_output(json!({"success": true}))
                .with_effect_payload(json!({"type": "t"}))
                .with_context_edit(ContextEdit::Append(vec![json!({"role": "user"})])),
        );
        assert_eq!(w.ambient.as_deref(), Some(r#"{"b":2}"#));
        assert_eq!(w.complete_output.as_deref(), Some(r#"{"success":true}"#));
        assert_eq!(w.effect_payload.as_deref(), Some(r#"{"type":"t"}"#));
        assert_eq!(
            w.context_edit,
            Some(wit::ContextEdit::Append(r#"[{"role":"user"}]"#.into()))
        );
    }
}
