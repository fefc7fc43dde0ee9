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
    /// The effect type recorded in the ledger, if it differs from the name.
    pub effect: Option<String>,
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

    /// Sets the effect type written in the ledger.
    pub fn effect(mut self, effect: impl Into<String>) -> Self {
        self.effect = Some(effect.into());
        self
    }
}

fn pin(id: &str, label: &str, pin_type: &str) -> Pin {
    Pin {
        id: id.to_string(),
        label: label.to_string(),
        pin_type: pin_type.to_string(),
    }
}

/// One node to run: which type, its flow node id, its configuration and resolved inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    node_type: String,
    node_id: String,
    config: Value,
    inputs: Value,
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
            config,
            inputs,
        }
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
        &self.config
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
        self.config.get(name).filter(|v| !v.is_null())
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

/// A node plugin: the node types it provides and how to run one node.
pub trait Node {
    /// The node types this plugin provides; called once when the host loads the plugin.
    fn describe() -> Vec<NodeType>;

    /// Runs one node; returns its output pins.
    fn run(inv: Invocation) -> Result<Outputs, Error>;
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
    ) -> Result<String, crate::bindings::node::abstractgateway::plugin::types::Error> {
        let config = if inv.config.trim().is_empty() {
            Value::Null
        } else {
            parse_host_json("config", &inv.config)?
        };
        let inputs = if inv.inputs.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            parse_host_json("inputs", &inv.inputs)?
        };
        let out = T::run(Invocation::new(inv.node_type, inv.node_id, config, inputs))?;
        Ok(Value::Object(out).to_string())
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
    wit::NodeType {
        name: t.name,
        label: t.label,
        description: t.description,
        inputs: pins(t.inputs),
        outputs: pins(t.outputs),
        effect: t.effect,
    }
}
