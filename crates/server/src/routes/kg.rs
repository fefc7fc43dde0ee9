//! `POST /kg/query`: the knowledge-graph memory as the seed serves it (the same owners, scopes, filters, order and
//! errors), read from the triple store the `memory_kg_*` nodes write. A client with the gateway's token may read
//! any owner, as on the seed; it never writes.

use abstractgateway_kg::effects::{self, RunInfo};
use abstractgateway_kg::{Graph, Query};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::observer::find_run;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::run::RunState;
use crate::state::SharedState;
use crate::wire::kg::{KgQuery, KgQueryResult};

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

/// Query the knowledge-graph memory (run, session, global or all owners).
///
/// What an owner cannot answer (or a run that is not found with `scope` `all` and a `session_id`) is a warning,
/// not an error.
#[utoipa::path(post, path = "/api/gateway/kg/query", tag = "kg",
    request_body = KgQuery,
    responses((status = 200, description = "The assertions", body = KgQueryResult),
              (status = 400, description = "Unknown scope, a combination that is refused, or no owner to read", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn query(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<KgQueryResult>> {
    let KgQuery {
        run_id: rid,
        session_id: sid,
        scope,
        owner_id: owner,
        subject,
        predicate,
        object,
        since,
        until,
        active_at,
        query_text,
        order,
        all_owners,
        limit,
    } = KgQuery::parse(&headers, &body)?;
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
    let owner_id = if scope != "all" && !all_owners {
        resolved
    } else {
        None
    };
    Ok(Json(KgQueryResult {
        ok: true,
        scope,
        owner_id,
        count: items.len(),
        items: items.into_iter().map(Into::into).collect(),
        warnings: (!warnings.is_empty()).then_some(warnings),
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().documented(routes!(query))
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use abstractgateway_kg::Assertion;

    use crate::wire::kg::KgAssertion;

    #[test]
    fn an_assertion_answers_the_bytes_of_its_json() {
        let mut provenance = Map::new();
        provenance.insert("span_id".into(), json!("sp1"));
        let full = Assertion {
            assertion_id: Some("a1".into()),
            subject: "ex:alice".into(),
            predicate: "schema:knows".into(),
            object: "ex:bob".into(),
            scope: "session".into(),
            owner_id: Some("session_memory_s1".into()),
            observed_at: "2025-01-01T00:00:00+00:00".into(),
            valid_from: Some("2025-01-01".into()),
            valid_until: Some("2026-01-01".into()),
            confidence: Some(0.1 + 0.2),
            provenance,
            attributes: Map::new(),
        };
        let bare = Assertion {
            assertion_id: None,
            owner_id: None,
            valid_from: None,
            valid_until: None,
            confidence: None,
            ..full.clone()
        };
        let odd = Assertion {
            confidence: Some(f64::NAN),
            ..bare.clone()
        };
        for a in [full, bare, odd] {
            let old = serde_json::to_string(&a.to_json()).ok();
            assert_eq!(serde_json::to_string(&KgAssertion::from(a)).ok(), old);
        }
    }
}
