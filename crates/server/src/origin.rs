//! One origin policy for both the allowlist check and CORS: an allowed origin is echoed with credentials,
//! a disallowed one is never echoed, and preflights are answered from the same allowlist.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::middleware_reject;
use super::stack::Rest;
use super::state::AppState;

/// `fnmatch.fnmatchcase` for `*`, `?` and `[...]` (`*` crosses `.`, `:` and `/`).
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    fn m(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| m(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && m(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                    return t.first() == Some(&'[') && m(&p[1..], &t[1..]);
                };
                let Some(c) = t.first() else { return false };
                let (neg, set) = match p.get(1) {
                    Some('!') => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && m(&p[end + 1..], &t[1..])
            }
            Some(c) => t.first() == Some(c) && m(&p[1..], &t[1..]),
        }
    }
    m(&p, &t)
}

/// True when `origin` matches a pattern (`*` alone allows everything; no wildcard means exact equality).
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    patterns.iter().any(|p| {
        if p == "*" {
            true
        } else if p.contains(['*', '?', '[']) {
            glob_match(p, origin)
        } else {
            p == origin
        }
    })
}

fn add_vary(resp: &mut Response) {
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Echoes an allowed origin with credentials (a header's text is always a valid header value).
fn allow_origin(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

/// The 403 for an origin outside the allowlist, varied on `Origin` like every answer here.
fn forbidden_origin() -> Response {
    let mut r = middleware_reject(StatusCode::FORBIDDEN, "Forbidden (origin not allowed)");
    add_vary(&mut r);
    r
}

/// Whether `origin` is the origin the request was sent to (`http(s)://` + its `Host`): the gateway's own run
/// viewer calling its API. The allowlist is for other origins; a page of another origin cannot send this
/// gateway's `Host` with its own `Origin`.
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    !host.is_empty() && authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// The layer.
pub async fn layer(st: &AppState, req: Request, next: impl Rest) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin else {
        let mut r = next(req).await;
        add_vary(&mut r);
        return r;
    };
    let allowed = !st.cfg.security
        || origin_allowed(&st.cfg.allowed_origins, &origin)
        || same_origin(req.headers(), &origin);
    let gateway = req.uri().path().starts_with("/api/gateway");
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !allowed {
            return forbidden_origin();
        }
        let mut r = (StatusCode::OK, "OK").into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        allow_origin(h, &origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        let req_headers = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            req_headers.unwrap_or(HeaderValue::from_static(
                "authorization, content-type, x-request-id, idempotency-key, last-event-id",
            )),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        add_vary(&mut r);
        return r;
    }
    if !allowed && gateway {
        return forbidden_origin();
    }
    let mut r = next(req).await;
    if allowed {
        let h = r.headers_mut();
        allow_origin(h, &origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, retry-after, www-authenticate"),
        );
    }
    add_vary(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_fnmatch() {
        let pats = vec![
            "http://localhost:*".to_string(),
            "https://app.example.com".to_string(),
        ];
        assert!(origin_allowed(&pats, "http://localhost:5173"));
        assert!(origin_allowed(&pats, "https://app.example.com"));
        assert!(!origin_allowed(&pats, "http://evil.example.com"));
        assert!(!origin_allowed(&pats, "https://app.example.com.evil"));
        assert!(glob_match("http://*.example.com", "http://a.b.example.com"));
        assert!(glob_match("http://h[0-9]?", "http://h7x"));
        assert!(!glob_match("http://h[!0-9]", "http://h7"));
        assert!(!origin_allowed(&[], "http://localhost:1"));
    }

    #[test]
    fn the_gateways_own_origin_is_same_origin_only() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gw.example:8080"));
        assert!(same_origin(&h, "http://gw.example:8080"));
        assert!(same_origin(&h, "https://GW.example:8080"));
        for other in [
            "http://gw.example",
            "http://gw.example:8081",
            "http://evil.example",
            "http://gw.example:8080.evil",
            "gw.example:8080",
            "null",
        ] {
            assert!(!same_origin(&h, other), "{other}");
        }
        assert!(!same_origin(&HeaderMap::new(), "http://gw.example:8080"));
    }
}
