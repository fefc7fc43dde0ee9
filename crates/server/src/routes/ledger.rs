//! Ledger replay (§1.1 #17, #18) and the push-based SSE stream (#19).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::{ApiError, ApiResult, raw_json};
use crate::extract::{BodyFields, QueryParams, json_object};
use crate::routes::runs::load_run;
use crate::sse_tail::Tail;
use crate::state::SharedState;
use crate::store::{LedgerEntry, Store};

/// Most runs one batch request may ask for (the seed has no cap).
const MAX_BATCH_RUNS: usize = 500;
/// Records read per store page by a stream.
const STREAM_PAGE: usize = 256;
/// Reconnect delay suggested to SSE clients.
const RETRY_MS: u64 = 1000;
/// Most record bytes one page (or one batch, over all its runs) answers with. A page holds at least one
/// record, so a client paging with `next_after` always moves on; the rest comes on its next page.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// The longest prefix of `items` within `budget` bytes (at least one record when `at_least_one`); the
/// budget left is reduced by what is kept.
fn fit(mut items: Vec<LedgerEntry>, budget: &mut usize, at_least_one: bool) -> Vec<LedgerEntry> {
    let mut used = 0;
    let keep = items
        .iter()
        .take_while(|e| {
            let n = e.json.get().len() + 1;
            let fits = used + n <= *budget || (at_least_one && used == 0);
            if fits {
                used += n;
            }
            fits
        })
        .count();
    items.truncate(keep);
    *budget = budget.saturating_sub(used);
    items
}

fn page_json(items: &[LedgerEntry], next_after: u64) -> String {
    let mut s =
        String::with_capacity(64 + items.iter().map(|e| e.json.get().len() + 1).sum::<usize>());
    s.push_str("{\"items\":[");
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(e.json.get());
    }
    s.push_str("],\"next_after\":");
    s.push_str(&next_after.to_string());
    s.push('}');
    s
}

/// `GET /api/gateway/runs/{run_id}/ledger?after=&limit=` (404 for an unknown run: a deliberate difference).
pub async fn ledger(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let mut q = QueryParams::parse(q.as_deref());
    let after = q.int("after", 0, Some(0), None) as u64;
    let limit = q.int("limit", 200, Some(1), Some(2000)) as usize;
    q.finish()?;
    let store = st.gw.store().clone();
    // Store reads of up to `limit` records: off the async executor.
    let page = tokio::task::spawn_blocking(move || {
        if store.ledger_len(&run_id) == 0 && store.get_run(&run_id)?.is_none() {
            return Err(ApiError::run_not_found(&run_id));
        }
        let mut budget = MAX_PAGE_BYTES;
        let items = fit(
            store.ledger_after(&run_id, after, limit)?,
            &mut budget,
            true,
        );
        let next = after + items.len() as u64;
        Ok(page_json(&items, next))
    })
    .await
    .map_err(|e| ApiError::internal(format!("ledger read failed: {e}")))??;
    Ok(raw_json(StatusCode::OK, page))
}

/// `POST /api/gateway/runs/ledger/batch`.
pub async fn batch(State(st): State<SharedState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let obj = json_object(&headers, &body)?;
    let mut f = BodyFields::new(&obj);
    let limit = f.opt_int("limit", Some(1), Some(2000)).unwrap_or(200) as usize;
    let mut wanted: Vec<(String, u64)> = Vec::new();
    match obj.get("runs") {
        None => f.push(json!({"type": "missing", "loc": ["body", "runs"], "msg": "Field required", "input": Value::Object(obj.clone())})),
        Some(Value::Array(a)) => {
            for (i, r) in a.iter().enumerate() {
                let rid = r.get("run_id").and_then(Value::as_str);
                let after = r.get("after").map(|v| v.as_i64()).unwrap_or(Some(0));
                match (rid, after) {
                    (Some(id), Some(n)) if n >= 0 => wanted.push((id.to_string(), n as u64)),
                    (None, _) => f.push(json!({"type": "missing", "loc": ["body", "runs", i, "run_id"], "msg": "Field required", "input": r})),
                    (_, Some(n)) => f.push(json!({"type": "greater_than_equal", "loc": ["body", "runs", i, "after"], "msg": "Input should be greater than or equal to 0", "input": n, "ctx": {"ge": 0}})),
                    (_, None) => f.push(json!({"type": "int_type", "loc": ["body", "runs", i, "after"], "msg": "Input should be a valid integer", "input": r.get("after")})),
                }
            }
            if a.len() > MAX_BATCH_RUNS {
                f.push(json!({"type": "too_long", "loc": ["body", "runs"], "msg": format!("List should have at most {MAX_BATCH_RUNS} items after validation, not {}", a.len()), "input": null, "ctx": {"field_type": "List", "max_length": MAX_BATCH_RUNS, "actual_length": a.len()}}));
            }
        }
        Some(other) => f.push(json!({"type": "list_type", "loc": ["body", "runs"], "msg": "Input should be a valid list", "input": other})),
    }
    f.finish()?;
    // A run asked for twice is answered once, at its first place with its last cursor (the seed builds a
    // dict the same way), so the answer never holds a key twice.
    let mut runs: Vec<(String, u64)> = Vec::with_capacity(wanted.len());
    for (rid, after) in wanted {
        match runs.iter_mut().find(|(r, _)| *r == rid) {
            Some(slot) => slot.1 = after,
            None => runs.push((rid, after)),
        }
    }
    let store = st.gw.store().clone();
    let body = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let mut budget = MAX_PAGE_BYTES;
        let mut s = String::from("{\"runs\":{");
        for (i, (rid, after)) in runs.iter().enumerate() {
            let items = if budget == 0 {
                Vec::new()
            } else {
                fit(store.ledger_after(rid, *after, limit)?, &mut budget, i == 0)
            };
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::to_string(rid).unwrap_or_default());
            s.push(':');
            s.push_str(&page_json(&items, after + items.len() as u64));
        }
        s.push_str("}}");
        Ok(s)
    })
    .await
    .map_err(|e| ApiError::internal(format!("ledger read failed: {e}")))??;
    Ok(raw_json(StatusCode::OK, body))
}

/// One `event: step` frame in the seed's framing (spaced JSON, non-ASCII kept).
pub fn step_frame(e: &LedgerEntry) -> String {
    let rec: Value = serde_json::from_str(e.json.get()).unwrap_or(Value::Null);
    let data = pycompat::json::dumps(&json!({"cursor": e.seq, "record": rec}), false);
    format!("id: {}\nevent: step\ndata: {data}\n\n", e.seq)
}

fn done_frame(run_id: &str, cursor: u64) -> String {
    let data = pycompat::json::dumps(
        &json!({"run_id": run_id, "cursor": cursor, "status": "terminal"}),
        false,
    );
    format!("event: done\ndata: {data}\n\n")
}

/// Where a ledger stream starts and how often it sends a keep-alive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamParams {
    /// The seq of the last record the client has; the stream sends the records after it.
    pub after: u64,
    /// Idle time after which a keep-alive comment is sent.
    pub heartbeat: Duration,
}

/// Reads a stream request's `?after=&heartbeat_s=` (a 422 when one is invalid) and its `Last-Event-ID`.
/// A browser reconnect repeats the original URL, so a valid `Last-Event-ID` wins over `after`; one that is
/// not a seq is ignored, as a fresh connection would be.
pub fn stream_params(
    raw_query: Option<&str>,
    last_event_id: Option<&HeaderValue>,
) -> Result<StreamParams, ApiError> {
    let mut q = QueryParams::parse(raw_query);
    let mut after = q.int("after", 0, Some(0), None).max(0) as u64;
    let hb = q.float("heartbeat_s", 5.0, 0.1, 60.0);
    // Checked before `hb` is used: a NaN, negative or huge value would make `Duration` panic.
    q.finish()?;
    if let Some(last) = last_event_id
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        after = last;
    }
    Ok(StreamParams {
        after,
        heartbeat: Duration::from_secs_f64(hb),
    })
}

/// `GET /api/gateway/runs/{run_id}/ledger/stream?after=&heartbeat_s=` (also `Last-Event-ID`).
pub async fn stream(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let params = stream_params(q.as_deref(), headers.get("last-event-id"))?;
    load_run(&st, &run_id)?;
    let store = st.gw.store().clone();
    let pump = Pump {
        watch: store.watch_run(&run_id),
        tail: st.sse_tails.of(&run_id),
        store,
        run_id,
        cursor: params.after,
        hb: params.heartbeat,
        last_emit: Instant::now(),
        state: PumpState::Opening,
        _subscriber: crate::metrics::SseSubscriber::start(),
    };
    // The body polls the pump itself (no task or channel between them): hyper drops it when the client goes.
    let body = Body::from_stream(futures::stream::unfold(pump, |mut p| async move {
        p.next_chunk()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), p))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Where a stream stands in its life.
enum PumpState {
    /// The `retry:` hint is still to be sent.
    Opening,
    /// Sending records as they become durable.
    Following,
    /// The run ended and `event: done` was sent.
    Done,
}

/// Feeds one client from its own cursor, waking on every durable append through the run's watch channel. New
/// records come from the run's shared tail (read and encoded once for every stream); a client behind the tail reads
/// the store itself, so a slow client only delays itself.
struct Pump {
    store: Store,
    tail: Arc<Tail>,
    run_id: String,
    cursor: u64,
    hb: Duration,
    watch: tokio::sync::watch::Receiver<crate::store::RunHead>,
    last_emit: Instant,
    state: PumpState,
    _subscriber: crate::metrics::SseSubscriber,
}

impl Pump {
    /// The next bytes for the client; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        match self.state {
            PumpState::Opening => {
                self.state = PumpState::Following;
                return Some(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
            }
            PumpState::Done => return None,
            PumpState::Following => {}
        }
        loop {
            let head = *self.watch.borrow_and_update();
            let shared = self
                .tail
                .after(&self.store, &self.run_id, self.cursor, head.ledger_len);
            let chunk = match shared {
                Ok(Some((chunk, n))) => {
                    self.cursor += n;
                    (n > 0).then_some(chunk)
                }
                Ok(None) => self.catch_up()?,
                Err(e) => {
                    tracing::error!("ledger stream of run {}: {e}", self.run_id);
                    return None;
                }
            };
            if let Some(chunk) = chunk {
                self.last_emit = Instant::now();
                return Some(chunk);
            }
            if head.status.is_some_and(|s| s.is_terminal()) && self.cursor >= head.ledger_len {
                self.state = PumpState::Done;
                return Some(Bytes::from(done_frame(&self.run_id, self.cursor)));
            }
            tokio::select! {
                changed = self.watch.changed() => {
                    changed.ok()?;
                }
                _ = tokio::time::sleep_until(self.last_emit + self.hb) => {
                    self.last_emit = Instant::now();
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }

    /// One page of the records after the cursor, read and encoded for this client alone (it is behind the shared
    /// tail): `Some(None)` when there are none, `None` when the store failed.
    fn catch_up(&mut self) -> Option<Option<Bytes>> {
        let page = match self
            .store
            .ledger_after(&self.run_id, self.cursor, STREAM_PAGE)
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("ledger stream of run {}: {e}", self.run_id);
                return None;
            }
        };
        if page.is_empty() {
            return Some(None);
        }
        let mut chunk = String::new();
        for e in &page {
            chunk.push_str(&step_frame(e));
            self.cursor = e.seq;
        }
        Some(Some(Bytes::from(chunk)))
    }
}
