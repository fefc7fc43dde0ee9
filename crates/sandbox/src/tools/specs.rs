//! The built-in tools' specs: the seed's names, descriptions and arguments, as JSON schemas.

use serde_json::{Map, Value, json};

use crate::plugins::bindings::tools::ToolInfo;

/// One argument: name, JSON type, default (`Null` = none) and an optional description.
type Arg = (&'static str, &'static str, Value, Option<&'static str>);

fn schema(args: &[Arg], required: &[&str]) -> String {
    let mut props = Map::new();
    for (name, ty, default, description) in args {
        let mut p = Map::new();
        p.insert("type".into(), json!(ty));
        if !default.is_null() {
            p.insert("default".into(), default.clone());
        }
        if let Some(d) = description {
            p.insert("description".into(), json!(d));
        }
        props.insert((*name).into(), Value::Object(p));
    }
    json!({"type": "object", "properties": props, "required": required}).to_string()
}

fn tool(name: &str, description: &str, args: &[Arg], required: &[&str]) -> ToolInfo {
    ToolInfo {
        name: name.into(),
        description: description.into(),
        parameters: schema(args, required),
    }
}

/// The specs of every built-in tool, in the seed's order.
pub fn builtin_specs() -> Vec<ToolInfo> {
    vec![
        tool(
            "list_files",
            "List files/directories by name/path using glob patterns (case-insensitive). Does NOT search file contents; head_limit defaults to 10 results.",
            &[
                ("directory_path", "string", json!("."), None),
                ("pattern", "string", json!("*"), None),
                ("recursive", "boolean", json!(false), None),
                ("include_hidden", "boolean", json!(false), None),
                ("head_limit", "integer", json!(10), None),
            ],
            &[],
        ),
        tool(
            "search_files",
            "Search inside file contents for a regex pattern (case-insensitive by default) and return matching lines with line numbers; supports context_lines and files_with_matches/count output modes.",
            &[
                ("pattern", "string", Value::Null, None),
                ("path", "string", json!("."), None),
                ("file_pattern", "string", json!("*"), None),
                ("head_limit", "integer", json!(10), None),
                ("offset", "integer", json!(0), None),
                ("max_hits", "integer", json!(8), None),
                ("multiline", "boolean", json!(false), None),
                ("include_hidden", "boolean", json!(false), None),
                ("output_mode", "string", json!("content"), None),
                ("context_lines", "integer", json!(0), None),
                ("case_sensitive", "boolean", json!(false), None),
                ("ignore_dirs", "string", Value::Null, None),
            ],
            &["pattern"],
        ),
        tool(
            "read_file",
            "Read a text file (line-numbered). Oversized reads return a labeled PARTIAL chunk plus the exact continuation call (start_char).",
            &[
                ("file_path", "string", Value::Null, None),
                ("start_line", "integer", json!(1), None),
                ("end_line", "integer", Value::Null, None),
                ("start_char", "integer", Value::Null, None),
            ],
            &["file_path"],
        ),
        tool(
            "write_file",
            "Write full file content (create/overwrite/append). WARNING: mode='w' overwrites the entire file; for small edits, use edit_file().",
            &[
                ("file_path", "string", Value::Null, None),
                ("content", "string", Value::Null, None),
                ("mode", "string", json!("w"), None),
            ],
            &["content", "file_path"],
        ),
        tool(
            "fetch_url",
            "Fetch a URL and parse common content types (HTML/JSON/text); supports previews and basic metadata.",
            &[
                ("url", "string", Value::Null, None),
                ("method", "string", json!("GET"), None),
                ("headers", "object", Value::Null, None),
                ("data", "string", Value::Null, None),
                ("timeout", "integer", json!(45), None),
                ("include_binary_preview", "boolean", json!(false), None),
                ("render_js", "string", json!("auto"), None),
                ("keep_links", "boolean", json!(true), None),
                (
                    "user_agent",
                    "string",
                    json!("AbstractCore-FetchTool/1.0 (+https://github.com/lpalbou/abstractcore)"),
                    None,
                ),
                ("include_full_content", "boolean", json!(true), None),
            ],
            &["url"],
        ),
    ]
}
