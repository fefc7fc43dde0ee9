//! Ledger replay (§1.1 #17, #18) and the push-based SSE stream (#19).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::{ApiError, ApiResult, Encoded, ErrorBody};
use crate::routes::runs::load_run;
use crate::sse_tail::Tail;
use crate::state::SharedState;
use crate::store::{LedgerEntry, Store};
use crate::wire::ledger::{
    LedgerBatch, LedgerBatchPages, LedgerBatchRun, LedgerPage, LedgerQuery, LedgerStreamQuery,
    RunPages,
};

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

/// A page of `items` read after cursor `after`: the records, moved as stored (not re-encoded).
fn page(items: Vec<LedgerEntry>, after: u64) -> LedgerPage {
    LedgerPage {
        next_after: after + items.len() as u64,
        items: items.into_iter().map(|e| e.json).collect(),
    }
}

/// Ledger page after a cursor.
///
/// The records after `after`: at most `limit`, and at most 16 MiB of them unless a single record is larger.
/// 404 for an unknown run (a deliberate difference from the seed).
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/ledger", tag = "ledger",
    params(("run_id" = String, Path), LedgerQuery),
    responses((status = 200, description = "The page", body = LedgerPage),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn ledger(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Encoded<LedgerPage>> {
    let LedgerQuery { after, limit } = LedgerQuery::parse(q.as_deref())?;
    let store = st.gw.store().clone();
    // Store reads of up to `limit` records: off the async executor.
    let answer = tokio::task::spawn_blocking(move || {
        if store.ledger_len(&run_id) == 0 && !store.run_exists(&run_id)? {
            return Err(ApiError::run_not_found(&run_id));
        }
        let mut budget = MAX_PAGE_BYTES;
        let items = fit(
            store.ledger_after(&run_id, after, limit as usize)?,
            &mut budget,
            true,
        );
        Encoded::new(&page(items, after))
    })
    .await
    .map_err(|e| ApiError::internal(format!("ledger read failed: {e}")))??;
    Ok(answer)
}

/// Ledger pages of several runs.
///
/// One page per run, as `GET /runs/{run_id}/ledger` answers it (an unknown run has an empty page); all the pages
/// together stop at 16 MiB of records, the first page holding at least one.
#[utoipa::path(post, path = "/api/gateway/runs/ledger/batch", tag = "ledger",
    request_body = LedgerBatch,
    responses((status = 200, description = "The pages, by run id", body = LedgerBatchPages)))]
pub async fn batch(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Encoded<LedgerBatchPages>> {
    let LedgerBatch {
        runs: wanted,
        limit,
    } = LedgerBatch::parse(&headers, &body)?;
    // A run asked for twice is answered once, at its first place with its last cursor (the seed builds a
    // dict the same way), so the answer never holds a key twice.
    let mut runs: Vec<(String, u64)> = Vec::with_capacity(wanted.len());
    for LedgerBatchRun { run_id: rid, after } in wanted {
        match runs.iter_mut().find(|(r, _)| *r == rid) {
            Some(slot) => slot.1 = after,
            None => runs.push((rid, after)),
        }
    }
    let store = st.gw.store().clone();
    // Reading and encoding up to 16 MiB of records: both off the async executor.
    tokio::task::spawn_blocking(move || {
        Encoded::new(&LedgerBatchPages {
            runs: RunPages(batch_pages(&store, runs, limit as usize)?),
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("ledger read failed: {e}")))?
}

/// The page of each run (store reads: call off the async executor), within one byte budget for them all.
fn batch_pages(
    store: &Store,
    runs: Vec<(String, u64)>,
    limit: usize,
) -> Result<Vec<(String, LedgerPage)>, ApiError> {
    let mut budget = MAX_PAGE_BYTES;
    let mut pages = Vec::with_capacity(runs.len());
    for (i, (rid, after)) in runs.into_iter().enumerate() {
        let items = if budget == 0 {
            Vec::new()
        } else {
            fit(store.ledger_after(&rid, after, limit)?, &mut budget, i == 0)
        };
        pages.push((rid, page(items, after)));
    }
    Ok(pages)
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
    // `parse` refuses a NaN, negative or huge `heartbeat_s`, which would make `Duration` panic.
    let LedgerStreamQuery {
        mut after,
        heartbeat_s,
    } = LedgerStreamQuery::parse(raw_query)?;
    if let Some(last) = last_event_id
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        after = last;
    }
    Ok(StreamParams {
        after,
        heartbeat: Duration::from_secs_f64(heartbeat_s),
    })
}

/// Ledger as server-sent events (Bearer or ?stream_token=).
///
/// `retry:`, then one `event: step` per record after the cursor (`id:` its cursor, `data:` `{"cursor", "record"}`)
/// as records become durable, a `: keep-alive` comment after `heartbeat_s` without one, and `event: done` once the
/// run has ended and every record was sent. A browser's `EventSource` authenticates with `?stream_token=` (see
/// `POST /runs/{run_id}/stream_token`).
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/ledger/stream", tag = "ledger",
    params(("run_id" = String, Path),
           LedgerStreamQuery,
           ("stream_token" = Option<String>, Query, description = "A token of `POST /runs/{run_id}/stream_token`, instead of the bearer token"),
           ("Last-Event-ID" = Option<String>, Header, description = "The cursor of the last record the client has (a reconnecting `EventSource` sends it); wins over `after`")),
    responses((status = 200, description = "The stream", content_type = "text/event-stream", body = String),
              (status = 404, description = "No such run", body = ErrorBody)))]
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
        heartbeat: Box::pin(tokio::time::sleep(params.heartbeat)),
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
    /// Due at or before `last_emit + hb`. It is moved only when it fires, not on every record: a timer reset is a
    /// lock on tokio's timer wheel, and one event to 1,000 streams would otherwise take it 2,000 times.
    heartbeat: std::pin::Pin<Box<tokio::time::Sleep>>,
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
                _ = self.heartbeat.as_mut() => {
                    let (now, due) = (Instant::now(), self.last_emit + self.hb);
                    if now >= due {
                        self.last_emit = now;
                        self.heartbeat.as_mut().reset(now + self.hb);
                        return Some(Bytes::from_static(b": keep-alive\n\n"));
                    }
                    // Records went out since it was set: wait out the rest of the quiet interval.
                    self.heartbeat.as_mut().reset(due);
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

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(batch))
        .documented(routes!(ledger))
        .documented(routes!(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, json: &str) -> LedgerEntry {
        LedgerEntry {
            seq,
            json: serde_json::value::RawValue::from_string(json.to_string()).expect("valid JSON"),
        }
    }

    #[test]
    fn pages_are_the_stored_records_verbatim() {
        // Spacing, key order, escapes and number spellings a re-encoding would change.
        let records = [r#"{"b": 1.0,"a":"\u00e9"}"#, r#"{"x":1e3}"#];
        let items: Vec<LedgerEntry> = records
            .iter()
            .enumerate()
            .map(|(i, r)| entry(i as u64 + 5, r))
            .collect();
        let answer = serde_json::to_string(&page(items, 4)).ok();
        let want = format!("{{\"items\":[{}],\"next_after\":6}}", records.join(","));
        assert_eq!(answer, Some(want));
        let empty = serde_json::to_string(&page(Vec::new(), 99)).ok();
        assert_eq!(empty.as_deref(), Some(r#"{"items":[],"next_after":99}"#));
        let batch = LedgerBatchPages {
            runs: RunPages(vec![
                ("r\"2".into(), page(vec![entry(1, "{}")], 0)),
                ("r1".into(), page(Vec::new(), 3)),
            ]),
        };
        assert_eq!(
            serde_json::to_string(&batch).ok().as_deref(),
            Some(
                r#"{"runs":{"r\"2":{"items":[{}],"next_after":1},"r1":{"items":[],"next_after":3}}}"#
            )
        );
    }
}
