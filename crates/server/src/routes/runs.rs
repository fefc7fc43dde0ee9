//! Run endpoints (§1.1 #11-#16): start (with `Idempotency-Key`), schedule, summary, list, input data,
//! history bundle, plus `POST /runs/{id}/stream_token`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::bundle::ResolveError;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::bundles::require_bundle_mode;
use crate::run::{RunHead, RunState};
use crate::runner::StartRequest;
use crate::runner::schedule::ScheduleSpec;
use crate::state::{AppState, SharedState};
use crate::store::RunQuery;
use crate::wire::RunId;
use crate::wire::runs::{
    HistoryBundle, HistoryItem, HistoryLedger, HistoryQuery, HistoryRun, HistorySession, InputData,
    Limits, RunList, RunListItem, RunListQuery, RunSummary, ScheduleRun, StartRun, StreamToken,
    TimelineItem, TokenLimits, Waiting,
};

fn limits_of(run: &RunHead) -> Limits {
    let l = run.vars.limits.as_ref().and_then(Value::as_object);
    let get = |k: &str| l.and_then(|m| m.get(k)).cloned();
    let used = get("estimated_tokens_used")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let max = get("max_tokens").unwrap_or(json!(32768));
    let pct = max
        .as_f64()
        .filter(|m| *m > 0.0)
        .map(|m| ((used / m) * 10000.0).round() / 100.0)
        .unwrap_or(0.0);
    Limits {
        tokens: TokenLimits {
            estimated_used: get("estimated_tokens_used").unwrap_or(json!(0)),
            max_tokens: max,
            max_input_tokens: get("max_input_tokens").unwrap_or(Value::Null),
            pct,
            warn_tokens_pct: get("warn_tokens_pct").unwrap_or(json!(80)),
        },
    }
}

/// `RunSummary` in the seed's key order, plus `output` (a deliberate addition).
pub fn run_summary(run: &RunHead) -> RunSummary {
    let waiting = run.waiting.as_ref().map(|w| Waiting {
        reason: w.reason.as_str().to_string(),
        wait_key: w.wait_key.clone(),
        until: w.until.clone(),
        prompt: w.prompt.clone(),
        choices: w.choices.clone(),
        allow_free_text: w.allow_free_text,
        details: w.details.clone(),
    });
    let schedule = run
        .vars
        .meta
        .as_ref()
        .and_then(|m| m.get("schedule"))
        .cloned();
    RunSummary {
        run_id: run.run_id.clone(),
        workflow_id: run.workflow_id.clone(),
        status: run.status.into(),
        current_node: run.current_node.clone(),
        created_at: run.created_at.clone(),
        updated_at: run.updated_at.clone(),
        actor_id: run.actor_id.clone(),
        session_id: run.session_id.clone(),
        parent_run_id: run.parent_run_id.clone(),
        error: run.error.clone(),
        paused: run.control.paused,
        pause_reason: run.control.pause_reason.clone(),
        paused_at: run.control.paused_at.clone(),
        resumed_at: run.control.resumed_at.clone(),
        waiting,
        is_scheduled: run.workflow_id.starts_with("scheduled:"),
        schedule,
        limits: limits_of(run),
        output: run.output.clone(),
    }
}

/// Loads a run or answers 404.
pub fn load_run(st: &AppState, run_id: &str) -> Result<RunState, ApiError> {
    st.gw
        .store()
        .get_run(run_id)?
        .ok_or_else(|| ApiError::run_not_found(run_id))
}

/// Start a run.
///
/// Honours `Idempotency-Key`: a start repeated with the same key answers the first run's id. 409 when the
/// entrypoint is deprecated.
#[utoipa::path(post, path = "/api/gateway/runs/start", tag = "runs",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried start answer the first run")),
    request_body = StartRun,
    responses((status = 200, description = "The run started", body = RunId),
              (status = 404, description = "No such bundle, flow or workflow", body = ErrorBody),
              (status = 409, description = "The entrypoint is deprecated", body = ErrorBody)))]
pub async fn start(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RunId>> {
    let StartRun {
        bundle_id,
        bundle_version,
        flow_id,
        input_data: input,
        session_id,
    } = StartRun::parse(&headers, &body)?;
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            format!(
                "idem:runs/start:{}",
                hex::encode(Sha256::digest(k.as_bytes()))
            )
        });
    let _guard = match &idem {
        Some(_) => Some(st.idem_lock.lock().await),
        None => None,
    };
    if let Some(key) = &idem
        && let Some(prev) = st.gw.store().get_meta(key)?
    {
        return Ok(Json(RunId {
            run_id: String::from_utf8_lossy(&prev).into_owned(),
        }));
    }
    let (workflow_id, sha, bundle_id, flow) = if st.cfg.workflow_source == "visualflow" {
        // Loose flows: the flow id is the workflow id; a bundle id is ignored, as by the seed.
        let Some(flow) = flow_id
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
        else {
            return Err(ApiError::bad_request(if bundle_id.is_some() {
                "Failed to start run: flow_id is required"
            } else {
                "flow_id is required (or provide bundle_id to start a bundle entrypoint)"
            }));
        };
        if !st.visualflows.read().contains_key(&flow) {
            return Err(ApiError::not_found(format!("Flow '{flow}' not found")));
        }
        (flow.clone(), None, String::new(), flow)
    } else {
        resolve_bundle_start(&st, bundle_id, bundle_version, flow_id)?
    };
    if !bundle_id.is_empty()
        && let Some(dep) = st.deprecation(&bundle_id, &flow)
    {
        let reason = dep
            .get("reason")
            .and_then(Value::as_str)
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Workflow '{bundle_id}:{flow}' is deprecated{reason}"),
        ));
    }
    let req = StartRequest {
        workflow_id,
        input,
        session_id,
        bundle_sha256: sha,
        idempotency_key: idem,
    };
    let run_id = st
        .gw
        .clone()
        .start_run_async(req)
        .await
        .map_err(|e| ApiError::start_refused(e, "start"))?;
    Ok(Json(RunId { run_id }))
}

/// What a bundle-mode start names: `(workflow id, bundle sha256, bundle id, flow id)`; a verbatim workflow id
/// that is loaded (a generated flow) starts as is.
fn resolve_bundle_start(
    st: &SharedState,
    bundle_id: Option<String>,
    bundle_version: Option<String>,
    flow_id: Option<String>,
) -> Result<(String, Option<String>, String, String), ApiError> {
    let resolved = st.bundles.read().resolve_flow(
        bundle_id.as_deref(),
        bundle_version.as_deref(),
        flow_id.as_deref(),
    );
    Ok(match resolved {
        Ok((b, flow)) => (
            b.workflow_id(&flow),
            Some(b.sha256.clone()),
            b.bundle_id().to_string(),
            flow,
        ),
        Err(e) => match e.verbatim_workflow_id() {
            Some(w) if st.gw.flows().get(w).is_some() => {
                (w.to_string(), None, String::new(), w.to_string())
            }
            _ => return Err(e.into()),
        },
    })
}

/// Schedule a run.
///
/// Validated as the seed does, then a generated wrapper run (`scheduled:<uuid>`) waits for `start_at`, runs the
/// target as a child and repeats on `interval`.
#[utoipa::path(post, path = "/api/gateway/runs/schedule", tag = "runs",
    request_body = ScheduleRun,
    responses((status = 200, description = "The schedule's wrapper run", body = RunId),
              (status = 404, description = "No such target workflow", body = ErrorBody),
              (status = 409, description = "The target is deprecated", body = ErrorBody)))]
pub async fn schedule(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RunId>> {
    require_bundle_mode(&st)?;
    let ScheduleRun {
        bundle_id,
        bundle_version,
        flow_id,
        input_data: input,
        repeat_count,
        interval,
        repeat_until,
        start_at,
        session_id,
        share_context,
    } = ScheduleRun::parse(&headers, &body)?;
    if bundle_id.trim().is_empty() || flow_id.trim().is_empty() {
        return Err(ApiError::bad_request("bundle_id and flow_id are required"));
    }
    let (b, flow) = st
        .bundles
        .read()
        .resolve_flow(Some(&bundle_id), bundle_version.as_deref(), Some(&flow_id))
        .map_err(|e| match e {
            ResolveError::NotFound { .. } => {
                ApiError::not_found(format!("Target workflow '{bundle_id}:{flow_id}' not found"))
            }
            e @ ResolveError::BadRequest(_) => e.into(),
        })?;
    if st.deprecation(b.bundle_id(), &flow).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Workflow '{}:{flow}' is deprecated", b.bundle_id()),
        ));
    }
    let spec = ScheduleSpec {
        target_workflow_id: b.workflow_id(&flow),
        target_bundle_id: b.bundle_id().to_string(),
        target_bundle_version: b.bundle_version().to_string(),
        target_flow_id: flow,
        input,
        start_at,
        interval,
        repeat_count,
        repeat_until,
        share_context,
        session_id,
    };
    let gw = st.gw.clone();
    let run = tokio::task::spawn_blocking(move || gw.schedule_run(spec))
        .await
        .map_err(|e| ApiError::internal(format!("schedule task failed: {e}")))?
        .map_err(|e| ApiError::start_refused(e, "schedule"))?;
    Ok(Json(RunId { run_id: run.run_id }))
}

/// Run summary (with output).
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path)),
    responses((status = 200, description = "The run", body = RunSummary),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn get(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunSummary>> {
    let head = st
        .gw
        .store()
        .get_run_head(&run_id)?
        .ok_or_else(|| ApiError::run_not_found(&run_id))?;
    Ok(Json(run_summary(&head)))
}

/// List runs, most recent first.
#[utoipa::path(get, path = "/api/gateway/runs", tag = "runs",
    params(RunListQuery),
    responses((status = 200, description = "The runs", body = RunList),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
pub async fn list(
    State(st): State<SharedState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<RunList>> {
    let (q, status) = RunListQuery::parse(q.as_deref())?;
    let all_workflows = q.workflow_id.is_some();
    let query = RunQuery {
        limit: q.limit as usize,
        status,
        workflow_id: q.workflow_id,
        session_id: q.session_id,
        root_only: q.root_only,
    };
    let (with_len, with_metrics) = (q.include_ledger_len, q.include_metrics);
    let st2 = st.clone();
    // Listing and metrics read the store (metrics whole ledgers): off the async executor.
    let items = tokio::task::spawn_blocking(move || {
        list_items(&st2, &query, all_workflows, with_len, with_metrics)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(RunList { items }))
}

/// Most ledger records one listing with `include_metrics` reads; runs past it report `steps: null`.
pub const MAX_METRICS_RECORDS: u64 = 200_000;

fn list_items(
    st: &AppState,
    query: &RunQuery,
    all_workflows: bool,
    with_len: bool,
    with_metrics: bool,
) -> Result<Vec<RunListItem>, ApiError> {
    let runs = st.gw.store().list_run_heads(query)?;
    let mut items = Vec::with_capacity(runs.len());
    let mut scan_left = MAX_METRICS_RECORDS;
    for run in runs
        .iter()
        .filter(|r| all_workflows || !r.workflow_id.starts_with("__"))
    {
        let mut item = RunListItem {
            summary: run_summary(run),
            ledger_len: with_len.then(|| st.gw.store().ledger_len(&run.run_id)),
            steps: None,
            llm_calls: None,
            tool_calls: None,
            tokens_total: None,
        };
        if with_metrics {
            item.steps = Some(completed_steps(st, &run.run_id, &mut scan_left)?);
            item.llm_calls = Some(0);
            item.tool_calls = Some(0);
            item.tokens_total = Some(None);
        }
        items.push(item);
    }
    Ok(items)
}

/// The run's completed steps, or `None` when its ledger is longer than the `scan_left` records the
/// listing may still read.
fn completed_steps(
    st: &AppState,
    run_id: &str,
    scan_left: &mut u64,
) -> Result<Option<u64>, ApiError> {
    let len = st.gw.store().ledger_len(run_id);
    if len > *scan_left {
        return Ok(None);
    }
    *scan_left -= len;
    let mut n = 0;
    let mut after = 0;
    loop {
        let page = st.gw.store().ledger_after(run_id, after, 2000)?;
        if page.is_empty() || after >= len {
            return Ok(Some(n));
        }
        for e in &page {
            after = e.seq;
            if e.json.get().contains("\"status\":\"completed\"") {
                n += 1;
            }
        }
    }
}

/// Start inputs of a run.
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/input_data", tag = "runs",
    params(("run_id" = String, Path)),
    responses((status = 200, description = "The run's start inputs", body = InputData),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn input_data(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<InputData>> {
    let run = load_run(&st, &run_id)?;
    let (bref, flow_id) = run
        .workflow_id
        .split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    let (bundle_id, bundle_version) = match bref.split_once('@') {
        Some((i, v)) => (i.to_string(), Some(v.to_string())),
        None => (bref.clone(), None),
    };
    let bundle = st
        .bundles
        .read()
        .find_workflow(&run.workflow_id)
        .map(|(b, _)| b);
    let pins: Vec<String> = bundle
        .map(|b| b.entry_inputs(&flow_id).into_iter().map(|i| i.id).collect())
        .unwrap_or_default();
    let data: Map<String, Value> = if pins.is_empty() {
        run.vars
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        pins.iter()
            .filter_map(|p| run.vars.get(p).map(|v| (p.clone(), v.clone())))
            .collect()
    };
    Ok(Json(InputData {
        run_id: run.run_id,
        workflow_id: run.workflow_id,
        bundle_id,
        bundle_version,
        flow_id,
        pin_ids: pins,
        input_data: data,
    }))
}

fn descendants(st: &AppState, root: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root.to_string()]);
    while let Some(id) = queue.pop_front() {
        for c in st.gw.store().child_run_ids(&id)? {
            if out.len() >= 2000 {
                return Ok(out);
            }
            out.push(c.clone());
            queue.push_back(c);
        }
    }
    Ok(out)
}

/// Most ledger records one history bundle holds over all its runs, and their bytes: a `full` bundle of a
/// huge tree stops there (its ledgers say `truncated`, and `cursor_end` where they stopped).
pub const MAX_HISTORY_ITEMS: usize = 100_000;
pub const MAX_HISTORY_BYTES: usize = 64 << 20;

/// RunHistoryBundle v1: the run tree's ledgers and timeline.
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/history_bundle", tag = "runs",
    params(("run_id" = String, Path), HistoryQuery),
    responses((status = 200, description = "The history bundle", body = HistoryBundle),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn history_bundle(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<HistoryBundle>> {
    // Whole-ledger reads: off the async executor.
    tokio::task::spawn_blocking(move || history_bundle_blocking(&st, run_id, q))
        .await
        .map_err(|e| ApiError::internal(format!("history bundle failed: {e}")))?
}

fn history_bundle_blocking(
    st: &AppState,
    run_id: String,
    q: Option<String>,
) -> ApiResult<Json<HistoryBundle>> {
    let HistoryQuery {
        include_subruns,
        include_session,
        ledger_max_items: max_items,
        ledger_mode: mut mode,
        ..
    } = HistoryQuery::parse(q.as_deref())?;
    let run = load_run(st, &run_id)?;
    let mut ids = vec![run_id.clone()];
    if include_subruns {
        ids.extend(descendants(st, &run_id)?);
    }
    if max_items <= 0 && mode == "tail" {
        mode = "full".into();
    }
    let max_items = if max_items > 0 {
        max_items as u64
    } else {
        2000
    };
    let mut ledgers = Map::new();
    let mut timeline = Vec::new();
    let (mut items_left, mut bytes_left) = (MAX_HISTORY_ITEMS, MAX_HISTORY_BYTES);
    for rid in &ids {
        let total = st.gw.store().ledger_len(rid);
        let start = if mode == "tail" && total > max_items {
            total - max_items
        } else {
            0
        };
        let mut items = Vec::new();
        let mut after = start;
        let mut truncated = false;
        'pages: loop {
            let page = st.gw.store().ledger_after(rid, after, 2000)?;
            if page.is_empty() {
                break;
            }
            for e in page {
                let size = e.json.get().len();
                if items_left == 0 || size > bytes_left {
                    truncated = true;
                    break 'pages;
                }
                items_left -= 1;
                bytes_left -= size;
                after = e.seq;
                let rec: Value = serde_json::from_str(e.json.get()).unwrap_or(Value::Null);
                let eff_type = rec
                    .get("effect")
                    .and_then(|x| x.get("type"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let ended = rec
                    .get("ended_at")
                    .filter(|v| !v.is_null())
                    .or(rec.get("started_at"))
                    .cloned();
                let dur = match (
                    rec.get("started_at")
                        .and_then(Value::as_str)
                        .and_then(crate::time::parse_iso),
                    ended
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(crate::time::parse_iso),
                ) {
                    (Some(s), Some(e)) => {
                        Some((((e - s).as_seconds_f64() * 1000.0).max(0.0) * 100.0).round() / 100.0)
                    }
                    _ => None,
                };
                timeline.push(TimelineItem {
                    run_id: rid.clone(),
                    cursor: e.seq,
                    node_id: rec.get("node_id").cloned(),
                    status: rec.get("status").cloned(),
                    effect_type: eff_type,
                    started_at: rec.get("started_at").cloned(),
                    ended_at: ended,
                    duration_ms: dur,
                });
                items.push(HistoryItem {
                    cursor: e.seq,
                    record: rec,
                });
            }
        }
        let n = items.len() as u64;
        let ledger = HistoryLedger {
            run_id: rid.clone(),
            total,
            cursor_start: start + 1,
            cursor_end: start + n,
            items,
            artifacts: Vec::new(),
            truncated,
        };
        ledgers.insert(
            rid.clone(),
            serde_json::to_value(ledger).unwrap_or(Value::Null),
        );
    }
    let input: Map<String, Value> = run
        .vars
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let waiting = run
        .waiting
        .as_ref()
        .map(|w| serde_json::to_value(w).unwrap_or(Value::Null));
    let session = if include_session {
        run.session_id.as_ref().map(|s| HistorySession {
            session_id: s.clone(),
            turns: Vec::new(),
        })
    } else {
        None
    };
    Ok(Json(HistoryBundle {
        version: 1,
        generated_at: crate::time::now_iso(),
        root_run_id: run.run_id.clone(),
        run: HistoryRun {
            run_id: run.run_id.clone(),
            workflow_id: run.workflow_id.clone(),
            status: run.status.into(),
            current_node: run.current_node.clone().unwrap_or_default(),
            created_at: run.created_at.clone(),
            updated_at: run.updated_at.clone(),
            actor_id: run.actor_id.clone(),
            session_id: run.session_id.clone(),
            parent_run_id: run.parent_run_id.clone(),
            error: run.error.clone(),
            waiting,
        },
        workflow_snapshot: None,
        input_data: input,
        ledgers,
        timeline,
        session,
    }))
}

/// Short-lived token for a browser EventSource.
///
/// For `?stream_token=` on this run's ledger stream, where a browser cannot send the bearer header.
#[utoipa::path(post, path = "/api/gateway/runs/{run_id}/stream_token", tag = "ledger",
    params(("run_id" = String, Path)),
    responses((status = 200, description = "The token", body = StreamToken),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn stream_token(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<StreamToken>> {
    load_run(&st, &run_id)?;
    let now = time::OffsetDateTime::now_utc();
    let (token, expires) = st
        .stream_tokens
        .issue(&run_id, now.unix_timestamp())
        .ok_or_else(|| ApiError::internal("cannot sign stream token"))?;
    let at = time::OffsetDateTime::from_unix_timestamp(expires)
        .map(crate::time::format_iso)
        .unwrap_or_default();
    Ok(Json(StreamToken {
        token,
        expires_at: at,
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(start))
        .documented(routes!(schedule))
        .documented(routes!(list))
        .documented(routes!(get))
        .documented(routes!(input_data))
        .documented(routes!(history_bundle))
        .documented(routes!(stream_token))
}
