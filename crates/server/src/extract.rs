//! Request parsing with FastAPI/pydantic's 422 error shapes: JSON bodies (`loc: ["body", ...]`) and query
//! parameters (`loc: ["query", ...]`).

use axum::extract::Multipart;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::error::ApiError;

/// One part of a multipart form body.
pub struct Part {
    pub name: String,
    /// The file name the client gave a file part.
    pub file_name: Option<String>,
    /// The part's own content type.
    pub content_type: Option<String>,
    pub data: Bytes,
}

impl Part {
    /// The part as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Every part of a multipart body (the body layer already capped its size); a malformed body is a 400.
pub async fn multipart_parts(mut mp: Multipart) -> Result<Vec<Part>, ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("Invalid multipart body: {e}"))
    };
    let mut parts = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let data = field.bytes().await.map_err(bad)?;
        parts.push(Part {
            name,
            file_name,
            content_type,
            data,
        });
    }
    Ok(parts)
}

/// FastAPI's 422 item for a required field that is absent: `loc` is `body` or `query`.
pub fn missing_field(loc: &str, field: &str) -> Value {
    json!({"type": "missing", "loc": [loc, field], "msg": "Field required", "input": null})
}

/// Parses a JSON request body into an object, or answers FastAPI's 422 for a missing, malformed or
/// non-object body.
pub fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::validation(vec![
            json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}),
        ]));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let main = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            main == "application/json"
                || (main.starts_with("application/") && main.ends_with("+json"))
        })
        .unwrap_or(false);
    if !is_json {
        // FastAPI then validates the raw text as the model: not a dict.
        let text = String::from_utf8_lossy(body).into_owned();
        return Err(not_a_dict(Value::String(text)));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let pos = byte_offset(body, e.line(), e.column());
        let msg = if e.is_eof() { "Expecting value".to_string() } else { strip_position(&e.to_string()) };
        ApiError::validation(vec![json!({"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error", "input": {}, "ctx": {"error": msg}})])
    })?;
    match value {
        Value::Object(m) => Ok(m),
        other => Err(not_a_dict(other)),
    }
}

/// Parses a JSON body as a model: `fields` reads each field through `BodyFields` (in the model's order, which is
/// the order of the 422's issues), then any field error answers FastAPI's 422. A missing, malformed or non-object
/// body is refused first, as `json_object` does.
pub fn parse_body<T>(
    headers: &HeaderMap,
    body: &[u8],
    fields: impl FnOnce(&mut BodyFields<'_>) -> T,
) -> Result<T, ApiError> {
    let obj = json_object(headers, body)?;
    let mut f = BodyFields::new(&obj);
    let value = fields(&mut f);
    f.finish()?;
    Ok(value)
}

/// Parses a query string: `fields` reads each parameter through `QueryParams` (in the model's order, which is the
/// order of the 422's issues), then any parameter error answers FastAPI's 422.
pub fn parse_query<T>(
    raw: Option<&str>,
    fields: impl FnOnce(&mut QueryParams) -> T,
) -> Result<T, ApiError> {
    let mut q = QueryParams::parse(raw);
    let value = fields(&mut q);
    q.finish()?;
    Ok(value)
}

fn not_a_dict(input: Value) -> ApiError {
    ApiError::validation(vec![
        json!({"type": "model_attributes_type", "loc": ["body"],
        "msg": "Input should be a valid dictionary or object to extract fields from", "input": input}),
    ])
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 0-based character offset of serde's (1-based line, column) position.
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let text = String::from_utf8_lossy(body);
    let before: usize = text
        .split('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count() + 1)
        .sum();
    before + column
}

/// Pydantic's `ge`/`le` errors for an integer `n` read as `input` at `[loc, name]`.
fn push_int_bounds(
    errors: &mut Vec<Value>,
    loc: &str,
    name: &str,
    n: i64,
    input: &Value,
    ge: Option<i64>,
    le: Option<i64>,
) {
    if let Some(g) = ge
        && n < g
    {
        errors.push(json!({"type": "greater_than_equal", "loc": [loc, name], "msg": format!("Input should be greater than or equal to {g}"), "input": input, "ctx": {"ge": g}}));
    }
    if let Some(l) = le
        && n > l
    {
        errors.push(json!({"type": "less_than_equal", "loc": [loc, name], "msg": format!("Input should be less than or equal to {l}"), "input": input, "ctx": {"le": l}}));
    }
}

/// Collects pydantic-style field errors of one JSON body model.
pub struct BodyFields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<Value>,
}

impl<'a> BodyFields<'a> {
    /// Starts validating `obj`.
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        BodyFields {
            obj,
            errors: Vec::new(),
        }
    }

    fn err(&mut self, ty: &str, field: &str, msg: &str, input: Value) {
        self.errors
            .push(json!({"type": ty, "loc": ["body", field], "msg": msg, "input": input}));
    }

    /// A required string field.
    pub fn req_str(&mut self, field: &str) -> String {
        match self.obj.get(field) {
            None => {
                let input = Value::Object(self.obj.clone());
                self.err("missing", field, "Field required", input);
                String::new()
            }
            Some(v) => self.string(field, v).unwrap_or_default(),
        }
    }

    /// An optional string field (absent or null → None).
    pub fn opt_str(&mut self, field: &str) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => self.string(field, v),
        }
    }

    fn string(&mut self, field: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.err(
                    "string_type",
                    field,
                    "Input should be a valid string",
                    other.clone(),
                );
                None
            }
        }
    }

    /// An optional object field defaulting to `{}`; null is refused as pydantic does for `Dict` fields.
    pub fn obj_or_empty(&mut self, field: &str) -> Map<String, Value> {
        match self.obj.get(field) {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.err(
                    "dict_type",
                    field,
                    "Input should be a valid dictionary",
                    other.clone(),
                );
                Map::new()
            }
        }
    }

    /// An optional integer with bounds.
    pub fn opt_int(&mut self, field: &str, ge: Option<i64>, le: Option<i64>) -> Option<i64> {
        let v = self.obj.get(field)?;
        let n = match v {
            Value::Number(n) if n.as_i64().is_some() => n.as_i64(),
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                n.as_f64().map(|f| f as i64)
            }
            Value::String(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            Value::Null => return None,
            other => {
                self.err(
                    "int_type",
                    field,
                    "Input should be a valid integer",
                    other.clone(),
                );
                return None;
            }
        }?;
        push_int_bounds(&mut self.errors, "body", field, n, v, ge, le);
        Some(n)
    }

    /// An optional boolean (pydantic's lax parsing: `true`/`false`, 0/1, and the usual words); absent gives
    /// `default`.
    pub fn bool_or(&mut self, field: &str, default: bool) -> bool {
        let Some(v) = self.obj.get(field) else {
            return default;
        };
        let parsed = match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_f64() {
                Some(0.0) => Some(false),
                Some(1.0) => Some(true),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
                "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            let ty = if v.is_string() {
                "bool_parsing"
            } else {
                "bool_type"
            };
            self.err(ty, field, "Input should be a valid boolean", v.clone());
            default
        })
    }

    /// An optional list of objects defaulting to `[]` (`list[Dict[str, Any]]`); each item that is not an object
    /// is an error at its index.
    pub fn objects_or_empty(&mut self, field: &str) -> Vec<Value> {
        match self.obj.get(field) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_object() {
                        self.errors
                            .push(json!({"type": "dict_type", "loc": ["body", field, i],
                            "msg": "Input should be a valid dictionary", "input": item}));
                    }
                }
                items.clone()
            }
            Some(other) => {
                self.err(
                    "list_type",
                    field,
                    "Input should be a valid list",
                    other.clone(),
                );
                Vec::new()
            }
        }
    }

    /// A required object field.
    pub fn req_obj(&mut self, field: &str) -> Map<String, Value> {
        if !self.obj.contains_key(field) {
            let input = Value::Object(self.obj.clone());
            self.err("missing", field, "Field required", input);
            return Map::new();
        }
        self.obj_or_empty(field)
    }

    /// Adds an error found by the caller.
    pub fn push(&mut self, e: Value) {
        self.errors.push(e);
    }

    /// `Ok` when every field was valid, else the 422.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Query parameters with pydantic-style errors, collected per request.
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    errors: Vec<Value>,
}

impl QueryParams {
    /// Parses a raw query string (`a=1&b=x`).
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw.map(serde_urlencoded_pairs).unwrap_or_default();
        QueryParams {
            pairs,
            errors: Vec::new(),
        }
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An optional non-empty string.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    /// A required string (FastAPI's 422 `missing` when absent).
    pub fn required(&mut self, name: &str) -> String {
        match self.get(name) {
            Some(v) => v.to_string(),
            None => {
                self.errors.push(missing_field("query", name));
                String::new()
            }
        }
    }

    /// An integer with optional bounds (`ge`, `le`), or `default`.
    pub fn int(&mut self, name: &str, default: i64, ge: Option<i64>, le: Option<i64>) -> i64 {
        let Some(raw) = self.get(name).map(str::to_string) else {
            return default;
        };
        let Ok(n) = raw.trim().parse::<i64>() else {
            self.errors.push(json!({"type": "int_parsing", "loc": ["query", name], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": raw}));
            return default;
        };
        let input = Value::from(raw);
        push_int_bounds(&mut self.errors, "query", name, n, &input, ge, le);
        n
    }

    /// A float with an exclusive lower bound and an inclusive upper bound.
    pub fn float(&mut self, name: &str, default: f64, gt: f64, le: f64) -> f64 {
        let Some(raw) = self.get(name).map(str::to_string) else {
            return default;
        };
        let Ok(n) = raw.trim().parse::<f64>() else {
            self.errors.push(json!({"type": "float_parsing", "loc": ["query", name], "msg": "Input should be a valid number, unable to parse string as a number", "input": raw}));
            return default;
        };
        if n.is_nan() || n <= gt {
            self.errors.push(json!({"type": "greater_than", "loc": ["query", name], "msg": format!("Input should be greater than {gt}"), "input": raw, "ctx": {"gt": gt}}));
        } else if n > le {
            self.errors.push(json!({"type": "less_than_equal", "loc": ["query", name], "msg": format!("Input should be less than or equal to {le}"), "input": raw, "ctx": {"le": le}}));
        }
        n
    }

    /// A boolean in pydantic's accepted spellings.
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        let Some(raw) = self.get(name).map(str::to_string) else {
            return default;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => true,
            "0" | "false" | "f" | "no" | "n" | "off" => false,
            _ => {
                self.errors.push(json!({"type": "bool_parsing", "loc": ["query", name], "msg": "Input should be a valid boolean, unable to interpret input", "input": raw}));
                default
            }
        }
    }

    /// `Ok` when every parameter was valid, else the 422.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(std::mem::take(&mut self.errors)))
        }
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` decoded, invalid UTF-8 replaced).
pub fn serde_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_and_errors() {
        assert_eq!(
            serde_urlencoded_pairs("a=1&b=x+y%21&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("%4"), "%4");
        let mut q = QueryParams::parse(Some("after=-1&limit=5000"));
        assert_eq!(q.int("after", 0, Some(0), None), -1);
        q.int("limit", 200, Some(1), Some(2000));
        let e = q.finish().unwrap_err();
        assert_eq!(e.detail[0]["type"], "greater_than_equal");
        assert_eq!(e.detail[1]["loc"], json!(["query", "limit"]));
    }

    #[test]
    fn body_errors_match_fastapi() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let e = json_object(&h, br#"{"bundle_id":"#).unwrap_err();
        assert_eq!(
            e.detail,
            json!([{"type":"json_invalid","loc":["body",13],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting value"}}])
        );
        let e = json_object(&h, b"").unwrap_err();
        assert_eq!(
            e.detail,
            json!([{"type":"missing","loc":["body"],"msg":"Field required","input":null}])
        );
        let e = json_object(&HeaderMap::new(), br#"{"a":1}"#).unwrap_err();
        assert_eq!(e.detail[0]["type"], "model_attributes_type");
        assert_eq!(e.detail[0]["input"], r#"{"a":1}"#);
    }
}
