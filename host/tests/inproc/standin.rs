//! A local HTTP stand-in for external services: answers `GET /step/{i}` with `step-{i}` and counts requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

/// A running stand-in: its base URL and how many requests it has seen.
pub struct StepServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl StepServer {
    /// Starts on a free loopback port.
    pub fn start() -> StepServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt");
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/step/{i}", get(step))
            .with_state(hits.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StepServer { url, hits, _rt: rt }
    }

    /// Requests seen so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn step(State(hits): State<Arc<AtomicUsize>>, Path(i): Path<u32>) -> String {
    hits.fetch_add(1, Ordering::SeqCst);
    format!("step-{i}")
}
