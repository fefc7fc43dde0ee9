//! Example node plugin with two node types, `text_stats` and `slugify`: the model for plugin authors.

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeResult, NodeType, export_node, outputs,
};

/// The plugin: one type implementing `Node` serves every node type it describes.
pub struct TextTools;

impl Node for TextTools {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("text_stats")
                .label("Text stats")
                .description("Counts the words, characters and lines of a text.")
                .input("text", "string")
                .output("words", "number")
                .output("chars", "number")
                .output("lines", "number"),
            NodeType::new("slugify")
                .label("Slugify")
                .description("Turns a text into a lowercase URL slug (ASCII letters and digits joined by a separator).")
                .input("text", "string")
                .input_labeled("separator", "Separator (default -)", "string")
                .input_labeled("max_length", "Max length (0 = none)", "number")
                .output("slug", "string"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        match inv.node_type() {
            "text_stats" => {
                let (words, chars, lines) = text_stats(inv.input_str("text")?);
                Ok(outputs! { "words" => words, "chars" => chars, "lines" => lines }.into())
            }
            "slugify" => {
                let sep = inv.input_str_opt("separator")?.unwrap_or("-");
                let max = inv.input_i64_opt("max_length")?.unwrap_or(0);
                let max = usize::try_from(max)
                    .map_err(|_| Error::invalid_input("max_length must be >= 0"))?;
                Ok(outputs! { "slug" => slugify(inv.input_str("text")?, sep, max) }.into())
            }
            other => Err(Error::invalid_input(format!(
                "text-tools has no node type '{other}'"
            ))),
        }
    }
}

export_node!(TextTools);

/// Words (whitespace-separated), characters (Unicode scalar values) and lines (0 for an empty text).
pub fn text_stats(text: &str) -> (usize, usize, usize) {
    (
        text.split_whitespace().count(),
        text.chars().count(),
        text.lines().count(),
    )
}

/// Lowercase ASCII slug: common accented Latin letters folded, other runs of non-alphanumerics
/// become one `sep`; cut to `max` bytes on a word boundary when `max > 0`.
pub fn slugify(text: &str, sep: &str, max: usize) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded = fold(c);
        if folded.is_empty() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push_str(folded);
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut slug = String::new();
    for w in words {
        let extra = if slug.is_empty() {
            w.len()
        } else {
            sep.len() + w.len()
        };
        if max > 0 && slug.len() + extra > max {
            if slug.is_empty() {
                slug.push_str(&w[..max.min(w.len())]);
            }
            break;
        }
        if !slug.is_empty() {
            slug.push_str(sep);
        }
        slug.push_str(&w);
    }
    slug
}

/// The ASCII spelling of a lowercase char inside a slug; "" for a separator.
fn fold(c: char) -> &'static str {
    const ASCII: [&str; 36] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    ];
    match c {
        'a'..='z' => ASCII[c as usize - 'a' as usize],
        '0'..='9' => ASCII[26 + c as usize - '0' as usize],
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'æ' => "ae",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
        'œ' => "oe",
        'ß' => "ss",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abstractgateway_plugin_sdk::json;

    #[test]
    fn stats_count_words_chars_lines() {
        assert_eq!(text_stats(""), (0, 0, 0));
        assert_eq!(text_stats("héllo  world\nbye"), (3, 16, 2));
    }

    #[test]
    fn slugs_fold_and_cut() {
        assert_eq!(
            slugify("  Hello, Wörld! Ça va? ", "-", 0),
            "hello-world-ca-va"
        );
        assert_eq!(slugify("Hello big world", "_", 9), "hello_big");
        assert_eq!(slugify("Supercalifragilistic", "-", 5), "super");
        assert_eq!(slugify("!!!", "-", 0), "");
    }

    #[test]
    fn run_dispatches_and_validates() {
        let out = TextTools::run(Invocation::new(
            "text_stats",
            "n1",
            json!({}),
            json!({"text": "a b\nc"}),
        ))
        .unwrap();
        assert_eq!(
            json!(out.outputs),
            json!({"words": 3, "chars": 5, "lines": 2})
        );
        let err = TextTools::run(Invocation::new(
            "slugify",
            "n2",
            json!({}),
            json!({"text": 5}),
        ))
        .unwrap_err();
        assert_eq!(err.message, "input 'text' must be a string, got a number");
        let out = TextTools::run(Invocation::new(
            "slugify",
            "n3",
            json!({}),
            json!({"text": "A B", "max_length": "0"}),
        ))
        .unwrap();
        assert_eq!(json!(out.outputs), json!({"slug": "a-b"}));
    }
}
