//! `http`: one bounded request and response per call, to granted origins only; credentials never recorded.

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::bindings::http::{Header, Host, Method, Request, Response};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::{ErrorCode, denied, error};

/// Longest a plugin may ask a request to take.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A response as the ledger keeps it: the body as text when it is UTF-8, else base64.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

impl Answer {
    fn into_response(self) -> Result<Response, Error> {
        let body = match (self.text, self.base64) {
            (Some(t), _) => t.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| {
                    error(
                        ErrorCode::Internal,
                        format!("recorded body is not base64: {e}"),
                    )
                })?,
            (None, None) => Vec::new(),
        };
        Ok(Response {
            status: self.status,
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            body,
        })
    }
}

/// Header names whose values are secrets: kept out of the ledger.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("token")
        || n.contains("secret")
}

fn redacted(headers: &[Header]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            let v = if is_secret_header(&h.name) {
                "[redacted]".to_string()
            } else {
                h.value.clone()
            };
            (h.name.clone(), v)
        })
        .collect()
}

impl Host for NodeCtx {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let body_digest = req
            .body
            .as_ref()
            .map(|b| crate::plugins::cache::sha256_hex(b));
        let request = json!({"method": method_name(req.method), "url": req.url, "headers": redacted(&req.headers),
            "body_sha256": body_digest, "body_len": req.body.as_ref().map(Vec::len)});
        let private_ok = self.caps.net.private_ok(&self.grants, &self.owner);
        let checked = check(&self.grants, &req).and_then(|(m, url)| {
            super::net::check_literal(&url, &private_ok)?;
            Ok((m, url))
        });
        let client = self.caps.net.client(&private_ok);
        let max_body = self.grants.max_http_body;
        let answer: Result<Answer, Error> = self
            .rec
            .call(HostFn::remote("http", "fetch"), request, async move {
                let (method, url) = checked?;
                send(&client, method, url, req, max_body).await
            })
            .await?;
        Ok(answer.and_then(Answer::into_response))
    }
}

/// The HTTP name of a method (`GET`), as the ledger records it.
pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
    }
}

/// The method a name spells, in any case (`None` for any other).
pub fn method_of(name: &str) -> Option<Method> {
    let upper = name.to_ascii_uppercase();
    [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ]
    .into_iter()
    .find(|m| method_name(*m) == upper)
}

fn check(
    grants: &super::super::grants::Grants,
    req: &Request,
) -> Result<(reqwest::Method, reqwest::Url), Error> {
    let url = reqwest::Url::parse(&req.url).map_err(|e| {
        error(
            ErrorCode::InvalidInput,
            format!("invalid url {:?}: {e}", req.url),
        )
    })?;
    if !grants.allows_url(&url) {
        let origin = url.origin().ascii_serialization();
        return Err(denied(format!("http access to {origin}")));
    }
    let method = match req.method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Options => reqwest::Method::OPTIONS,
    };
    Ok((method, url))
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    req: Request,
    max_body: u64,
) -> Result<Answer, Error> {
    let timeout = req
        .timeout_ms
        .map(|ms| Duration::from_millis(ms.into()).min(MAX_TIMEOUT))
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut builder = client.request(method, url).timeout(timeout);
    for h in &req.headers {
        builder = builder.header(&h.name, &h.value);
    }
    if let Some(b) = req.body {
        builder = builder.body(b);
    }
    let mut resp = builder.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(n, _)| !is_secret_header(n.as_str()))
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(error(
                ErrorCode::TooLarge,
                format!("response body exceeds {max_body} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(match String::from_utf8(body) {
        Ok(text) => Answer {
            status,
            headers,
            text: Some(text),
            base64: None,
        },
        Err(e) => Answer {
            status,
            headers,
            text: None,
            base64: Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
        },
    })
}

fn transport(e: reqwest::Error) -> Error {
    if let Some(host) = super::net::is_blocked(&e) {
        return super::net::refused(&host);
    }
    if e.is_timeout() {
        error(ErrorCode::Timeout, format!("request timed out: {e}"))
    } else {
        error(ErrorCode::Unavailable, format!("request failed: {e}"))
    }
}
