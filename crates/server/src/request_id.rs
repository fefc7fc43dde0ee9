//! Outermost layer: the client IP (socket peer, or the first `X-Forwarded-For` hop when trusted) and the
//! `x-request-id` every `/api/gateway` response carries (the client's own, or a fresh uuid4 hex).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::response::Response;

use super::stack::Rest;
use super::state::AppState;

/// The request's id (echoed or generated).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The client IP the security layers key on.
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

impl ClientIp {
    /// True for 127.0.0.0/8, ::1 and `localhost`.
    pub fn is_loopback(&self) -> bool {
        super::config::is_loopback_host(&self.0)
    }
}

fn client_id_header(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty() && v.len() <= 200 && v.chars().all(|c| c.is_ascii_graphic()))
        .then(|| v.to_string())
}

/// The layer.
pub async fn layer(st: &AppState, mut req: Request, next: impl Rest) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let ip = if st.cfg.trust_proxy {
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or(peer)
    } else {
        peer
    };
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(client_id_header)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let gateway = req.uri().path().starts_with("/api/gateway");
    req.extensions_mut().insert(ClientIp(ip));
    req.extensions_mut().insert(RequestId(rid.clone()));
    let mut resp = next(req).await;
    if gateway && let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
