//! Prometheus metrics at `GET /metrics`: one process-wide recorder (the `metrics` facade that the store, runner and
//! plugin host report to), the HTTP layer that counts requests by route template, SSE subscribers, and auth
//! failures. Every metric is listed in `docs/api.md` ("Metrics").
//!
//! `/metrics` needs the bearer token like the API unless `ABSTRACTGATEWAY_METRICS_PUBLIC` opens it.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parking_lot::RwLock;

/// Latency buckets (seconds) of every `*_seconds` histogram: 0.5 ms to 5 min.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];
/// Requests per group commit.
const BATCH: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use (with upkeep every 5 s, so histograms stay bounded whether or
/// not anyone scrapes). `None` when the operator turned metrics off (`ABSTRACTGATEWAY_METRICS=0`: nothing is
/// recorded, `/metrics` answers 503) or another recorder was installed first.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            if !super::config::parse_bool(std::env::var("ABSTRACTGATEWAY_METRICS").ok(), true) {
                return None;
            }
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("abstractgateway_store_commit_batch_size".into()),
                        BATCH,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => {
                    let upkeep = h.clone();
                    let _ = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(Duration::from_secs(5));
                                upkeep.run_upkeep();
                            }
                        });
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!("metrics are off: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Every metric the gateway reports, with its `# HELP` text (the same list as `docs/api.md`).
const DESCRIBED: &[(&str, &str)] = &[
    (
        "abstractgateway_runs_started_total",
        "Runs created (starts, schedules, listeners, children), by workflow.",
    ),
    (
        "abstractgateway_runs_finished_total",
        "Runs that reached a terminal status, by workflow and status.",
    ),
    (
        "abstractgateway_run_duration_seconds",
        "From creation to terminal status, by workflow and status.",
    ),
    (
        "abstractgateway_ready_queue_depth",
        "Runs ready to step after the runner's last round.",
    ),
    (
        "abstractgateway_store_commit_batch_size",
        "Requests carried by one group commit.",
    ),
    (
        "abstractgateway_store_commit_seconds",
        "One group commit: write and fsync (cluster: append and apply).",
    ),
    (
        "abstractgateway_store_fsync_seconds",
        "The fsync of one group commit (embedded store).",
    ),
    (
        "abstractgateway_ledger_records_appended_total",
        "Ledger records made durable in this node's store.",
    ),
    (
        "abstractgateway_commands_total",
        "Commands applied or rejected, by type and outcome.",
    ),
    (
        "abstractgateway_plugin_node_executions_total",
        "Plugin node executions, by component and outcome.",
    ),
    (
        "abstractgateway_plugin_node_seconds",
        "Plugin node execution time, by component.",
    ),
    (
        "abstractgateway_host_calls_total",
        "Live host calls of components, by capability and outcome.",
    ),
    (
        "abstractgateway_plugin_instances_in_use",
        "Component instances running now, by admission class.",
    ),
    ("abstractgateway_sse_subscribers", "Open ledger streams."),
    (
        "abstractgateway_http_requests_total",
        "HTTP requests, by route template, method and status.",
    ),
    (
        "abstractgateway_http_request_seconds",
        "HTTP request time until the response head, by route template.",
    ),
    (
        "abstractgateway_auth_failures_total",
        "Requests refused for their credentials, by reason.",
    ),
    (
        "abstractgateway_auth_lockouts_total",
        "Addresses locked out after repeated failures.",
    ),
];

/// Installs the recorder (idempotent); called when the server state is built, before anything is measured.
pub fn install() {
    if handle().is_some() {
        for (name, help) in DESCRIBED {
            metrics::describe_counter!(*name, *help);
        }
    }
}

/// Prometheus metrics (open with `ABSTRACTGATEWAY_METRICS_PUBLIC`).
///
/// The Prometheus text format; each metric is described in docs/api.md.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
              (status = 503, description = "Metrics are off (ABSTRACTGATEWAY_METRICS=0)", body = crate::error::ErrorBody)))]
pub async fn scrape() -> Response {
    let Some(h) = handle() else {
        return super::error::middleware_reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "Metrics are off on this gateway (ABSTRACTGATEWAY_METRICS=0)",
        );
    };
    let mut r = h.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Inside routing: hands the matched route template out to [`layer`] on the response.
pub async fn mark_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// The outermost HTTP layer: requests by route template (never the raw path: ids would grow the label set),
/// method and status, and their duration. A request refused before routing (auth, origin, limits) is counted
/// under the route `(refused)`; an unknown path under `(unmatched)`.
pub async fn layer(req: Request, next: impl super::stack::Rest) -> Response {
    use axum::http::Method;
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let resp = next(req).await;
    let route = match resp.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str(),
        None if resp.status() == StatusCode::NOT_FOUND => "(unmatched)",
        None => "(refused)",
    };
    let (requests, seconds) = http_handles(route, method, resp.status().as_u16());
    requests.increment(1);
    seconds.record(started.elapsed().as_secs_f64());
    resp
}

/// The handles of one route's HTTP metrics.
struct RouteHandles {
    seconds: metrics::Histogram,
    /// One request counter per method and status seen on the route.
    requests: Vec<(&'static str, u16, metrics::Counter)>,
}

/// The HTTP metrics' handles, kept: registering a labelled metric builds and hashes its key (a few thousand
/// instructions and allocations per request), a kept handle is an atomic add. The keys are bounded like the
/// labels: route templates, eight method names, status codes.
static HTTP_HANDLES: LazyLock<RwLock<HashMap<String, RouteHandles>>> =
    LazyLock::new(Default::default);

fn http_handles(
    route: &str,
    method: &'static str,
    status: u16,
) -> (metrics::Counter, metrics::Histogram) {
    let find = |h: &RouteHandles| {
        h.requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
            .map(|(_, _, c)| (c.clone(), h.seconds.clone()))
    };
    if let Some(found) = HTTP_HANDLES.read().get(route).and_then(find) {
        return found;
    }
    let mut all = HTTP_HANDLES.write();
    let h = all.entry(route.to_string()).or_insert_with(|| RouteHandles {
        seconds: metrics::histogram!("abstractgateway_http_request_seconds", "route" => route.to_string()),
        requests: Vec::new(),
    });
    if let Some(found) = find(h) {
        return found;
    }
    let counter = metrics::counter!("abstractgateway_http_requests_total", "route" => route.to_string(),
        "method" => method, "status" => status.to_string());
    h.requests.push((method, status, counter.clone()));
    (counter, h.seconds.clone())
}

/// One request refused for its credentials (`missing`, `invalid`), or because its address is locked out.
pub fn auth_failure(reason: &'static str) {
    metrics::counter!("abstractgateway_auth_failures_total", "reason" => reason).increment(1);
}

/// An address was locked out after repeated failures.
pub fn lockout() {
    metrics::counter!("abstractgateway_auth_lockouts_total").increment(1);
}

/// An SSE subscriber, counted for as long as its stream lives.
pub struct SseSubscriber(());

impl SseSubscriber {
    pub fn start() -> SseSubscriber {
        metrics::gauge!("abstractgateway_sse_subscribers").increment(1.0);
        SseSubscriber(())
    }
}

impl Drop for SseSubscriber {
    fn drop(&mut self) {
        metrics::gauge!("abstractgateway_sse_subscribers").decrement(1.0);
    }
}
