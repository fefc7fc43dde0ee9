//! Timestamps in the seed's exact wire format (`2026-11-28T12:07:35.617408+00:00`).
//!
//! Waits compare these strings lexicographically, so the width must never vary.

use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

/// Milliseconds since the epoch of an ISO timestamp (what a node's frozen clock reads).
pub fn iso_ms(s: &str) -> Option<u64> {
    u64::try_from(parse_iso(s)?.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Now, formatted as the seed does: UTC, microseconds, `+00:00`.
pub fn now_iso() -> String {
    format_iso(OffsetDateTime::now_utc())
}

/// Formats a UTC instant with fixed-width microseconds and a `+00:00` offset.
pub fn format_iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (year, month, day) = t.to_calendar_date();
    let Ok(year) = u32::try_from(year) else {
        return format_iso_slow(t);
    };
    if year > 9999 {
        return format_iso_slow(t);
    }
    // Every ledger record is stamped: digits written in place cost a tenth of the formatting machinery.
    let (hour, minute, second, micro) = t.to_hms_micro();
    let mut b = *b"0000-00-00T00:00:00.000000+00:00";
    put_digits(&mut b[0..4], year);
    put_digits(&mut b[5..7], u32::from(u8::from(month)));
    put_digits(&mut b[8..10], u32::from(day));
    put_digits(&mut b[11..13], u32::from(hour));
    put_digits(&mut b[14..16], u32::from(minute));
    put_digits(&mut b[17..19], u32::from(second));
    put_digits(&mut b[20..26], micro);
    std::str::from_utf8(&b).map_or_else(|_| format_iso_slow(t), String::from)
}

/// Writes `v`'s last `dst.len()` decimal digits, zero-padded.
fn put_digits(dst: &mut [u8], mut v: u32) {
    for c in dst.iter_mut().rev() {
        // `v % 10` is a single digit.
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The general form, for years outside 0..=9999.
fn format_iso_slow(t: OffsetDateTime) -> String {
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

/// `secs` seconds as a duration, at most `max`; `None` when it is negative or not a number (never a panic,
/// whatever a client, plugin or remote server sent).
pub fn secs_capped(secs: f64, max: std::time::Duration) -> Option<std::time::Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    Some(std::time::Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max)))
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
    fn the_fast_format_matches_the_general_one() {
        let mut t = OffsetDateTime::UNIX_EPOCH;
        // Steps of ~1.3 days plus odd seconds and microseconds, from 1970 to past 2100.
        for _ in 0..40_000 {
            assert_eq!(format_iso(t), format_iso_slow(t));
            t += Duration::seconds(113_777) + Duration::microseconds(654_321);
        }
        for s in [
            "0000-01-01T00:00:00.000000+00:00",
            "9999-12-31T23:59:59.999999+00:00",
            "2024-02-29T23:59:59.000001+00:00",
        ] {
            let t = parse_iso(s).expect("parses");
            assert_eq!(format_iso(t), s);
            assert_eq!(format_iso_slow(t), s);
        }
        let before_zero = OffsetDateTime::UNIX_EPOCH - Duration::days(800_000);
        assert_eq!(format_iso(before_zero), format_iso_slow(before_zero));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_s("15s"), Some(15.0));
        assert_eq!(parse_duration_s("250ms"), Some(0.25));
        assert_eq!(parse_duration_s("2m"), Some(120.0));
        assert_eq!(parse_duration_s("x"), None);
    }
}
