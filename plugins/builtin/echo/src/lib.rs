//! `plugin_echo`: returns its inputs unchanged (shipped built-in; also the cheapest call for benchmarks).

use abstractgateway_plugin_sdk::{
    Error, Invocation, Map, Node, NodeResult, NodeType, Outputs, Value, export_node,
};

/// The plugin.
pub struct Echo;

impl Node for Echo {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("plugin_echo")
                .label("Echo (plugin)")
                .description("Returns its inputs as its outputs.")
                .input("value", "any")
                .output("value", "any"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        Ok(echo(inv.into_inputs()).into())
    }
}

export_node!(Echo);

/// The inputs object itself; a non-object (a host that sends a bare value) comes back as `{value}`.
pub fn echo(inputs: Value) -> Outputs {
    match inputs {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            let mut map = Map::new();
            map.insert("value".to_string(), other);
            map
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abstractgateway_plugin_sdk::json;

    #[test]
    fn returns_inputs_in_order() {
        let inputs = json!({"z": 1, "a": [true, null], "m": {"k": "v"}});
        let out = Echo::run(Invocation::new(
            "plugin_echo",
            "e",
            json!({}),
            inputs.clone(),
        ))
        .unwrap();
        assert_eq!(Value::Object(out.outputs), inputs);
        assert_eq!(Value::Object(echo(json!(3))), json!({"value": 3}));
    }
}
