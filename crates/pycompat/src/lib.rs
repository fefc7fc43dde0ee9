//! Python's behaviour where the seed's clients and flows can see it, in Rust: `str()`/`repr()` of JSON
//! values (`repr`), `str.format` (`format`), `json.loads`/`json.dumps` (`json`) and `ast.literal_eval`
//! (`literal_eval`), with Python's exceptions as values (`error`). Depends only on serde/serde_json
//! (and unicode-ident for identifiers), so the host and the guest components share it (it builds for
//! `wasm32-wasip2`).

pub mod error;
pub mod format;
pub mod json;
pub mod literal_eval;
pub mod repr;

pub use error::{
    MAX_BUILT_TEXT_BYTES, MAX_FORMAT_WIDTH, PyException, PyResult, check_built, join_checked,
    too_large,
};
