//! A local HTTP stand-in for external services: answers `GET /step/{i}` (and `GET /{tag}/step/{i}`) with
//! `step-{i}` and counts requests, per path too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::routing::get;
use parking_lot::Mutex;

/// A running stand-in (on its own thread until the process ends): its base URL and the requests it has seen.
pub struct StepServer {
    pub url: String,
    seen: Arc<Seen>,
}

#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    by_path: Mutex<HashMap<String, usize>>,
    delay: Duration,
}

impl StepServer {
    /// Starts on a free loopback port; usable from sync and async tests alike.
    pub fn start() -> StepServer {
        Self::start_with_delay(Duration::ZERO)
    }

    /// Like [`StepServer::start`], each answer sent `delay` after its request arrived (and was counted).
    pub fn start_with_delay(delay: Duration) -> StepServer {
        let seen = Arc::new(Seen {
            delay,
            ..Seen::default()
        });
        let app = Router::new()
            .route("/step/{i}", get(step))
            .route("/{tag}/step/{i}", get(step))
            .with_state(seen.clone());
        let url = format!("http://{}", serve_on_thread(app));
        StepServer { url, seen }
    }

    /// Requests seen so far.
    pub fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    /// Requests seen so far, by path.
    pub fn hits_by_path(&self) -> HashMap<String, usize> {
        self.seen.by_path.lock().clone()
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

async fn step(State(seen): State<Arc<Seen>>, OriginalUri(uri): OriginalUri) -> String {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    *seen
        .by_path
        .lock()
        .entry(uri.path().to_string())
        .or_default() += 1;
    if !seen.delay.is_zero() {
        tokio::time::sleep(seen.delay).await;
    }
    let i = uri.path().rsplit('/').next().unwrap_or_default();
    format!("step-{i}")
}
