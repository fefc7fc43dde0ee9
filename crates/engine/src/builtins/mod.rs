//! The pure VisualFlow node functions (math, strings, data, JSON, variables, literals).
//!
//! The engine evaluates a pure node by resolving its inputs and calling the function
//! [`lookup`] returns for the node type. Every function reproduces the Python reference
//! (`visualflow_compiler/visual/builtins.py` and the pure handlers of `executor.py`),
//! including its quirks: Python `str()` renderings, float results for math, lenient JSON.

mod agent;
mod arrays;
mod data;
#[cfg(test)]
mod fixture_tests;
mod json;
mod literals;
mod logic;
mod math;
pub(crate) mod memact;
pub use pycompat::repr::py_str;
mod string;
mod vars;

use serde_json::{Map, Value};

/// What a builtin may read besides its inputs.
pub struct BuiltinCtx<'a> {
    /// The node's type string (e.g. `concat`).
    pub node_type: &'a str,
    /// The node's id.
    pub node_id: &'a str,
    /// The node's `data` object (literalValue, concatConfig, breakConfig, ...), borrowed from the compiled
    /// flow: a pure node is evaluated at every pull, so its data is never copied.
    pub data: &'a Map<String, Value>,
    /// Declared non-exec input pin ids, in declaration order.
    pub pin_order: &'a [String],
    /// Declared non-exec output pin ids.
    pub output_pins: &'a [String],
    /// Live run vars, read-only.
    pub vars: &'a Map<String, Value>,
}

impl BuiltinCtx<'_> {
    /// `data.literalValue`, when present and not null (the executor only injects non-null ones).
    pub fn literal_value(&self) -> Option<&Value> {
        self.data.get("literalValue").filter(|v| !v.is_null())
    }

    /// A key of the node's `data` object.
    pub fn data_field(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }
}

/// A builtin: resolved inputs in, the Python handler's return value out; `Err` is the Python exception
/// (its class and message: a function-like node reports `str(exc)`, its `message`).
pub type BuiltinFn = fn(&Map<String, Value>, &BuiltinCtx) -> Result<Value, PyException>;

/// The same signature as [`BuiltinFn`] (the name [`lookup_py`] answers with).
pub type PyBuiltinFn = BuiltinFn;

pub use pycompat::PyException;
pub(crate) use pycompat::{MAX_BUILT_TEXT_BYTES, PyResult, check_built, join_checked, too_large};

/// Declares every builtin once and derives [`names`], [`lookup`] and [`lookup_py`] from the list.
macro_rules! registry {
    ($($name:literal => $func:path),* $(,)?) => {
        const NAMES: &[&str] = &[$($name),*];

        fn find(node_type: &str) -> Option<BuiltinFn> {
            match node_type {
                $($name => Some($func as BuiltinFn),)*
                _ => None,
            }
        }
    };
}

registry! {
    // Logic (group B).
    "compare" => logic::compare,
    "and" => logic::and,
    "or" => logic::or,
    "not" => logic::not,
    "coalesce" => logic::coalesce,
    // Variables (group D, pure).
    "get_var" => vars::get_var,
    "get_vars" => vars::get_vars,
    "var_decl" => vars::var_decl,
    "bool_var" => vars::bool_var,
    "get_context" => vars::get_context,
    // Literals (group E).
    "literal_string" => literals::literal,
    "literal_number" => literals::literal,
    "literal_boolean" => literals::literal,
    "literal_json" => literals::literal,
    "literal_array" => literals::literal,
    "json_schema" => literals::literal,
    "tools_allowlist" => literals::tools_allowlist,
    "tool_parameters" => literals::tool_parameters,
    // Math (group F).
    "add" => math::add,
    "subtract" => math::subtract,
    "multiply" => math::multiply,
    "divide" => math::divide,
    "modulo" => math::modulo,
    "power" => math::power,
    "abs" => math::abs,
    "round" => math::round,
    "random_int" => math::random_int,
    "random_float" => math::random_float,
    // Strings (group G).
    "concat" => string::concat,
    "split" => string::split,
    "join" => string::join,
    "format" => string::format,
    "string_template" => string::string_template,
    "uppercase" => string::uppercase,
    "lowercase" => string::lowercase,
    "trim" => string::trim,
    "substring" => string::substring,
    "length" => string::length,
    "is_empty_string" => string::is_empty_string,
    "contains" => string::contains,
    "replace" => string::replace,
    // Objects (group H).
    "get" => data::get,
    "set" => data::set,
    "merge" => data::merge,
    "make_object" => data::make_object,
    "break_object" => data::break_object,
    "edit_json_schema" => data::edit_json_schema,
    "path_mux" => data::path_mux,
    // Arrays (group H).
    "make_array" => arrays::make_array,
    "array_concat" => arrays::array_concat,
    "get_element" => arrays::get_element,
    "get_random_element" => arrays::get_random_element,
    "array_map" => arrays::array_map,
    "array_filter" => arrays::array_filter,
    "array_length" => arrays::array_length,
    "has_tools" => arrays::has_tools,
    "array_append" => arrays::array_append,
    "array_dedup" => arrays::array_dedup,
    // JSON (group H).
    "parse_json" => json::parse_json,
    "stringify_json" => json::stringify_json,
    // Agent/context envelopes (group H).
    "make_context" => agent::make_context,
    "make_meta" => agent::make_meta,
    "make_scratchpad" => agent::make_scratchpad,
    "format_tool_results" => agent::format_tool_results,
    "agent_trace_report" => agent::agent_trace_report,
    "add_message" => agent::add_message,
    "system_datetime" => agent::system_datetime,
}

/// The builtin for a node type; `None` for anything that is not a pure builtin.
pub fn lookup(node_type: &str) -> Option<BuiltinFn> {
    find(node_type)
}

/// [`lookup`] (the error keeps the Python exception class, for `"KeyError: 'x'"` failures).
pub fn lookup_py(node_type: &str) -> Option<PyBuiltinFn> {
    find(node_type)
}

/// Every supported node type.
pub fn names() -> &'static [&'static str] {
    NAMES
}

/// Python's lenient `parse_json` on a text (code fences, embedded JSON, Python literals);
/// `break_object` and hosts use it on JSON-ish LLM output.
pub fn parse_jsonish(text: &str) -> Result<Value, PyException> {
    json::parse_text(text, true)
}

/// Input `key`, or `default` when the key is absent (Python `inputs.get(key, default)`).
pub(crate) fn input_or<'a>(
    inputs: &'a Map<String, Value>,
    key: &str,
    default: &'a Value,
) -> &'a Value {
    inputs.get(key).unwrap_or(default)
}

/// Input `key`, or JSON null when absent (Python `inputs.get(key)`).
pub(crate) fn input<'a>(inputs: &'a Map<String, Value>, key: &str) -> &'a Value {
    inputs.get(key).unwrap_or(&Value::Null)
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// Owns everything a [`BuiltinCtx`] borrows, for tests.
    pub struct CtxParts {
        pub node_type: String,
        pub data: Map<String, Value>,
        pub pin_order: Vec<String>,
        pub output_pins: Vec<String>,
        pub vars: Map<String, Value>,
    }

    impl CtxParts {
        /// A context for `node_type` with an empty `data` object.
        pub fn new(node_type: &str) -> Self {
            Self {
                node_type: node_type.into(),
                data: Map::new(),
                pin_order: Vec::new(),
                output_pins: Vec::new(),
                vars: Map::new(),
            }
        }

        /// Sets the node's `data`, deriving pin orders from its `inputs`/`outputs` pin lists.
        pub fn with_data(mut self, data: Value) -> Self {
            self.pin_order = pins(&data, "inputs");
            self.output_pins = pins(&data, "outputs");
            if let Value::Object(m) = data {
                self.data = m;
            }
            self
        }

        /// Sets the run vars.
        pub fn with_vars(mut self, vars: Value) -> Self {
            if let Value::Object(m) = vars {
                self.vars = m;
            }
            self
        }

        /// Borrows the parts as a context.
        pub fn ctx(&self) -> BuiltinCtx<'_> {
            BuiltinCtx {
                node_type: &self.node_type,
                node_id: "node-test",
                data: &self.data,
                pin_order: &self.pin_order,
                output_pins: &self.output_pins,
                vars: &self.vars,
            }
        }

        /// Runs the builtin registered for the node type on `inputs` (a JSON object).
        pub fn run(&self, inputs: Value) -> Result<Value, PyException> {
            let f = lookup_py(&self.node_type).expect("registered builtin");
            let map = match inputs {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            f(&map, &self.ctx())
        }
    }

    fn pins(data: &Value, key: &str) -> Vec<String> {
        data.get(key)
            .and_then(Value::as_array)
            .map(|pins| {
                pins.iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) != Some("execution"))
                    .filter_map(|p| p.get("id").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs `node_type` with empty data on `inputs`.
    pub fn run(node_type: &str, inputs: Value) -> Result<Value, PyException> {
        CtxParts::new(node_type).run(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves_both_ways() {
        for name in names() {
            assert!(lookup(name).is_some(), "{name}");
            assert!(lookup_py(name).is_some(), "{name}");
        }
        assert!(lookup("llm_call").is_none());
        assert!(lookup("on_flow_start").is_none());
        let mut sorted = names().to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names().len(), "duplicate registry entry");
    }

    #[test]
    fn string_error_is_the_python_message() {
        let f = lookup("divide").expect("divide");
        let parts = testutil::CtxParts::new("divide");
        let mut inputs = Map::new();
        inputs.insert("a".into(), Value::from(1));
        inputs.insert("b".into(), Value::from(0));
        assert_eq!(
            f(&inputs, &parts.ctx()).map_err(|e| e.message),
            Err("Division by zero".to_string())
        );
        let e = lookup_py("divide").expect("divide")(&inputs, &parts.ctx()).unwrap_err();
        assert_eq!(e.to_string(), "ValueError: Division by zero");
    }
}
