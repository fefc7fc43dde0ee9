//! Bundle refs (`id[@ver][.flow]`) and the "latest version" rule (§1.3).

use std::cmp::Ordering;

/// Splits `id`, `id@ver`, `id.flow` or `id@ver.flow` into `(id, Some(ver))`; blanks give `("", None)`.
pub fn split_bundle_ref(raw: &str) -> (String, Option<String>) {
    let mut s = raw.trim();
    if !s.contains(['/', '\\'])
        && s.len() >= 5
        && s.is_char_boundary(s.len() - 5)
        && s[s.len() - 5..].eq_ignore_ascii_case(".flow")
    {
        s = &s[..s.len() - 5];
    }
    match s.split_once('@') {
        None => (s.to_string(), None),
        Some((id, ver)) => {
            let (id, ver) = (id.trim(), ver.trim());
            if id.is_empty() {
                (String::new(), None)
            } else if ver.is_empty() {
                (id.to_string(), None)
            } else {
                (id.to_string(), Some(ver.to_string()))
            }
        }
    }
}

/// The parts of a dotted-numeric version (`1`, `1.2`, `1.2.3`), padded to 3; `None` otherwise.
fn dotted_numeric(version: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = version.trim().split('.').map(str::trim).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut parts: Vec<&str> = parts
        .into_iter()
        .map(|p| {
            let t = p.trim_start_matches('0');
            if t.is_empty() { "0" } else { t }
        })
        .collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    Some(parts)
}

/// Numeric comparison of digit strings without overflow (leading zeros already removed).
fn cmp_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_dotted(a: &[&str], b: &[&str]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or("0"),
            b.get(i).copied().unwrap_or("0"),
        );
        match cmp_digits(x, y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// Picks the latest of `(version, created_at)` pairs.
///
/// If every version is dotted numeric the numeric maximum wins (ties: larger string); otherwise the
/// maximum of `(created_at, version)` compared as strings.
pub fn pick_latest<'a, I>(candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let items: Vec<(&str, &str)> = candidates.into_iter().collect();
    let numeric: Option<Vec<(Vec<&str>, &str)>> = items
        .iter()
        .map(|(v, _)| dotted_numeric(v).map(|p| (p, *v)))
        .collect();
    match numeric {
        Some(nums) => nums
            .into_iter()
            .max_by(|(pa, va), (pb, vb)| cmp_dotted(pa, pb).then_with(|| va.cmp(vb)))
            .map(|(_, v)| v),
        None => items
            .into_iter()
            .max_by(|(va, ca), (vb, cb)| ca.cmp(cb).then_with(|| va.cmp(vb)))
            .map(|(v, _)| v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_refs() {
        assert_eq!(
            split_bundle_ref("basic-agent"),
            ("basic-agent".into(), None)
        );
        assert_eq!(
            split_bundle_ref(" basic-agent@0.0.1 "),
            ("basic-agent".into(), Some("0.0.1".into()))
        );
        assert_eq!(
            split_bundle_ref("basic-agent.flow"),
            ("basic-agent".into(), None)
        );
        assert_eq!(
            split_bundle_ref("basic-agent@0.0.1.FLOW"),
            ("basic-agent".into(), Some("0.0.1".into()))
        );
        assert_eq!(
            split_bundle_ref("Untitled-Flow@draft.7dc05dbc-58d5-4175-b58f-3531f5548246.flow"),
            (
                "Untitled-Flow".into(),
                Some("draft.7dc05dbc-58d5-4175-b58f-3531f5548246".into())
            )
        );
        assert_eq!(split_bundle_ref("@1.0"), (String::new(), None));
        assert_eq!(split_bundle_ref("x@"), ("x".into(), None));
        assert_eq!(split_bundle_ref("dir/x.flow"), ("dir/x.flow".into(), None));
        assert_eq!(split_bundle_ref(""), (String::new(), None));
    }

    #[test]
    fn latest_by_semver_when_all_numeric() {
        let v = [("0.0.9", "z"), ("0.0.10", "a"), ("0.1", "b")];
        assert_eq!(pick_latest(v), Some("0.1"));
        let v = [("1", ""), ("0.9.9", "")];
        assert_eq!(pick_latest(v), Some("1"));
        let v = [("99999999999999999999999.0", ""), ("2.0", "")];
        assert_eq!(pick_latest(v), Some("99999999999999999999999.0"));
        assert_eq!(pick_latest([("1.0", ""), ("1.0.0", "")]), Some("1.0.0"));
        assert_eq!(pick_latest(Vec::<(&str, &str)>::new()), None);
    }

    #[test]
    fn latest_by_created_at_otherwise() {
        let v = [
            ("0.0.1", "2026-01-02T00:00:00+00:00"),
            ("dev", "2026-01-01T00:00:00+00:00"),
            ("draft.7dc05dbc", "2026-01-03T00:00:00+00:00"),
        ];
        assert_eq!(pick_latest(v), Some("draft.7dc05dbc"));
        assert_eq!(pick_latest([("a", "t"), ("b", "t")]), Some("b"));
        assert_eq!(pick_latest([("1.x", ""), ("1.0", "")]), Some("1.x"));
    }
}
