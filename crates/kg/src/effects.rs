//! The seed's three KG effects (`MEMORY_KG_ASSERT`, `MEMORY_KG_QUERY`, `MEMORY_KG_RESOLVE`) over [`Graph`]: the
//! payload a node sends, the result it gets. `Err` is a failed effect (the node fails with that text); a result
//! with `ok: false` is the seed's completed-but-empty answer.
//!
//! Unlike the seed, an explicit `owner_id` must be one of the calling run's own memory owners (its run, root run,
//! session or the global one): a value wired from a run's input must not open another session's memory.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::graph::{Graph, KgError, Query};
use crate::model::{Assertion, truthy};
use crate::packets;
use crate::semantics::{normalize_ex_curie, normalize_predicate, predicate_allowed};

/// Who is asking: the run a node belongs to.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub workflow_id: String,
    pub session_id: Option<String>,
    /// The top of the run's tree (itself for a root run).
    pub root_run_id: String,
}

/// Parents followed to find a run's root.
const MAX_DEPTH: usize = 64;

impl RunInfo {
    /// A run's identity, its root found by following its parents in `store`.
    pub fn of(
        store: &abstractgateway_store::Store,
        run_id: &str,
        workflow_id: &str,
        session_id: Option<String>,
        parent_run_id: Option<String>,
    ) -> RunInfo {
        let mut root = run_id.to_string();
        let mut parent = parent_run_id;
        for _ in 0..MAX_DEPTH {
            let Some(p) = parent else { break };
            parent = store
                .get_run(&p)
                .ok()
                .flatten()
                .and_then(|r| r.parent_run_id);
            root = p;
        }
        RunInfo {
            run_id: run_id.to_string(),
            workflow_id: workflow_id.to_string(),
            session_id,
            root_run_id: root,
        }
    }
}

fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The memory owner of a session: `session_memory_<id>`, or a digest of an id with other characters.
pub fn session_owner(session_id: &str) -> String {
    let sid = session_id.trim();
    if safe(sid) {
        return format!("session_memory_{sid}");
    }
    let digest = hex::encode(Sha256::digest(sid.as_bytes()));
    format!("session_memory_sha_{}", &digest[..32])
}

/// The gateway-wide memory owner (`ABSTRACTRUNTIME_GLOBAL_MEMORY_RUN_ID`, as the seed's runtime reads it).
pub fn global_owner() -> String {
    std::env::var("ABSTRACTRUNTIME_GLOBAL_MEMORY_RUN_ID")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| safe(s))
        .unwrap_or_else(|| "global_memory".into())
}

/// The owner a scope names for `run`.
pub fn scope_owner(run: &RunInfo, scope: &str) -> Result<String, String> {
    match scope.trim().to_lowercase().as_str() {
        "" | "run" => Ok(run.run_id.clone()),
        "session" => Ok(match run.session_id.as_deref().map(str::trim) {
            Some(sid) if !sid.is_empty() => session_owner(sid),
            _ => run.root_run_id.clone(),
        }),
        "global" => Ok(global_owner()),
        other => Err(format!("Unknown memory scope: {other}")),
    }
}

/// An explicit owner, if the run may use it.
fn own_owner(run: &RunInfo, owner: &str) -> Result<String, String> {
    let allowed = [
        Some(run.run_id.clone()),
        Some(run.root_run_id.clone()),
        run.session_id.as_deref().map(session_owner),
        Some(global_owner()),
    ];
    if allowed.iter().flatten().any(|o| o == owner) {
        Ok(owner.to_string())
    } else {
        Err(format!(
            "owner_id {owner:?} is not a memory owner of this run (its run, root run, session or the global memory)"
        ))
    }
}

fn text(p: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| p.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn number(p: &Map<String, Value>, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| match p.get(*k) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        None | Some(Value::Null) => default,
        Some(Value::String(s)) => !matches!(
            s.trim().to_lowercase().as_str(),
            "0" | "false" | "no" | "off" | ""
        ),
        Some(v) => truthy(v),
    }
}

/// A stable id for the `i`th assertion of a call: a repeated call (a replay after a crash) makes the same ids.
fn derived_id(seed: &str, i: usize) -> String {
    let h = Sha256::digest(format!("{seed}:{i}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

const ASSERT_NEEDS: &str = "MEMORY_KG_ASSERT requires payload.assertions (list[object])";

/// `MEMORY_KG_ASSERT`. `now` stamps `observed_at`; `id_seed` names this call (stable across replays).
pub fn assert(
    graph: &Graph,
    run: &RunInfo,
    payload: &Map<String, Value>,
    now: &str,
    id_seed: &str,
) -> Result<Value, String> {
    let raw = ["assertions", "triples", "items"]
        .iter()
        .find_map(|k| payload.get(*k).filter(|v| !v.is_null()));
    let list: Vec<Map<String, Value>> = match raw {
        None => return Err(ASSERT_NEEDS.into()),
        Some(Value::Array(a)) if a.is_empty() => {
            return Ok(json!({"ok": true, "count": 0, "assertion_ids": [], "skipped": true}));
        }
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_object().cloned()).collect(),
        Some(Value::Object(o)) => vec![o.clone()],
        Some(_) => return Err(ASSERT_NEEDS.into()),
    };
    if list.is_empty() {
        return Err(ASSERT_NEEDS.into());
    }
    if list.len() > crate::graph::MAX_PER_CALL {
        return Err(format!(
            "MEMORY_KG_ASSERT takes at most {} assertions at once; got {}",
            crate::graph::MAX_PER_CALL,
            list.len()
        ));
    }
    let allow_custom = flag(payload.get("allow_custom_predicates"), false)
        || flag(payload.get("allow_custom"), false);
    let mut unknown: Vec<String> = Vec::new();
    for d in &list {
        let p = d
            .get("predicate")
            .and_then(Value::as_str)
            .map(normalize_predicate)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "<missing>".into());
        if (p == "<missing>" || !predicate_allowed(&p, allow_custom)) && !unknown.contains(&p) {
            unknown.push(p);
        }
    }
    if !unknown.is_empty() {
        let more = if unknown.len() > 12 { " …" } else { "" };
        let shown: Vec<&str> = unknown.iter().take(12).map(String::as_str).collect();
        return Err(format!(
            "MEMORY_KG_ASSERT rejected unknown predicates. Got: {}{more}. Update the extractor to use allowed \
             semantics (or set allow_custom_predicates=true for ex:* predicates).",
            shown.join(", ")
        ));
    }
    let scope = text(payload, &["scope"])
        .map(|s| s.to_lowercase())
        .unwrap_or_else(|| "run".into());
    let owner_default = match text(payload, &["owner_id"]) {
        Some(o) => Some(own_owner(run, &o)?),
        None => None,
    };
    let span_id = text(payload, &["span_id"]);
    let defaults = match payload.get("attributes_defaults") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for (i, d) in list.iter().enumerate() {
        match build(
            run,
            d,
            &scope,
            owner_default.as_deref(),
            span_id.as_deref(),
            &defaults,
            now,
        )
        .map(|mut a| {
            if a.assertion_id.is_none() {
                a.assertion_id = Some(derived_id(id_seed, i));
            }
            a
        }) {
            Ok(a) => built.push(a),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let more = if errors.len() > 5 { " …" } else { "" };
        let shown: Vec<&str> = errors.iter().take(5).map(String::as_str).collect();
        return Err(format!(
            "MEMORY_KG_ASSERT contained invalid assertions: {}{more}",
            shown.join(" | ")
        ));
    }
    if built.is_empty() {
        return Err("MEMORY_KG_ASSERT contained no valid assertions".into());
    }
    let dedupe = flag(
        payload.get("dedupe").or_else(|| payload.get("deduplicate")),
        true,
    );
    let attempted = built.len();
    let added = graph
        .add(built, dedupe)
        .map_err(|e| format!("MEMORY_KG_ASSERT store.add failed: {e}"))?;
    Ok(json!({
        "ok": true,
        "count": added.ids.len(),
        "assertion_ids": added.ids,
        "count_attempted": attempted,
        "skipped_duplicates": added.skipped_duplicates,
    }))
}

fn build(
    run: &RunInfo,
    d: &Map<String, Value>,
    scope: &str,
    owner_default: Option<&str>,
    span_id: Option<&str>,
    defaults: &Map<String, Value>,
    now: &str,
) -> Result<Assertion, String> {
    let mut d = d.clone();
    for key in ["subject", "object"] {
        if let Some(Value::String(s)) = d.get(key) {
            let n = normalize_ex_curie(s);
            d.insert(key.into(), Value::String(n));
        }
    }
    if let Some(Value::String(p)) = d.get("predicate") {
        let n = normalize_predicate(p);
        d.insert("predicate".into(), Value::String(n));
    }
    d.entry("scope").or_insert_with(|| json!(scope));
    let own_scope = d
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or(scope)
        .to_string();
    let owner = match d.get("owner_id").and_then(Value::as_str).map(str::trim) {
        Some(o) if !o.is_empty() => own_owner(run, o)?,
        _ => match owner_default {
            Some(o) => o.to_string(),
            None => scope_owner(run, &own_scope)?,
        },
    };
    d.insert("owner_id".into(), json!(owner));
    d.entry("observed_at").or_insert_with(|| json!(now));
    let mut prov = match d.get("provenance") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Some(span) = span_id {
        prov.entry("span_id").or_insert_with(|| json!(span));
    }
    prov.entry("writer_run_id")
        .or_insert_with(|| json!(run.run_id));
    prov.entry("writer_workflow_id")
        .or_insert_with(|| json!(run.workflow_id));
    d.insert("provenance".into(), Value::Object(prov));
    let mut attrs = match d.get("attributes") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in defaults {
        attrs.entry(k.clone()).or_insert_with(|| v.clone());
    }
    d.insert("attributes".into(), Value::Object(attrs));
    Assertion::from_json(&Value::Object(d), now)
}

/// A recall level's bounds (the seed's `policy_for(level).kg`).
struct Recall {
    name: &'static str,
    min_score_default: f64,
    min_score_floor: f64,
    limit_default: i64,
    limit_max: i64,
    budget_default: i64,
    budget_max: i64,
}

const RECALL: [Recall; 3] = [
    Recall {
        name: "urgent",
        min_score_default: 0.55,
        min_score_floor: 0.5,
        limit_default: 20,
        limit_max: 40,
        budget_default: 600,
        budget_max: 1000,
    },
    Recall {
        name: "standard",
        min_score_default: 0.4,
        min_score_floor: 0.25,
        limit_default: 80,
        limit_max: 200,
        budget_default: 1200,
        budget_max: 3000,
    },
    Recall {
        name: "deep",
        min_score_default: 0.25,
        min_score_floor: 0.0,
        limit_default: 200,
        limit_max: 1000,
        budget_default: 2400,
        budget_max: 6000,
    },
];

fn recall_level(p: &Map<String, Value>) -> Result<Option<&'static Recall>, String> {
    let raw = p.get("recall_level").or_else(|| p.get("recallLevel"));
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim().to_lowercase();
            RECALL
                .iter()
                .find(|r| r.name == s)
                .map(Some)
                .ok_or_else(|| format!("Unknown recall_level: {s}"))
        }
        Some(_) => Err("recall_level must be a string".into()),
    }
}

/// The owners a scope reads, each with its scope label.
fn owners(
    run: &RunInfo,
    scope: &str,
    explicit: Option<&str>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    if scope == "all" {
        for label in ["run", "session", "global"] {
            match scope_owner(run, label) {
                Ok(o) => out.push((label.to_string(), o)),
                Err(e) => errors.push(e),
            }
        }
    } else {
        let owner = match explicit {
            Some(o) => own_owner(run, o),
            None => scope_owner(run, scope),
        };
        match owner {
            Ok(o) => out.push((scope.to_string(), o)),
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

fn failed_query(e: &KgError) -> String {
    e.to_string()
}

/// `MEMORY_KG_QUERY`.
pub fn query(graph: &Graph, run: &RunInfo, payload: &Map<String, Value>) -> Result<Value, String> {
    let level = recall_level(payload)?;
    let scope = text(payload, &["scope"])
        .map(|s| s.to_lowercase())
        .unwrap_or_else(|| "run".into());
    if !["run", "session", "global", "all"].contains(&scope.as_str()) {
        return Ok(
            json!({"ok": false, "count": 0, "items": [], "error": format!("Unknown memory scope: {scope}")}),
        );
    }
    let query_text = text(payload, &["query_text"]);
    let semantic = query_text.is_some();
    let mut warnings: Vec<String> = Vec::new();
    let given_limit = number(payload, &["limit"]);
    let given_score = number(payload, &["min_score"]).filter(|f| f.is_finite());
    let given_budget = match payload
        .get("max_input_tokens")
        .or_else(|| payload.get("max_in_tokens"))
    {
        Some(Value::Bool(_)) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite());
    let (limit, min_score, budget) = match level {
        None => {
            let limit = given_limit
                .filter(|l| *l != 0.0)
                .map_or(100, |l| l as i64)
                .clamp(1, 10_000);
            let budget = given_budget.map(|b| b as i64).filter(|b| *b > 0);
            (limit, given_score, budget)
        }
        Some(r) => {
            let mut limit = given_limit.map_or(r.limit_default, |l| l as i64).max(1);
            if limit > r.limit_max {
                warnings.push(format!(
                    "recall_level={}: clamped limit from {limit} to {}",
                    r.name, r.limit_max
                ));
                limit = r.limit_max;
            }
            let min_score = semantic.then(|| {
                let v = given_score.unwrap_or(r.min_score_default);
                if v < r.min_score_floor {
                    warnings.push(format!(
                        "recall_level={}: raised min_score from {v} to {}",
                        r.name, r.min_score_floor
                    ));
                    r.min_score_floor
                } else {
                    v
                }
            });
            let mut budget = match given_budget {
                None => r.budget_default,
                Some(0.0) => 0,
                Some(b) if b < 1.0 => r.budget_default,
                Some(b) => b as i64,
            };
            if budget > r.budget_max {
                warnings.push(format!(
                    "recall_level={}: clamped max_input_tokens from {budget} to {}",
                    r.name, r.budget_max
                ));
                budget = r.budget_max;
            }
            (limit, min_score, Some(budget))
        }
    };
    let (owners, mut errors) = owners(run, &scope, text(payload, &["owner_id"]).as_deref());
    let term = |k: &str| text(payload, &[k]);
    let mut items: Vec<Assertion> = Vec::new();
    for (label, owner) in &owners {
        let q = Query {
            subject: term("subject").map(|s| normalize_ex_curie(&s)),
            predicate: term("predicate").map(|p| normalize_predicate(&p)),
            object: term("object").map(|o| normalize_ex_curie(&o)),
            scope: Some(label.clone()),
            owner_id: Some(owner.clone()),
            since: term("since"),
            until: term("until"),
            active_at: term("active_at"),
            query_text: query_text.clone(),
            limit,
            order: term("order").unwrap_or_else(|| "desc".into()),
        };
        match graph.query(&q) {
            Ok(found) => items.extend(found),
            Err(e) if scope == "all" => errors.push(format!("{label}: {}", failed_query(&e))),
            Err(e) => errors.push(failed_query(&e)),
        }
    }
    let asc = term("order").is_some_and(|o| o.eq_ignore_ascii_case("asc"));
    items.sort_by(|x, y| {
        let o = x.observed_at.cmp(&y.observed_at);
        if asc { o } else { o.reverse() }
    });
    items.truncate(limit.clamp(1, 10_000) as usize);
    if items.is_empty() && !errors.is_empty() {
        return Ok(json!({"ok": false, "count": 0, "items": [], "error": errors.join(" | ")}));
    }
    let items: Vec<Value> = items.iter().map(Assertion::to_json).collect();
    let mut result = Map::new();
    result.insert("ok".into(), json!(true));
    result.insert("count".into(), json!(items.len()));
    if let Some(r) = level {
        result.insert(
            "effort".into(),
            json!({"recall_level": r.name, "applied": {"limit": limit, "min_score": min_score,
                "max_input_tokens": budget}}),
        );
    }
    if let Some(budget) = budget.filter(|b| *b > 0) {
        let packets = packets::packetize(&items);
        let packed = packets::pack(
            &packets,
            &scope,
            budget,
            text(payload, &["model"]).as_deref(),
            semantic,
        );
        result.insert("packets_version".into(), json!(0));
        result.insert("packed_count".into(), json!(packed.kept.len()));
        result.insert("packets".into(), Value::Array(packed.kept));
        result.insert("active_memory_text".into(), json!(packed.text));
        result.insert("estimated_tokens".into(), json!(packed.estimated_tokens));
        result.insert("dropped".into(), json!(packed.dropped));
    }
    result.insert("items".into(), Value::Array(items));
    let warnings: Vec<String> = errors.into_iter().chain(warnings).collect();
    if !warnings.is_empty() {
        result.insert("warnings".into(), json!(warnings));
    }
    Ok(Value::Object(result))
}

/// A candidate entity: (scope, owner, subject).
type CandidateKey = (String, Option<String>, String);
/// What is known of a candidate: its label, newest `observed_at`, up to three assertions as evidence.
type Candidate = (String, String, Vec<Value>);

/// Predicates that name things, in the order the seed tries them.
const LABEL_PREDICATES: [&str; 5] = [
    "schema:name",
    "skos:preflabel",
    "skos:altlabel",
    "dcterms:title",
    "dcterms:identifier",
];

/// `MEMORY_KG_RESOLVE`: `ex:` entities whose name-like triples match a label exactly (similarity search needs
/// embeddings; without them the semantic pass reports why in `warnings`).
pub fn resolve(
    graph: &Graph,
    run: &RunInfo,
    payload: &Map<String, Value>,
) -> Result<Value, String> {
    let Some(label) = text(payload, &["label", "query", "query_text"]) else {
        return Ok(
            json!({"ok": false, "count": 0, "candidates": [], "error": "label is required"}),
        );
    };
    let expected =
        text(payload, &["expected_type", "expectedType", "type"]).map(|t| t.to_lowercase());
    let level = recall_level(payload)?;
    let scope = text(payload, &["scope"])
        .map(|s| s.to_lowercase())
        .unwrap_or_else(|| "run".into());
    if !["run", "session", "global", "all"].contains(&scope.as_str()) {
        return Ok(json!({"ok": false, "count": 0, "candidates": [],
            "error": format!("Unknown memory scope: {scope}")}));
    }
    let label_norm = label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let (mut max, mut mode) = match level.map(|r| r.name) {
        Some("urgent") => (3, "none"),
        Some("deep") => (10, "always"),
        _ => (5, "fallback"),
    };
    if let Some(m) = number(payload, &["max_candidates", "maxCandidates", "limit"]) {
        max = (m as i64).clamp(1, 50);
    }
    match payload
        .get("include_semantic")
        .or_else(|| payload.get("includeSemantic"))
    {
        Some(Value::Bool(true)) => mode = "fallback",
        Some(Value::Bool(false)) => mode = "none",
        _ => {}
    }
    let (owners, mut warnings) = owners(run, &scope, text(payload, &["owner_id"]).as_deref());
    let per_query = (max * 10).clamp(10, 200);
    let mut exact: Vec<Assertion> = Vec::new();
    for (label_scope, owner) in &owners {
        for pid in LABEL_PREDICATES {
            let q = Query {
                predicate: Some(pid.into()),
                object: Some(label_norm.clone()),
                scope: Some(label_scope.clone()),
                owner_id: Some(owner.clone()),
                limit: per_query,
                order: "desc".into(),
                ..Query::default()
            };
            match graph.query(&q) {
                Ok(found) => exact.extend(found),
                Err(e) => warnings.push(format!("{label_scope}.{pid}: {e}")),
            }
        }
    }
    if mode == "always" || (mode == "fallback" && exact.is_empty()) {
        for (label_scope, _) in &owners {
            for pid in LABEL_PREDICATES {
                warnings.push(format!(
                    "semantic {label_scope}.{pid}: {}",
                    KgError::NoEmbedder
                ));
            }
        }
    }
    let mut order: Vec<CandidateKey> = Vec::new();
    let mut cands: std::collections::HashMap<CandidateKey, Candidate> =
        std::collections::HashMap::new();
    for a in &exact {
        if !a.subject.trim().to_lowercase().starts_with("ex:") {
            continue;
        }
        let key = (
            a.scope.clone(),
            a.owner_id.clone(),
            a.subject.trim().to_string(),
        );
        let label_val = if a.object.trim().is_empty() {
            label_norm.clone()
        } else {
            a.object.clone()
        };
        match cands.get_mut(&key) {
            None => {
                order.push(key.clone());
                cands.insert(key, (label_val, a.observed_at.clone(), vec![a.to_json()]));
            }
            Some(c) => {
                if a.observed_at > c.1 {
                    c.1 = a.observed_at.clone();
                }
                if c.2.len() < 3 {
                    c.2.push(a.to_json());
                }
            }
        }
    }
    // Every exact hit scores 1.0: newest first.
    order.sort_by(|x, y| cands[y].1.cmp(&cands[x].1));
    order.truncate((max * 2) as usize);
    let mut out = Vec::new();
    for key in order {
        let (scope_val, owner, id) = &key;
        let q = Query {
            subject: Some(id.clone()),
            predicate: Some("rdf:type".into()),
            scope: Some(scope_val.clone()),
            owner_id: owner.clone(),
            limit: 50,
            order: "desc".into(),
            ..Query::default()
        };
        let mut types: Vec<String> = Vec::new();
        match graph.query(&q) {
            Ok(rows) => {
                for r in rows {
                    let t = r.object.trim().to_lowercase();
                    if !t.is_empty() && !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
            Err(e) => warnings.push(format!("type {scope_val}.{id}: {e}")),
        }
        if let Some(want) = &expected
            && !types.contains(want)
        {
            continue;
        }
        let (label_val, _, evidence) = &cands[&key];
        out.push(
            json!({"id": id, "label": label_val, "types": types, "scope": scope_val,
            "owner_id": owner, "score": 1.0, "evidence": evidence}),
        );
        if out.len() as i64 >= max {
            break;
        }
    }
    let mut result = json!({"ok": true, "count": out.len(), "candidates": out,
        "raw": {"label": label_norm, "expected_type": expected}});
    if !warnings.is_empty() {
        result["warnings"] = json!(warnings);
    }
    Ok(result)
}
