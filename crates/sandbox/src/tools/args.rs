//! Reading a tool's JSON arguments: typed, with defaults, and precise `invalid-input` errors.

use serde_json::{Map, Value};

use crate::plugins::bindings::types::{Error, ErrorCode};
use crate::plugins::caps::error;

/// The arguments object of one call of tool `tool`.
pub struct Args<'a> {
    tool: &'a str,
    map: Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Checks that `v` is an object (`null` counts as no arguments).
    pub fn new(tool: &'a str, v: Value) -> Result<Self, Error> {
        match v {
            Value::Object(map) => Ok(Args { tool, map }),
            Value::Null => Ok(Args {
                tool,
                map: Map::new(),
            }),
            other => Err(error(
                ErrorCode::InvalidInput,
                format!("{tool}: arguments must be a JSON object, not {other}"),
            )),
        }
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn bad(&self, name: &str, what: &str) -> Error {
        error(
            ErrorCode::InvalidInput,
            format!("{}: argument '{name}' must be {what}", self.tool),
        )
    }

    /// A required string.
    pub fn str(&self, name: &str) -> Result<&str, Error> {
        self.str_opt(name)?.ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                format!("{}: argument '{name}' (a string) is required", self.tool),
            )
        })
    }

    /// An optional string.
    pub fn str_opt(&self, name: &str) -> Result<Option<&str>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(name, "a string")),
        }
    }

    /// A string with a default.
    pub fn str_or(&self, name: &str, default: &'a str) -> Result<String, Error> {
        Ok(self.str_opt(name)?.unwrap_or(default).to_string())
    }

    /// An optional integer (integral floats and numeric strings are accepted: models send both).
    pub fn int_opt(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| self.bad(name, "an integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.bad(name, "an integer")),
            Some(_) => Err(self.bad(name, "an integer")),
        }
    }

    /// An integer with a default.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, Error> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    /// A boolean with a default (`"true"`/`"false"` strings are accepted).
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.present(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(self.bad(name, "a boolean")),
        }
    }

    /// An optional object.
    pub fn object_opt(&self, name: &str) -> Result<Option<&Map<String, Value>>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(self.bad(name, "an object")),
        }
    }
}
