//! Example tool plugin (`tool-plugin` world): tools that agents and `tool_calls` nodes may call.

use abstractgateway_plugin_sdk::{Error, Tool, ToolSpec, Value, export_tool, json};

/// The plugin.
pub struct TextToolProvider;

impl Tool for TextToolProvider {
    fn describe() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "count_words",
                "Counts the words of a text.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            ToolSpec::new(
                "reverse_words",
                "Reverses the order of the words of a text.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
        ]
    }

    fn call(name: &str, arguments: Value) -> Result<Value, Error> {
        let text = arguments
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_input("argument 'text' (a string) is required"))?;
        match name {
            "count_words" => Ok(json!({"words": text.split_whitespace().count()})),
            "reverse_words" => {
                let words: Vec<&str> = text.split_whitespace().rev().collect();
                Ok(json!({"text": words.join(" ")}))
            }
            other => Err(Error::not_found(format!("no tool '{other}'"))),
        }
    }
}

export_tool!(TextToolProvider);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_answer_and_validate() {
        let r = TextToolProvider::call("reverse_words", json!({"text": "a b  c"})).unwrap();
        assert_eq!(r, json!({"text": "c b a"}));
        let e = TextToolProvider::call("count_words", json!({})).unwrap_err();
        assert_eq!(e.message, "argument 'text' (a string) is required");
        assert_eq!(
            TextToolProvider::call("x", json!({"text": ""}))
                .unwrap_err()
                .code,
            abstractgateway_plugin_sdk::ErrorCode::NotFound
        );
    }
}
