//! `fetch_url`: one bounded request to an origin granted to the calling plugin, redirects followed only
//! while they stay on granted origins; the answer is the text the model reads.

use std::time::Duration;

use serde_json::Value;

use super::args::Args;
use crate::plugins::Grants;
use crate::plugins::bindings::types::{Error, ErrorCode};
use crate::plugins::caps::net::{self, PrivateOk};
use crate::plugins::caps::{denied, error};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Longest timeout a call may ask for, seconds.
const MAX_TIMEOUT_S: i64 = 120;
/// Characters of content shown when `include_full_content` is false.
const PREVIEW_CHARS: usize = 4_000;

fn check_url(grants: &Grants, ok: &PrivateOk, url: &reqwest::Url) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("fetch_url: only http and https URLs are fetched, not {url}"),
        ));
    }
    if !grants.allows_url(url) {
        return Err(denied(format!(
            "fetch_url to {}",
            url.origin().ascii_serialization()
        )));
    }
    // Names are checked when the client resolves them, on every hop.
    net::check_literal(url, ok)
}

fn transport(e: &reqwest::Error) -> Error {
    if let Some(host) = net::is_blocked(e) {
        return net::refused(&host);
    }
    if e.is_timeout() {
        error(
            ErrorCode::Timeout,
            format!("fetch_url: request timed out: {e}"),
        )
    } else {
        error(
            ErrorCode::Unavailable,
            format!("fetch_url: request failed: {e}"),
        )
    }
}

/// Runs `fetch_url` with the caller's `grants` through `client` (which must not follow redirects itself,
/// and must resolve names through the private-address guard allowing `ok`).
pub async fn fetch_url(
    client: &reqwest::Client,
    grants: &Grants,
    ok: &PrivateOk,
    args: Value,
) -> Result<Value, Error> {
    let a = Args::new("fetch_url", args)?;
    let raw = a.str("url")?;
    let mut url = reqwest::Url::parse(raw).map_err(|e| {
        error(
            ErrorCode::InvalidInput,
            format!("fetch_url: invalid url {raw:?}: {e}"),
        )
    })?;
    let mut method = match a.str_or("method", "GET")?.to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "PATCH" => reqwest::Method::PATCH,
        "DELETE" => reqwest::Method::DELETE,
        "HEAD" => reqwest::Method::HEAD,
        other => {
            return Err(error(
                ErrorCode::InvalidInput,
                format!("fetch_url: unsupported method {other:?}"),
            ));
        }
    };
    let timeout = Duration::from_secs(
        u64::try_from(a.int_or("timeout", 45)?.clamp(1, MAX_TIMEOUT_S)).unwrap_or(45),
    );
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(h) = a.object_opt("headers")? {
        for (k, v) in h {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                error(
                    ErrorCode::InvalidInput,
                    format!("fetch_url: invalid header name {k:?}"),
                )
            })?;
            let value = reqwest::header::HeaderValue::from_str(&v).map_err(|_| {
                error(
                    ErrorCode::InvalidInput,
                    format!("fetch_url: invalid value of header {k:?}"),
                )
            })?;
            headers.insert(name, value);
        }
    }
    if !headers.contains_key(reqwest::header::USER_AGENT) {
        let ua = a.str_or("user_agent", "abstractgateway-fetch/0.1")?;
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&ua) {
            headers.insert(reqwest::header::USER_AGENT, v);
        }
    }
    let mut body = a.str_opt("data")?.map(|s| s.to_string());
    let full = a.bool_or("include_full_content", true)?;
    let max_body = grants.max_http_body;

    let mut hops = 0;
    let resp = loop {
        check_url(grants, ok, &url)?;
        let mut req = client
            .request(method.clone(), url.clone())
            .timeout(timeout)
            .headers(headers.clone());
        if let Some(b) = &body {
            req = req.body(b.clone());
        }
        let resp = req.send().await.map_err(|e| transport(&e))?;
        if !resp.status().is_redirection() {
            break resp;
        }
        let Some(location) = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            break resp;
        };
        hops += 1;
        if hops > MAX_REDIRECTS {
            return Err(error(
                ErrorCode::Unavailable,
                format!("fetch_url: more than {MAX_REDIRECTS} redirects from {raw}"),
            ));
        }
        let next = url.join(location).map_err(|e| {
            error(
                ErrorCode::Unavailable,
                format!("fetch_url: {url} redirects to an invalid location {location:?}: {e}"),
            )
        })?;
        if !grants.allows_url(&next) {
            return Err(denied(format!(
                "fetch_url redirect from {url} to {}",
                next.origin().ascii_serialization()
            )));
        }
        let status = resp.status().as_u16();
        if status == 303 || ((status == 301 || status == 302) && method == reqwest::Method::POST) {
            method = reqwest::Method::GET;
            body = None;
        }
        url = next;
    };

    let status = resp.status();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut resp = resp;
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e))? {
        if (bytes.len() + chunk.len()) as u64 > max_body {
            return Err(error(
                ErrorCode::TooLarge,
                format!("fetch_url: the response body of {url} exceeds {max_body} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let content = render(&content_type, &bytes);
    let content = if full {
        content
    } else {
        let preview: String = content.chars().take(PREVIEW_CHARS).collect();
        if preview.len() < content.len() {
            format!("{preview}\n[preview: first {PREVIEW_CHARS} characters]")
        } else {
            preview
        }
    };
    let ct = if content_type.is_empty() {
        "unknown"
    } else {
        &content_type
    };
    Ok(Value::String(format!(
        "URL: {url}\nStatus: {status}\nContent-Type: {ct}\nSize: {} bytes\n\n{content}",
        bytes.len()
    )))
}

/// The body as text: JSON pretty-printed, HTML reduced to its text, other text as is, binary described.
fn render(content_type: &str, bytes: &[u8]) -> String {
    let ct = content_type.to_ascii_lowercase();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return format!("[binary content, {} bytes]", bytes.len());
    };
    if ct.contains("json")
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        return serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_string());
    }
    if ct.contains("html") {
        return html_text(text);
    }
    text.to_string()
}

/// A crude HTML-to-text: scripts and styles dropped, tags removed, common entities decoded, blank runs folded.
fn html_text(html: &str) -> String {
    static DROP: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?is)<(script|style|noscript)\b.*?</(script|style|noscript)\s*>|<!--.*?-->",
        )
        .ok()
    });
    static TAG: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?s)<[^>]*>").ok());
    let mut s = html.to_string();
    if let Some(re) = DROP.as_ref() {
        s = re.replace_all(&s, " ").into_owned();
    }
    if let Some(re) = TAG.as_ref() {
        s = re.replace_all(&s, "\n").into_owned();
    }
    let s = s
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
