//! `POST /kg/query`: the knowledge-graph memory as the seed serves it (the same owners, scopes, filters, order and
//! errors), read from the triple store the `memory_kg_*` nodes write. A client with the gateway's token may read
//! any owner, as on the seed; it never writes.

use abstractgateway_kg::effects::{self, RunInfo};
use abstractgateway_kg::{Graph, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::observer::find_run;
use crate::error::{ApiError, ApiResult, json_response};
use crate::extract::{BodyFields, json_object};
use crate::run::RunState;
use crate::state::SharedState;

fn run_info(st: &SharedState, run: &RunState) -> RunInfo {
    RunInfo::of(
        st.gw.store(),
        &run.run_id,
        &run.workflow_id,
        run.session_id.clone(),
        run.parent_run_id.clone(),
    )
}

fn require_run(st: &SharedState, rid: &str) -> Result<RunState, ApiError> {
    find_run(st, rid)?.ok_or_else(|| ApiError::not_found(format!("Run '{rid}' not found")))
}

fn owner_of(st: &SharedState, run: &RunState, scope: &str) -> Result<String, ApiError> {
    effects::scope_owner(&run_info(st, run), scope).map_err(ApiError::bad_request)
}

fn blank_to_none(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `POST /kg/query`.
pub async fn query(State(st): State<SharedState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let obj = json_object(&headers, &body)?;
    let mut f = BodyFields::new(&obj);
    let rid = blank_to_none(f.opt_str("run_id"));
    let sid = blank_to_none(f.opt_str("session_id"));
    let scope = f
        .opt_str("scope")
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "session".into());
    let owner = blank_to_none(f.opt_str("owner_id"));
    let terms = [
        "subject",
        "predicate",
        "object",
        "since",
        "until",
        "active_at",
        "query_text",
    ]
    .map(|k| f.opt_str(k));
    let order = f.opt_str("order").unwrap_or_else(|| "desc".into());
    let all_owners = f.bool_or("all_owners", false);
    let limit = f.opt_int("limit", Some(-1), Some(10_000)).unwrap_or(500);
    f.finish()?;
    if !["run", "session", "global", "all"].contains(&scope.as_str()) {
        return Err(ApiError::bad_request(
            "scope must be one of run|session|global|all",
        ));
    }
    if scope == "all" && owner.is_some() {
        return Err(ApiError::bad_request(
            "owner_id is not supported when scope=all",
        ));
    }
    if owner.is_some() && all_owners {
        return Err(ApiError::bad_request(
            "all_owners cannot be combined with owner_id",
        ));
    }
    let mut warnings: Vec<String> = Vec::new();
    // (scope label, owner; None = every owner)
    let mut owners: Vec<(String, Option<String>)> = Vec::new();
    let mut resolved: Option<String> = None;
    if scope == "all" {
        if all_owners {
            owners.extend(["run", "session", "global"].map(|l| (l.to_string(), None)));
        } else {
            if let Some(rid) = &rid {
                match require_run(&st, rid) {
                    Ok(run) => {
                        for label in ["run", "session", "global"] {
                            owners.push((label.into(), Some(owner_of(&st, &run, label)?)));
                        }
                    }
                    Err(e) if e.status == StatusCode::NOT_FOUND && sid.is_some() => {
                        warnings.push(format!(
                            "Run '{rid}' not found; querying session+global only for session_id='{}'",
                            sid.as_deref().unwrap_or_default()
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            if owners.is_empty() {
                let Some(sid) = &sid else {
                    return Err(ApiError::bad_request(
                        "run_id or session_id is required when scope=all (or set all_owners=true)",
                    ));
                };
                owners.push(("session".into(), Some(effects::session_owner(sid))));
                owners.push(("global".into(), Some(effects::global_owner())));
                warnings.push("run scope omitted (no run_id available)".into());
            }
        }
    } else {
        let owner_id = if all_owners {
            None
        } else if let Some(o) = &owner {
            Some(o.clone())
        } else {
            match scope.as_str() {
                "global" => Some(effects::global_owner()),
                "run" => Some(rid.clone().ok_or_else(|| {
                    ApiError::bad_request("run_id is required for scope=run (or provide owner_id)")
                })?),
                _ => match (&sid, &rid) {
                    (Some(sid), _) => Some(effects::session_owner(sid)),
                    (None, Some(rid)) => Some(owner_of(&st, &require_run(&st, rid)?, "session")?),
                    (None, None) => {
                        return Err(ApiError::bad_request(
                            "run_id or session_id is required for scope=session (or provide owner_id)",
                        ));
                    }
                },
            }
        };
        resolved = owner_id.clone();
        owners.push((scope.clone(), owner_id));
    }
    let [
        subject,
        predicate,
        object,
        since,
        until,
        active_at,
        query_text,
    ] = terms;
    let store = st.gw.store().clone();
    let asked = (owners, scope.clone(), order.clone());
    let (mut items, errors) = tokio::task::spawn_blocking(move || {
        let graph = Graph::new(store);
        let (owners, scope, order) = asked;
        let mut items = Vec::new();
        let mut errors = Vec::new();
        for (label, owner_id) in owners {
            let q = Query {
                subject: subject.clone(),
                predicate: predicate.clone(),
                object: object.clone(),
                scope: Some(label.clone()),
                owner_id,
                since: since.clone(),
                until: until.clone(),
                active_at: active_at.clone(),
                query_text: query_text.clone(),
                limit,
                order: order.clone(),
            };
            match graph.query(&q) {
                Ok(found) => items.extend(found),
                Err(e) if scope == "all" => errors.push(format!("{label}: {e}")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (items, errors)
    })
    .await
    .map_err(|e| ApiError::internal(format!("KG query failed: {e}")))?;
    warnings.extend(errors);
    let asc = order.trim().eq_ignore_ascii_case("asc");
    items.sort_by(|x, y| {
        let o = x.observed_at.cmp(&y.observed_at);
        if asc { o } else { o.reverse() }
    });
    if limit > 0 {
        items.truncate(limit as usize);
    }
    let items: Vec<Value> = items
        .iter()
        .map(abstractgateway_kg::Assertion::to_json)
        .collect();
    let owner_id = if scope != "all" && !all_owners {
        resolved
    } else {
        None
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"ok": true, "scope": scope, "owner_id": owner_id, "count": items.len(), "items": items,
            "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) }}),
    ))
}
