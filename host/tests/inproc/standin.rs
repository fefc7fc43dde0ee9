//! A local HTTP stand-in for external services: answers `GET /step/{i}` with `step-{i}` and counts requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

/// A running stand-in (on its own thread until the process ends): its base URL and the requests it has seen.
pub struct StepServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl StepServer {
    /// Starts on a free loopback port; usable from sync and async tests alike.
    pub fn start() -> StepServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/step/{i}", get(step))
            .with_state(hits.clone());
        let url = format!("http://{}", serve_on_thread(app));
        StepServer { url, hits }
    }

    /// Requests seen so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Serves `app` on a free loopback port from its own thread (usable from sync and async tests alike, and
/// alive until the process ends); returns the address.
pub fn serve_on_thread(app: Router) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(l, app).await;
        });
    });
    addr
}

async fn step(State(hits): State<Arc<AtomicUsize>>, Path(i): Path<u32>) -> String {
    hits.fetch_add(1, Ordering::SeqCst);
    format!("step-{i}")
}
