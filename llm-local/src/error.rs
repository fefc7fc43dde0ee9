//! Errors of the local model: loading, tokenizing, generating.

use std::path::PathBuf;

/// Everything that can go wrong loading or running the local model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or renamed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The GGUF file is malformed or not a model this crate can run.
    #[error("model {}: {message}", path.display())]
    Model {
        /// The GGUF file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The request cannot be served (empty conversation, prompt longer than the context, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The tensor engine or the tokenizer failed while generating.
    #[error("generation failed: {0}")]
    Inference(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the file and the action that failed.
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps a problem with a model file.
    pub(crate) fn model(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Error::Model {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// Wraps a failure of candle or the tokenizer during generation.
    pub(crate) fn inference(message: impl std::fmt::Display) -> Self {
        Error::Inference(message.to_string())
    }
}
