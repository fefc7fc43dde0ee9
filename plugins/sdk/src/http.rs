//! Outbound HTTP to granted hosts: one bounded request and response per call.

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::http as wit;
use crate::error::Error;

/// An HTTP request; build it with [`Request::get`] / [`Request::post_json`] / [`Request::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
    pub method: String,
    /// Absolute URL; its origin must be granted to the plugin.
    pub url: String,
    /// Header name/value pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
    /// Per-request timeout; the host caps it.
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request with `method` to `url`, no headers and no body.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: method.to_string(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A POST with a JSON body and `content-type: application/json`.
    pub fn post_json(url: impl Into<String>, body: &Value) -> Self {
        Self::new("POST", url)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the timeout in milliseconds.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request (same as [`fetch`]).
    pub fn send(self) -> Result<Response, Error> {
        fetch(self)
    }
}

/// An HTTP response; any status counts as a response (check [`Response::ok`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header name/value pairs as received.
    pub headers: Vec<(String, String)>,
    /// The body bytes (bounded by the host).
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::invalid_input(format!(
                "response from HTTP {} is not JSON: {e}",
                self.status
            ))
        })
    }

    /// This response if 2xx, else an error carrying the status and the start of the body.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.ok() {
            return Ok(self);
        }
        let text = self.text();
        let snippet: String = text.chars().take(200).collect();
        let retryable = self.status == 429 || self.status >= 500;
        Err(Error::new(
            if self.status == 404 {
                crate::ErrorCode::NotFound
            } else {
                crate::ErrorCode::Unavailable
            },
            format!("HTTP {}: {snippet}", self.status),
        )
        .retryable(retryable))
    }
}

/// Sends one request through the host.
pub fn fetch(req: Request) -> Result<Response, Error> {
    let wreq = wit::Request {
        method: req.method,
        url: req.url,
        headers: req
            .headers
            .into_iter()
            .map(|(name, value)| wit::Header { name, value })
            .collect(),
        body: req.body,
        timeout_ms: req.timeout_ms,
    };
    let resp = wit::fetch(&wreq)?;
    Ok(Response {
        status: resp.status,
        headers: resp
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        body: resp.body,
    })
}

/// GET `url`.
pub fn get(url: &str) -> Result<Response, Error> {
    fetch(Request::get(url))
}

/// GET `url` and parse a 2xx body as JSON.
pub fn get_json(url: &str) -> Result<Value, Error> {
    get(url)?.error_for_status()?.json()
}

/// POST `body` as JSON to `url` and parse a 2xx body as JSON.
pub fn post_json(url: &str, body: &Value) -> Result<Value, Error> {
    fetch(Request::post_json(url, body))?
        .error_for_status()?
        .json()
}
