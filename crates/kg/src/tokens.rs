//! The seed's fast token estimate (AbstractCore's `TokenUtils.estimate_tokens`): characters per token by the
//! detected kind of text, adjusted by model family and by the share of blanks, punctuation and digits. Active
//! memory is packed against a token budget with it, so the same budget keeps the same lines as on the seed.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Natural,
    Code,
    Json,
    Xml,
    Markdown,
    Mixed,
}

fn all(patterns: &[&str]) -> Vec<Regex> {
    patterns.iter().filter_map(|p| Regex::new(p).ok()).collect()
}

static MARKDOWN: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    all(&[
        r"(?m)^#{1,6}\s",
        r"(?m)^\*\*.*\*\*",
        r"(?m)^\*.*\*",
        r"(?m)^\[.*\]\(.*\)",
        r"(?m)^```",
        r"(?m)^\|.*\|",
    ])
});
static CODE: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    all(&[
        r"\bdef\s+\w+\s*\(",
        r"\bfunction\s+\w+\s*\(",
        r"\bclass\s+\w+\s*[{:]",
        r"\bimport\s+\w+",
        r"\bfrom\s+\w+\s+import",
        r"[{}\[\]();]",
    ])
});
static NATURAL: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    all(&[
        r"(?i)\b(the|and|or|but|with|for|to|of|in|on|at)\b",
        r"(?i)[.!?]\s+[A-Z]",
    ])
});

fn kind(text: &str) -> Kind {
    let sample: String = text.chars().take(1000).collect();
    let trimmed = sample.trim();
    if trimmed.starts_with(['{', '[']) {
        let probe: String = sample.chars().take(500).collect();
        if serde_json::from_str::<serde_json::Value>(probe.trim()).is_ok() {
            return Kind::Json;
        }
    }
    if trimmed.starts_with('<') && sample.contains('>') {
        return Kind::Xml;
    }
    if MARKDOWN.iter().any(|r| r.is_match(&sample)) {
        return Kind::Markdown;
    }
    let code = CODE.iter().filter(|r| r.is_match(&sample)).count();
    if code >= 3 {
        return Kind::Code;
    }
    let natural = NATURAL.iter().filter(|r| r.is_match(&sample)).count();
    if code >= 1 && natural >= 2 {
        return Kind::Mixed;
    }
    Kind::Natural
}

fn model_factor(model: &str) -> f64 {
    let m = model.to_lowercase();
    let has = |xs: &[&str]| xs.iter().any(|x| m.contains(x));
    if has(&["gpt", "openai"]) {
        1.0
    } else if has(&["claude", "anthropic"]) {
        1.05
    } else if has(&["gemini", "google"]) {
        0.95
    } else if has(&["llama", "meta"]) {
        1.1
    } else if m.contains("mistral") {
        1.05
    } else if m.contains("qwen") {
        1.15
    } else {
        1.2
    }
}

/// Estimated tokens of `text` (0 for an empty text, at least 1 otherwise).
pub fn estimate(text: &str, model: Option<&str>) -> usize {
    if text.is_empty() {
        return 0;
    }
    let kind = kind(text);
    let per_token = match kind {
        Kind::Natural => 4.0,
        Kind::Code => 3.5,
        Kind::Json => 3.0,
        Kind::Xml => 3.2,
        Kind::Markdown => 3.8,
        Kind::Mixed => 3.7,
    };
    let model = model.filter(|m| !m.is_empty()).map_or(1.0, model_factor);
    let chars = text.chars().count() as f64;
    let base = chars / (per_token * model);
    let (mut blank, mut punct, mut digit) = (0usize, 0usize, 0usize);
    for c in text.chars() {
        if c.is_whitespace() {
            blank += 1;
        } else if !c.is_alphanumeric() {
            punct += 1;
        }
        if c.is_numeric() {
            digit += 1;
        }
    }
    let (blank, punct, digit) = (
        blank as f64 / chars,
        punct as f64 / chars,
        digit as f64 / chars,
    );
    let mut adjust = 1.0;
    if blank > 0.25 {
        adjust *= 0.85;
    } else if blank > 0.15 {
        adjust *= 0.92;
    }
    if punct > 0.15 {
        adjust *= 1.1;
    } else if punct > 0.08 {
        adjust *= 1.05;
    }
    if digit > 0.2 {
        adjust *= 1.08;
    }
    match kind {
        Kind::Json if punct > 0.2 => adjust *= 1.15,
        Kind::Code => adjust *= 0.95,
        Kind::Xml => adjust *= 1.1,
        _ => {}
    }
    ((base * adjust).round_ties_even() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_seed_estimates() {
        // Values computed with the seed's TokenUtils.estimate_tokens.
        assert_eq!(estimate("", None), 0);
        assert_eq!(estimate("hello world", None), 3);
        assert_eq!(
            estimate(
                "## KG ACTIVE MEMORY\n(scope=session; order=observed_at-desc; budget=200 max_input_tokens)\n",
                None
            ),
            25
        );
        assert_eq!(
            estimate(
                "\n- [2026-01-01T00:00:00+00:00] ex:alice —schema:name→ alice (span:sp1)",
                None
            ),
            21
        );
        assert_eq!(
            estimate(
                "The cat sat on the mat. And then (it) left; ok",
                Some("qwen3")
            ),
            10
        );
        assert_eq!(estimate("{\"a\": [1, 2, 3]}", Some("gpt-4o")), 6);
    }
}
