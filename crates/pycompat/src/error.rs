//! Python's exceptions as values, and the limits on text a builtin builds from its input.

use std::fmt;

use serde_json::Value;

/// A Python exception raised by a builtin: its type name and `str(exc)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyException {
    /// Exception class name, e.g. `ValueError`, `KeyError`.
    pub kind: &'static str,
    /// `str(exc)`, what a `{success: false, error}` completion carries.
    pub message: String,
}

impl PyException {
    /// An exception of any class.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A `ValueError`.
    pub fn value_error(message: impl Into<String>) -> Self {
        Self::new("ValueError", message)
    }

    /// A `TypeError`.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }
}

/// `"<ExcType>: <message>"`, the form the gateway runner records for a FAILED run.
impl fmt::Display for PyException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PyException {}

/// What a builtin returns internally.
pub type PyResult = Result<Value, PyException>;

/// The longest text a builtin builds when its size comes from the input rather than from the text it
/// was given (a format width, a template repeating a field, a replacement multiplied by its matches,
/// a join's delimiter multiplied by its items, an indent multiplied by the nesting). CPython tries to
/// allocate such a result and raises `MemoryError` when it cannot; the gateway refuses before
/// allocating, so one run cannot exhaust the memory every other run shares.
pub const MAX_BUILT_TEXT_BYTES: usize = 64 << 20;

/// The largest format width or float precision (`{:>N}`, `{:.Nf}`): far beyond any real layout, far
/// below what would need gigabytes. Larger ones raise `MemoryError` before anything is allocated.
pub const MAX_FORMAT_WIDTH: usize = 1_000_000;

/// The `MemoryError` of a result of `bytes` bytes that `what` would have built.
pub fn too_large(what: &str, bytes: usize) -> PyException {
    PyException::new(
        "MemoryError",
        format!(
            "{what} would be {bytes} bytes, over the gateway's limit of {MAX_BUILT_TEXT_BYTES} bytes"
        ),
    )
}

/// Refuses a result of `bytes` bytes built from `input_bytes` bytes of input when it is over
/// [`MAX_BUILT_TEXT_BYTES`] and larger than its input (a result no larger than what the node was given
/// is never refused).
pub fn check_built(what: &str, bytes: usize, input_bytes: usize) -> Result<(), PyException> {
    if bytes > MAX_BUILT_TEXT_BYTES && bytes > input_bytes {
        return Err(too_large(what, bytes));
    }
    Ok(())
}

/// `sep.join(parts)`, refused before allocating when the separators make it too large.
pub fn join_checked(what: &str, parts: &[String], sep: &str) -> Result<String, PyException> {
    let text: usize = parts.iter().map(String::len).fold(0, usize::saturating_add);
    let seps = sep.len().saturating_mul(parts.len().saturating_sub(1));
    check_built(
        what,
        text.saturating_add(seps),
        text.saturating_add(sep.len()),
    )?;
    Ok(parts.join(sep))
}
