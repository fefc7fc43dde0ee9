//! Bearer-token auth for `/api/gateway/*`: constant-time compare against every configured token, the seed's
//! read/write protection rules, lockout of repeated failures (never applied to a valid token), and the signed
//! `?stream_token=` accepted on the ledger stream route only.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use parking_lot::Mutex;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::audit::{AuthInfo, token_fingerprint};
use super::error::middleware_reject;
use super::extract::serde_urlencoded_pairs;
use super::request_id::ClientIp;
use super::stack::Rest;
use super::state::AppState;

/// The bearer token of `Authorization: Bearer <t>` (scheme case-insensitive, token trimmed).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Which of `tokens` `presented` equals; every token is compared, in constant time each, whichever matches.
pub fn token_index(tokens: &[String], presented: &str) -> Option<usize> {
    let mut found = 0u64;
    for (i, t) in tokens.iter().enumerate() {
        found.conditional_assign(&(i as u64 + 1), t.as_bytes().ct_eq(presented.as_bytes()));
    }
    (found as usize).checked_sub(1)
}

/// The run id of a `/api/gateway/runs/{id}/ledger/stream` path.
pub fn stream_route_run(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix("/api/gateway/runs/")?
        .strip_suffix("/ledger/stream")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn rejected(status: StatusCode, detail: &str, retry_after: Option<u64>) -> Response {
    let mut r = middleware_reject(status, detail);
    if let Some(s) = retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Whether the layer guards `path` (by default: the operator may open `/metrics`, or turn security off). The
/// OpenAPI document marks these operations as needing the bearer token.
pub fn guarded_path(path: &str) -> bool {
    path.starts_with("/api/gateway") || path == METRICS_PATH
}

const METRICS_PATH: &str = "/metrics";

/// The layer.
pub async fn layer(st: &AppState, req: Request, next: impl Rest) -> Response {
    let cfg = &st.cfg;
    let path = req.uri().path().to_string();
    // `/metrics` tells how the gateway is used: it needs the token like the API unless the operator opens it.
    let metrics = path == METRICS_PATH;
    if !cfg.security || !guarded_path(&path) || metrics && cfg.metrics_public {
        return next(req).await;
    }
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .cloned()
        .unwrap_or(ClientIp("unknown".into()));
    let write = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let required = metrics
        || (write && cfg.protect_write)
        || (read && cfg.protect_read && !(cfg.dev_read_no_auth && ip.is_loopback()));
    let audited = req.extensions().get::<Arc<Mutex<AuthInfo>>>().cloned();
    if !required && audited.is_none() {
        // Nobody needs the token: neither this check nor an audit line.
        return next(req).await;
    }
    let presented = bearer(req.headers());
    let matched = presented
        .as_deref()
        .and_then(|t| token_index(&cfg.tokens, t));
    if let Some(cell) = audited {
        let mut info = cell.lock();
        info.required = required;
        info.token_fp = match (matched, presented.as_deref()) {
            (Some(i), _) => st.token_fps.get(i).cloned(),
            (None, t) => t.map(token_fingerprint),
        };
    }
    if !required {
        return next(req).await;
    }
    if cfg.tokens.is_empty() {
        return rejected(
            StatusCode::SERVICE_UNAVAILABLE,
            "Gateway auth required but no token configured",
            None,
        );
    }
    let mut valid = matched.is_some();
    if !valid
        && presented.is_none()
        && *req.method() == Method::GET
        && let Some(run_id) = stream_route_run(&path)
    {
        let token = req
            .uri()
            .query()
            .map(serde_urlencoded_pairs)
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "stream_token")
            .map(|(_, v)| v);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        valid = token.is_some_and(|t| st.stream_tokens.verify(run_id, &t, now));
    }
    if valid {
        st.lockout.success(&ip.0);
        return next(req).await;
    }
    if let Some(secs) = st.lockout.locked_for(&ip.0) {
        super::metrics::auth_failure("locked_out");
        return rejected(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests (auth lockout)",
            Some(secs),
        );
    }
    super::metrics::auth_failure(if presented.is_some() {
        "invalid"
    } else {
        "missing"
    });
    match st.lockout.fail(&ip.0) {
        Some(secs) => {
            super::metrics::lockout();
            rejected(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests (auth lockout)",
                Some(secs),
            )
        }
        None => rejected(StatusCode::UNAUTHORIZED, "Unauthorized", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_compare() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer  tok-1 ".parse().unwrap());
        assert_eq!(bearer(&h).as_deref(), Some("tok-1"));
        h.insert(header::AUTHORIZATION, "Basic tok-1".parse().unwrap());
        assert_eq!(bearer(&h), None);
        let toks = vec!["aaa".to_string(), "tok-1".to_string()];
        assert_eq!(token_index(&toks, "tok-1"), Some(1));
        assert_eq!(token_index(&toks, "aaa"), Some(0));
        assert_eq!(token_index(&toks, "tok-"), None);
        assert_eq!(token_index(&toks, "tok-12"), None);
        assert_eq!(token_index(&[], "x"), None);
        assert_eq!(
            stream_route_run("/api/gateway/runs/abc/ledger/stream"),
            Some("abc")
        );
        assert_eq!(stream_route_run("/api/gateway/runs/abc/ledger"), None);
    }
}
