//! `memory_query` ("Recall"): metadata-first recall over the span indexes of the run, its session and the
//! global memory (tags, authors, locations, time range, keyword), rendered with provenance.

use abstractgateway_plugin_sdk::{Error, Invocation, Map, Outputs, Value, json, outputs};

use crate::host::Host;
use crate::recall;
use crate::store::{self, RunIds, SpanEntry};
use crate::util::{int_of, text_of, truthy};

/// A required tag: key → accepted values (lower-cased).
type Required = Vec<(String, Vec<String>)>;

/// What one query selects by.
struct Filter {
    range: Option<(Option<i128>, Option<i128>)>,
    tags: Required,
    any: bool,
    authors: Vec<String>,
    locations: Vec<String>,
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    let items: Vec<&Value> = match v {
        Some(s @ Value::String(_)) => vec![s],
        Some(Value::Array(a)) => a.iter().collect(),
        _ => vec![],
    };
    let mut out: Vec<String> = Vec::new();
    for s in items.into_iter().filter_map(Value::as_str) {
        let s = s.trim().to_string();
        if !s.is_empty() && !out.iter().any(|o| o.to_lowercase() == s.to_lowercase()) {
            out.push(s);
        }
    }
    out
}

/// Microseconds since the epoch of an ISO-8601 timestamp (`Z` or `±HH:MM`; naive means UTC).
pub fn parse_iso(ts: &str) -> Option<i128> {
    let t = ts.trim();
    let t = t
        .strip_suffix('Z')
        .map(|s| format!("{s}+00:00"))
        .unwrap_or_else(|| t.to_string());
    let (date, rest) = match t.split_once(['T', ' ']) {
        Some((d, r)) => (d, r),
        None => (t.as_str(), ""),
    };
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (clock, offset) = match rest.find(['+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let mut secs_of_day: i128 = 0;
    let mut micros: i128 = 0;
    if !clock.is_empty() {
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut p = hms.split(':');
        let h: i128 = p.next()?.parse().ok()?;
        let mi: i128 = p.next().map(str::parse).transpose().ok()?.unwrap_or(0);
        let s: i128 = p.next().map(str::parse).transpose().ok()?.unwrap_or(0);
        secs_of_day = h * 3600 + mi * 60 + s;
        if !frac.is_empty() {
            let digits: String = frac.chars().take(6).collect();
            micros = format!("{digits:0<6}").parse().ok()?;
        }
    }
    let off: i128 = match offset {
        None => 0,
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (hh, mm) = o[1..].split_once(':').unwrap_or((&o[1..], "0"));
            sign * (hh.parse::<i128>().ok()? * 3600 + mm.parse::<i128>().ok()? * 60)
        }
    };
    // Days from civil (Howard Hinnant).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe - 719_468) as i128;
    Some(((days * 86_400 + secs_of_day - off) * 1_000_000) + micros)
}

fn tags_match(e: &SpanEntry, required: &Required, any: bool) -> bool {
    if required.is_empty() {
        return true;
    }
    let norm = |s: &str| s.trim().to_lowercase();
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: &str| {
        let (k, v) = (norm(k), norm(v));
        if !k.is_empty() && !v.is_empty() && !tags.iter().any(|(x, _)| *x == k) {
            tags.push((k, v));
        }
    };
    for (k, v) in &e.artifact_tags {
        if let Value::String(v) = v {
            add(k, v);
        }
    }
    if let Some(Value::Object(t)) = e.span.get("tags") {
        for (k, v) in t {
            if let Value::String(v) = v {
                add(k, v);
            }
        }
    }
    for k in ["kind", "compression_mode", "focus"] {
        if let Some(Value::String(v)) = e.span.get(k) {
            add(k, v);
        }
    }
    let hit = |(k, allowed): &(String, Vec<String>)| {
        tags.iter()
            .find(|(x, _)| x == k)
            .is_some_and(|(_, v)| allowed.contains(v))
    };
    if any {
        required.iter().any(hit)
    } else {
        required.iter().all(hit)
    }
}

fn haystack(e: &SpanEntry, summary: Option<&str>, note: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(summary.map(String::from));
    parts.extend(note.map(String::from));
    for k in [
        "kind",
        "compression_mode",
        "focus",
        "from_timestamp",
        "to_timestamp",
        "created_by",
        "location",
    ] {
        if let Some(Value::String(v)) = e.span.get(k)
            && !v.is_empty()
        {
            parts.push(v.clone());
        }
    }
    if let Some(Value::Object(t)) = e.span.get("tags") {
        for (k, v) in t {
            if let Value::String(v) = v
                && !v.is_empty()
            {
                parts.push(k.clone());
                parts.push(v.clone());
            }
        }
    }
    parts.push("application/json".into());
    for (k, v) in &e.artifact_tags {
        parts.push(k.clone());
        parts.push(text_of(Some(v)));
    }
    parts.join(" ").to_lowercase()
}

/// The seed's `filter_spans_from_run` over one owner's spans.
fn filter<'a>(
    h: &mut dyn Host,
    spans: &'a [SpanEntry],
    f: &Filter,
    summaries: &Map<String, Value>,
    query: Option<&str>,
    limit: usize,
) -> Result<Vec<&'a SpanEntry>, Error> {
    let mut notes: Map<String, Value> = Map::new();
    if let Some(_q) = query {
        for e in spans.iter().filter(|e| e.str("kind") == "memory_note") {
            let Some(p) = store::payload(h, e.id())? else {
                continue;
            };
            let mut parts: Vec<String> = Vec::new();
            if let Some(Value::String(n)) = p.get("note")
                && !n.trim().is_empty()
            {
                parts.push(n.trim().to_string());
            }
            if let Some(Value::Array(sids)) = p.get("sources").and_then(|s| s.get("span_ids")) {
                for sid in sids.iter().filter_map(Value::as_str) {
                    if let Some(Value::String(s)) = summaries.get(sid.trim())
                        && !s.trim().is_empty()
                    {
                        parts.push(s.trim().to_string());
                    }
                }
            }
            if !parts.is_empty() {
                notes.insert(e.id().to_string(), json!(parts.join("\n").trim()));
            }
        }
    }
    let mut out = Vec::new();
    for e in spans {
        if e.id().is_empty() {
            continue;
        }
        if let Some((start, end)) = f.range {
            let (Some(s), Some(t)) = (
                parse_iso(e.str("from_timestamp")),
                parse_iso(e.str("to_timestamp")),
            ) else {
                continue;
            };
            if start.is_some_and(|r| t < r) || end.is_some_and(|r| s > r) {
                continue;
            }
        }
        if !tags_match(e, &f.tags, f.any) {
            continue;
        }
        if !f.authors.is_empty() {
            let a = e.str("created_by").trim().to_lowercase();
            if a.is_empty() || !f.authors.contains(&a) {
                continue;
            }
        }
        if !f.locations.is_empty() {
            let mut loc = e.str("location").trim().to_lowercase();
            if loc.is_empty() {
                loc = e
                    .span
                    .get("tags")
                    .and_then(|t| t.get("location"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_lowercase();
            }
            if loc.is_empty() || !f.locations.contains(&loc) {
                continue;
            }
        }
        if let Some(q) = query {
            let hay = haystack(
                e,
                summaries.get(e.id()).and_then(Value::as_str),
                notes.get(e.id()).and_then(Value::as_str),
            );
            if !hay.contains(q) {
                continue;
            }
        }
        out.push(e);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Spans among `spans` whose archived messages mention `q` (the bounded deep scan).
fn deep_scan(
    h: &mut dyn Host,
    spans: &[&SpanEntry],
    q: &str,
    limit_spans: usize,
    limit_messages: usize,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for e in spans.iter().take(limit_spans) {
        let Some(Value::Array(msgs)) =
            store::payload(h, e.id())?.and_then(|p| p.get("messages").cloned())
        else {
            continue;
        };
        let hit = msgs.iter().take(limit_messages).any(|m| {
            truthy(m.get("content")) && text_of(m.get("content")).to_lowercase().contains(q)
        });
        if hit && !out.iter().any(|x| x == e.id()) {
            out.push(e.id().to_string());
        }
    }
    Ok(out)
}

fn push_unique(out: &mut Vec<String>, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        if !id.trim().is_empty() && !out.contains(&id) {
            out.push(id);
        }
    }
}

/// The rendered recall text (the seed's `_render_memory_query_output`).
fn render(
    h: &mut dyn Host,
    spans: &[SpanEntry],
    selected: &[String],
    summaries: &Map<String, Value>,
    max_messages: i64,
) -> Result<String, Error> {
    if selected.is_empty() {
        return Ok("No matching memory spans.".into());
    }
    let mut lines = vec!["Recalled memory spans (provenance-preserving):".to_string()];
    let mut remaining: Option<i64> = (max_messages != -1).then_some(max_messages);
    for (i, id) in selected.iter().enumerate() {
        let span = spans.iter().rev().find(|e| e.id() == id).map(|e| &e.span);
        let field = |k: &str| -> String {
            span.and_then(|s| s.get(k))
                .filter(|v| truthy(Some(v)))
                .map(|v| text_of(Some(v)))
                .unwrap_or_default()
        };
        let kind = span
            .and_then(|s| s.get("kind"))
            .filter(|v| truthy(Some(v)))
            .map(|v| text_of(Some(v)))
            .unwrap_or_else(|| "span".into());
        let (from, to) = (field("from_timestamp"), field("to_timestamp"));
        let (created_by, location) = (field("created_by"), field("location"));
        let mut tags: Vec<(String, String)> = match span.and_then(|s| s.get("tags")) {
            Some(Value::Object(t)) => t
                .iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .map(|s| (k.clone(), s.to_string()))
                })
                .collect(),
            _ => vec![],
        };
        tags.sort();
        lines.push(String::new());
        lines.push(format!(
            "[{}] span_id={id} kind={kind} msgs={} created_at={}",
            i + 1,
            field("message_count"),
            field("created_at")
        ));
        if !from.is_empty() || !to.is_empty() {
            lines.push(format!("    time_range: {from} .. {to}"));
        }
        if !created_by.trim().is_empty() {
            lines.push(format!("    created_by: {}", created_by.trim()));
        }
        if !location.trim().is_empty() {
            lines.push(format!("    location: {}", location.trim()));
        }
        if !tags.is_empty() {
            let t: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(format!("    tags: {}", t.join(", ")));
        }
        if let Some(Value::String(s)) = summaries.get(id.as_str())
            && !s.is_empty()
        {
            lines.push(format!("    summary: {}", s.trim()));
        }
        if remaining.is_some_and(|r| r <= 0) {
            continue;
        }
        let Some(Value::Object(payload)) = store::payload(h, id)? else {
            lines.push("    (artifact payload unavailable)".into());
            continue;
        };
        if kind == "memory_note" || payload.contains_key("note") {
            let note = text_of(payload.get("note")).trim().to_string();
            if note.is_empty() {
                lines.push("    (note payload missing note text)".into());
            } else {
                lines.push(format!("    note: {note}"));
            }
            if location.trim().is_empty()
                && let Some(Value::String(loc)) = payload.get("location")
                && !loc.trim().is_empty()
            {
                lines.push(format!("    location: {}", loc.trim()));
            }
            if let Some(Value::Object(src)) = payload.get("sources") {
                if let Some(Value::String(r)) = src.get("run_id")
                    && !r.is_empty()
                {
                    lines.push(format!("    sources.run_id: {r}"));
                }
                for (k, label) in [
                    ("span_ids", "sources.span_ids"),
                    ("message_ids", "sources.message_ids"),
                ] {
                    if let Some(Value::Array(list)) = src.get(k) {
                        let cleaned: Vec<String> = list
                            .iter()
                            .filter(|x| x.is_string() || x.is_i64() || x.is_u64())
                            .map(|x| text_of(Some(x)))
                            .take(12)
                            .collect();
                        if !cleaned.is_empty() {
                            lines.push(format!("    {label}: {}", cleaned.join(", ")));
                        }
                    }
                }
            }
            continue;
        }
        let Some(Value::Array(messages)) = payload.get("messages") else {
            lines.push("    (artifact missing messages)".into());
            continue;
        };
        let mut rendered = 0;
        for m in messages {
            if remaining.is_some_and(|r| r <= 0) {
                break;
            }
            let Value::Object(m) = m else { continue };
            let role = m
                .get("role")
                .filter(|v| truthy(Some(v)))
                .map(|v| text_of(Some(v)))
                .unwrap_or_else(|| "unknown".into());
            let content = m
                .get("content")
                .filter(|v| truthy(Some(v)))
                .map(|v| text_of(Some(v)))
                .unwrap_or_default();
            let ts = m
                .get("timestamp")
                .filter(|v| truthy(Some(v)))
                .map(|v| text_of(Some(v)))
                .unwrap_or_default();
            let prefix = if ts.is_empty() {
                format!("    - {role}: ")
            } else {
                format!("    - {ts} {role}: ")
            };
            lines.push(prefix + &content);
            rendered += 1;
            if let Some(r) = remaining.as_mut() {
                *r -= 1;
            }
        }
        let total = messages.iter().filter(|m| m.is_object()).count();
        if remaining.is_some() && rendered < total {
            lines.push(format!(
                "    (remaining {} messages omitted by max_messages={max_messages})",
                total - rendered
            ));
        }
    }
    Ok(lines.join("\n"))
}

/// Summary texts by span id, from the run's own compaction summaries in `context.messages`.
pub fn summaries(messages: &[Value]) -> Map<String, Value> {
    let mut out = Map::new();
    for m in messages {
        if m.get("role").and_then(Value::as_str) != Some("system") {
            continue;
        }
        let md = m.get("metadata");
        if md.and_then(|x| x.get("kind")).and_then(Value::as_str) != Some("memory_summary") {
            continue;
        }
        if let Some(id) = md
            .and_then(|x| x.get("source_artifact_id"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            out.insert(id.into(), json!(text_of(m.get("content"))));
        }
    }
    out
}

/// Runs one `memory_query` node.
pub fn run(h: &mut dyn Host, inv: &Invocation) -> Result<Outputs, Error> {
    let ids = RunIds::from_config(inv.config())?;
    let input = inv.inputs();
    let query = text_of(input.get("query")).trim().to_string();
    // The node's `limit` pin (default 10) becomes `limit_spans`; the runtime reads 0 as its default 5.
    let mut limit_spans = match input.get("limit") {
        None | Some(Value::Null) => 10,
        v => int_of(v).unwrap_or(10),
    };
    if limit_spans == 0 {
        limit_spans = 5;
    }
    limit_spans = limit_spans.max(1);
    let level = recall::parse(input.get("recall_level").filter(|v| v.is_string()))
        .map_err(Error::invalid_input)?;
    let scope = match input.get("scope") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_lowercase(),
        _ => "run".into(),
    };
    if !matches!(scope.as_str(), "run" | "session" | "global" | "all") {
        return Err(Error::invalid_input(format!(
            "Unknown memory_query scope: {scope}"
        )));
    }
    let mut required: Required = Vec::new();
    if let Some(Value::Object(t)) = input.get("tags") {
        for (k, v) in t {
            let k = k.trim().to_lowercase();
            if k.is_empty() || k == "kind" {
                continue;
            }
            let mut vals: Vec<String> = match v {
                Value::String(s) => vec![s.trim().to_lowercase()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|s| s.trim().to_lowercase())
                    .collect(),
                _ => vec![],
            };
            vals.retain(|s| !s.is_empty());
            vals.dedup();
            if !vals.is_empty() {
                required.push((k, vals));
            }
        }
    }
    let mode = match input.get("tags_mode") {
        Some(Value::String(s)) => s.trim().to_lowercase(),
        _ => "all".into(),
    };
    let any = matches!(mode.as_str(), "any" | "or");
    let authors: Vec<String> = str_list(input.get("usernames"))
        .into_iter()
        .map(|s| s.to_lowercase())
        .collect();
    let locations: Vec<String> = str_list(input.get("locations"))
        .into_iter()
        .map(|s| s.to_lowercase())
        .collect();
    let bound = |k: &str| -> Result<Option<i128>, Error> {
        match input.get(k) {
            Some(v) if truthy(Some(v)) => {
                let s = text_of(Some(v));
                parse_iso(&s)
                    .map(Some)
                    .ok_or_else(|| Error::invalid_input(format!("Invalid isoformat string: '{s}'")))
            }
            _ => Ok(None),
        }
    };
    let (since, until) = (bound("since")?, bound("until")?);
    let f = Filter {
        range: (since.is_some() || until.is_some()).then_some((since, until)),
        tags: required,
        any,
        authors,
        locations,
    };

    let mut deep = !query.is_empty();
    let mut deep_limit_spans: i64 = 50;
    let mut deep_limit_messages: i64 = 400;
    let mut max_messages: i64 = -1;
    let mut warnings: Vec<String> = Vec::new();
    let mut effort = Value::Null;
    if let Some(p) = level {
        let name = p.name;
        if limit_spans > p.limit_spans.1 {
            warnings.push(format!(
                "recall_level={name}: clamped limit_spans from {limit_spans} to {}",
                p.limit_spans.1
            ));
            limit_spans = p.limit_spans.1;
        }
        if deep && !p.deep_allowed {
            warnings.push(format!(
                "recall_level={name}: deep scan disabled (not allowed at this level)"
            ));
            deep = false;
        }
        if deep {
            deep_limit_spans = deep_limit_spans.min(p.deep_limit_spans_max);
            deep_limit_messages = deep_limit_messages.min(p.deep_limit_messages_max);
        }
        if deep_limit_spans > p.deep_limit_spans_max {
            warnings.push(format!(
                "recall_level={name}: clamped deep_limit_spans from {deep_limit_spans} to {}",
                p.deep_limit_spans_max
            ));
            deep_limit_spans = p.deep_limit_spans_max;
        }
        if deep_limit_messages > p.deep_limit_messages_max {
            warnings.push(format!("recall_level={name}: clamped deep_limit_messages_per_span from {deep_limit_messages} to {}", p.deep_limit_messages_max));
            deep_limit_messages = p.deep_limit_messages_max;
        }
        max_messages = p.max_messages.0;
        effort = json!({"recall_level": name, "applied": {
            "limit_spans": limit_spans, "deep": deep, "deep_limit_spans": deep_limit_spans,
            "deep_limit_messages_per_span": deep_limit_messages, "connected": false,
            "neighbor_hops": 1, "max_messages": max_messages}});
    }

    let owners = match scope.as_str() {
        "all" => ids.all_owners(),
        s => vec![ids.owner(s).map_err(Error::invalid_input)?],
    };
    let own_summaries = summaries(&crate::context::messages(inv));
    let mut all_spans: Vec<SpanEntry> = Vec::new();
    let mut selected: Vec<String> = Vec::new();
    let q = (!query.is_empty()).then(|| query.to_lowercase());
    for owner in &owners {
        let spans: Vec<SpanEntry> = store::list(h, owner)?
            .into_iter()
            .filter(|e| e.str("kind") != "evidence")
            .collect();
        // Only the executing run has a context of its own; owner runs of sessions and the global memory do not.
        let empty = Map::new();
        let sums = if *owner == ids.run_id {
            &own_summaries
        } else {
            &empty
        };
        let matches = filter(h, &spans, &f, sums, q.as_deref(), limit_spans as usize)?;
        let mut picked: Vec<String> = matches.iter().map(|e| e.id().to_string()).collect();
        if deep && let Some(q) = &q {
            let candidates = filter(h, &spans, &f, sums, None, deep_limit_spans.max(1) as usize)?;
            let found = deep_scan(
                h,
                &candidates,
                q,
                deep_limit_spans.max(1) as usize,
                deep_limit_messages.max(1) as usize,
            )?;
            push_unique(&mut picked, found);
        }
        push_unique(&mut selected, picked);
        all_spans.extend(spans);
    }
    let mut rendered = render(h, &all_spans, &selected, &own_summaries, max_messages)?;
    let mut matches = Vec::new();
    for id in &selected {
        let Some(e) = all_spans.iter().find(|e| e.id() == id) else {
            continue;
        };
        let s = &e.span;
        let mut m = Map::new();
        m.insert("span_id".into(), json!(id));
        for k in ["kind", "created_at", "from_timestamp", "to_timestamp"] {
            m.insert(k.into(), s.get(k).cloned().unwrap_or(Value::Null));
        }
        m.insert(
            "tags".into(),
            match s.get("tags") {
                Some(t @ Value::Object(_)) => t.clone(),
                _ => json!({}),
            },
        );
        for k in [
            "created_by",
            "location",
            "note_preview",
            "message_count",
            "summary_message_id",
        ] {
            if let Some(v) = s.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        matches.push(Value::Object(m));
    }
    let mut meta = json!({"matches": matches, "span_ids": selected});
    if level.is_some() {
        meta["effort"] = effort;
        if !warnings.is_empty() {
            meta["warnings"] = json!(warnings);
            let block: Vec<String> = warnings.iter().map(|w| format!("- {w}")).collect();
            rendered = format!("[recall warnings]\n{}\n\n{rendered}", block.join("\n"))
                .trim()
                .to_string();
        }
    }
    let raw = json!({"mode": "executed", "results": [{"call_id": "memory", "name": "recall_memory",
        "success": true, "output": rendered, "error": null, "meta": meta}]});
    Ok(
        outputs! { "results" => matches, "rendered" => rendered, "span_ids" => selected, "raw" => raw },
    )
}
