//! Case-insensitive glob patterns as the seed's file tools take them: `*`, `?`, and `|` between alternatives.

/// A compiled pattern (`*.rs|*.toml`).
#[derive(Debug, Clone)]
pub struct Glob {
    alternatives: Vec<Vec<char>>,
}

impl Glob {
    /// Parses `pattern`; an empty pattern matches everything.
    pub fn new(pattern: &str) -> Glob {
        let alternatives: Vec<Vec<char>> = pattern
            .split('|')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.to_lowercase().chars().collect())
            .collect();
        Glob { alternatives }
    }

    /// Whether `name` (a file name, or a relative path when the pattern has a `/`) matches.
    pub fn matches(&self, name: &str, rel_path: &str) -> bool {
        if self.alternatives.is_empty() {
            return true;
        }
        self.alternatives.iter().any(|alt| {
            let subject = if alt.contains(&'/') { rel_path } else { name };
            let s: Vec<char> = subject.to_lowercase().chars().collect();
            wildcard(alt, &s)
        })
    }
}

/// Iterative wildcard matching with single-star backtracking (linear in practice, no recursion).
fn wildcard(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn stars_questions_alternatives_and_case() {
        let g = Glob::new("*.RS|Cargo.???l");
        assert!(g.matches("main.rs", "src/main.rs"));
        assert!(g.matches("cargo.toml", "cargo.toml"));
        assert!(!g.matches("main.rsx", "main.rsx"));
        assert!(Glob::new("*").matches("x", "x"));
        assert!(Glob::new("src/*.rs").matches("a.rs", "src/a.rs"));
        assert!(!Glob::new("src/*.rs").matches("a.rs", "lib/a.rs"));
        assert!(Glob::new("a*b*c").matches("aXXbYYc", ""));
        assert!(!Glob::new("a*b*c").matches("aXXbYY", ""));
    }
}
