//! Outbound HTTP to granted hosts: one bounded request and response per call.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::http as wit;
use crate::error::Error;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
    /// OPTIONS.
    Options,
}

impl Method {
    /// The method as HTTP spells it (`GET`, `POST`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

impl FromStr for Method {
    type Err = Error;

    /// Parses a method name in any case; one outside the seven is an `invalid-input` error.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            "DELETE" => Ok(Method::Delete),
            "HEAD" => Ok(Method::Head),
            "OPTIONS" => Ok(Method::Options),
            other => Err(Error::invalid_input(format!(
                "unsupported method {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Method> for wit::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Get => wit::Method::Get,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
            Method::Head => wit::Method::Head,
            Method::Options => wit::Method::Options,
        }
    }
}

/// An HTTP request; build it with [`Request::get`] / [`Request::post_json`] / [`Request::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
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
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST with a JSON body and `content-type: application/json`.
    pub fn post_json(url: impl Into<String>, body: &Value) -> Self {
        Self::new(Method::Post, url)
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
        method: req.method.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_in_any_case_and_print_upper_case() {
        assert_eq!("patch".parse::<Method>(), Ok(Method::Patch));
        assert_eq!(Method::Options.to_string(), "OPTIONS");
        let e = "trace".parse::<Method>().unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidInput);
        assert_eq!(e.message, "unsupported method \"TRACE\"");
    }
}
