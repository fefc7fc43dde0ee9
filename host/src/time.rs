//! Timestamps in the seed's exact wire format (`2026-11-28T12:07:35.617408+00:00`).
//!
//! Waits compare these strings lexicographically, so the width must never vary.

use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

/// Now, formatted as the seed does: UTC, microseconds, `+00:00`.
pub fn now_iso() -> String {
    format_iso(OffsetDateTime::now_utc())
}

/// Formats a UTC instant with fixed-width microseconds and a `+00:00` offset.
pub fn format_iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Parses an ISO-8601 / RFC 3339 timestamp; a missing offset is taken as UTC.
pub fn parse_iso(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.to_offset(time::UtcOffset::UTC));
    }
    // Python's isoformat may omit the offset or use a space separator.
    let fixed = s.replace(' ', "T");
    let with_z = if fixed.len() >= 19 && !fixed.contains('+') && !fixed.ends_with('Z') {
        format!("{fixed}Z")
    } else {
        fixed
    };
    OffsetDateTime::parse(&with_z, &Rfc3339)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC))
}

/// Normalises any accepted timestamp to the canonical wire format.
pub fn normalize_iso(s: &str) -> Option<String> {
    parse_iso(s).map(format_iso)
}

/// `now + seconds` in the wire format.
pub fn iso_after(seconds: f64) -> String {
    let micros = (seconds * 1_000_000.0).round() as i64;
    format_iso(OffsetDateTime::now_utc() + Duration::microseconds(micros))
}

/// Parses a relative duration such as `15s`, `0.5m`, `250ms`, `1h`, `2d` into seconds.
pub fn parse_duration_s(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = s.strip_suffix('d') {
        (n, 86400.0)
    } else {
        (s.as_str(), 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * mult)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_format_round_trips() {
        let s = "2026-11-28T12:07:35.000001+00:00";
        assert_eq!(normalize_iso(s).as_deref(), Some(s));
        assert_eq!(now_iso().len(), s.len());
        assert_eq!(
            normalize_iso("2026-11-28T12:07:35Z").as_deref(),
            Some("2026-11-28T12:07:35.000000+00:00")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_s("15s"), Some(15.0));
        assert_eq!(parse_duration_s("250ms"), Some(0.25));
        assert_eq!(parse_duration_s("2m"), Some(120.0));
        assert_eq!(parse_duration_s("x"), None);
    }
}
