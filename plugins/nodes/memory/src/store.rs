//! The span store: per-owner span indexes and span payloads, kept as JSON in the host's kv bucket.
//!
//! Layout: `spans/<owner>/<created_at>#<span_id>` holds one index record `{"span": {...}, "artifact_tags":
//! {...}}`; `artifacts/<span_id>` holds the payload `{"run_id", "tags", "data"}`. An owner is a run id
//! (scope `run`), `session_memory_<session>` (scope `session`) or `global_memory` (scope `global`), as
//! the seed names its memory owner runs. One key per span means two runs of one session never overwrite
//! each other's notes.

use abstractgateway_plugin_sdk::{Error, Map, Value, json, serde_json};

use crate::host::Host;
use crate::util::sha256_hex;

/// The owner of `scope = "global"` spans.
pub const GLOBAL_OWNER: &str = "global_memory";

/// Who is running: the run, its session and its actor (from the node config's `_gateway`).
#[derive(Debug, Clone, Default)]
pub struct RunIds {
    /// The executing run.
    pub run_id: String,
    /// Its session (the root run id for gateway runs).
    pub session_id: Option<String>,
    /// The actor that started it, if known.
    pub actor_id: Option<String>,
}

impl RunIds {
    /// Reads `_gateway.run_id`, `_gateway.session_id` and `_gateway.actor_id` from a node config.
    pub fn from_config(config: &Value) -> Result<RunIds, Error> {
        let gw = config.get("_gateway");
        let s = |k: &str| {
            gw.and_then(|g| g.get(k))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let run_id = s("run_id").ok_or_else(|| {
            Error::invalid_input("span memory needs the run id (config._gateway.run_id)")
        })?;
        Ok(RunIds {
            run_id,
            session_id: s("session_id"),
            actor_id: s("actor_id"),
        })
    }

    /// The owner id of `scope` (`run`, `session` or `global`).
    pub fn owner(&self, scope: &str) -> Result<String, String> {
        match scope {
            "run" => Ok(self.run_id.clone()),
            "session" => Ok(match &self.session_id {
                Some(sid) => session_owner(sid),
                // Without a session the seed falls back to the run tree's root; a gateway run always has one.
                None => self.run_id.clone(),
            }),
            "global" => Ok(GLOBAL_OWNER.into()),
            other => Err(format!("Unknown memory scope: {other}")),
        }
    }

    /// The distinct owners of the run, its session and the global memory, in that order (scope `all`).
    pub fn all_owners(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for scope in ["run", "session", "global"] {
            if let Ok(o) = self.owner(scope)
                && !out.contains(&o)
            {
                out.push(o);
            }
        }
        out
    }
}

fn safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The seed's session memory owner id: `session_memory_<sid>`, or a digest when `sid` is not id-safe.
pub fn session_owner(sid: &str) -> String {
    if safe_id(sid) {
        format!("session_memory_{sid}")
    } else {
        format!("session_memory_sha_{}", &sha256_hex(sid.as_bytes())[..32])
    }
}

/// One span of an owner's index.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEntry {
    /// Its kv key (rewritten in place when the span is tagged).
    pub key: String,
    /// The seed's span record (`kind`, `artifact_id`, `created_at`, `tags`, ...).
    pub span: Map<String, Value>,
    /// The tags its payload was stored with (`kind` plus the note's tags).
    pub artifact_tags: Map<String, Value>,
}

impl SpanEntry {
    /// The span id (the payload's artifact id).
    pub fn id(&self) -> &str {
        self.span
            .get("artifact_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A string field of the span record, `""` when absent.
    pub fn str(&self, k: &str) -> &str {
        self.span.get(k).and_then(Value::as_str).unwrap_or_default()
    }
}

fn parse(key: &str, bytes: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("span memory record {key} is not JSON: {e}")))
}

/// The spans of `owner`, newest first (the seed's order: `created_at` descending).
pub fn list(h: &mut dyn Host, owner: &str) -> Result<Vec<SpanEntry>, Error> {
    let keys = h.list(&format!("spans/{owner}/"))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(bytes) = h.get(&key)? else { continue };
        let v = parse(&key, &bytes)?;
        let Some(Value::Object(span)) = v.get("span").cloned() else {
            continue;
        };
        let artifact_tags = match v.get("artifact_tags") {
            Some(Value::Object(t)) => t.clone(),
            _ => Map::new(),
        };
        out.push(SpanEntry {
            key,
            span,
            artifact_tags,
        });
    }
    // Stable: spans created in the same instant keep their key order.
    out.sort_by(|a, b| b.str("created_at").cmp(a.str("created_at")));
    Ok(out)
}

/// Writes `entry` (a new span, or a tagged one) under its key.
pub fn save(h: &mut dyn Host, entry: &SpanEntry) -> Result<(), Error> {
    let v = json!({"span": entry.span, "artifact_tags": entry.artifact_tags});
    h.set(&entry.key, v.to_string().as_bytes())
}

/// Adds `span` to `owner`'s index; its key sorts by creation time.
pub fn append(
    h: &mut dyn Host,
    owner: &str,
    span: Map<String, Value>,
    artifact_tags: Map<String, Value>,
) -> Result<SpanEntry, Error> {
    let created = span
        .get("created_at")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = span
        .get("artifact_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let entry = SpanEntry {
        key: format!("spans/{owner}/{created}#{id}"),
        span,
        artifact_tags,
    };
    save(h, &entry)?;
    Ok(entry)
}

/// Stores `data` as a span payload of `owner`; its id is the seed's artifact id (the first 32 hex digits of
/// SHA-256 over `owner`, NUL and the compact JSON), so equal notes of one owner share an id.
pub fn put_payload(
    h: &mut dyn Host,
    owner: &str,
    data: &Value,
    tags: &Map<String, Value>,
) -> Result<String, Error> {
    let content = data.to_string();
    let mut hashed = owner.as_bytes().to_vec();
    hashed.push(0);
    hashed.extend_from_slice(content.as_bytes());
    let id = sha256_hex(&hashed)[..32].to_string();
    let v = json!({"run_id": owner, "tags": tags, "data": data});
    h.set(&format!("artifacts/{id}"), v.to_string().as_bytes())?;
    Ok(id)
}

/// The payload stored under span id `id`, if any.
pub fn payload(h: &mut dyn Host, id: &str) -> Result<Option<Value>, Error> {
    if id.is_empty() || id.len() > 128 || !safe_id(id) {
        return Ok(None);
    }
    let key = format!("artifacts/{id}");
    match h.get(&key)? {
        None => Ok(None),
        Some(bytes) => Ok(parse(&key, &bytes)?.get("data").cloned()),
    }
}

/// Resolves span ids as the seed does: integers and digit strings are 1-based indexes into `spans`
/// (newest first), other strings are span ids; order kept, duplicates dropped.
pub fn resolve_ids(ids: &[Value], spans: &[SpanEntry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let by_index = |i: i64| -> Option<String> {
        let idx = usize::try_from(i.checked_sub(1)?).ok()?;
        spans
            .get(idx)
            .map(|s| s.id().to_string())
            .filter(|s| !s.is_empty())
    };
    for v in ids {
        let got = match v {
            Value::Number(n) => n.as_i64().and_then(by_index),
            Value::String(s) => {
                let s = s.trim();
                if s.is_empty() {
                    None
                } else if s.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse::<i64>().ok().and_then(by_index)
                } else {
                    Some(s.to_string())
                }
            }
            _ => None,
        };
        if let Some(id) = got
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}
