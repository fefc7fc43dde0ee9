//! Store errors. They are `Clone` because one failed group commit must hand the same error to every waiter.

use std::path::PathBuf;

/// Everything that can go wrong in the durable store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another `Store` in this process) holds the data dir.
    #[error("data dir {} is in use by another abstractgateway process ({})", dir.display(), pid_text(*pid))]
    Locked {
        /// The data dir that is locked.
        dir: PathBuf,
        /// The pid recorded in the lock file, if it could be read.
        pid: Option<u32>,
    },
    /// A filesystem operation outside fjall failed.
    #[error("{context}: {message}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The OS error text.
        message: String,
    },
    /// fjall reported an error (after a failed write the database refuses further writes).
    #[error("database error: {0}")]
    Db(String),
    /// Stored bytes could not be decoded.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The caller passed something the store cannot key or encode.
    #[error("invalid store input: {0}")]
    Invalid(String),
    /// A ledger append did not continue the run's ledger (`seq` must be the previous length + 1).
    #[error("ledger append for run {run_id}: expected seq {expected}, got {got}")]
    LedgerSeq {
        /// The run whose ledger was appended to.
        run_id: String,
        /// The only seq that would have continued the ledger.
        expected: u64,
        /// The seq the caller assigned.
        got: u64,
    },
    /// The committer thread is gone (store dropped or a panic), so nothing can be made durable.
    #[error("store is closed")]
    Closed,
    /// Cluster mode: another runner took this shard over, so this process may not write its runs any more.
    #[error("fenced: another runner owns these runs now")]
    Fenced,
    /// Cluster mode: the replicated log could not be reached or did not acknowledge in time.
    #[error("the cluster store is unavailable: {0}")]
    Unavailable(String),
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

impl StoreError {
    /// Wraps an I/O error with what was being attempted.
    pub(crate) fn io(context: impl Into<String>, err: &std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            message: err.to_string(),
        }
    }
}

impl From<fjall::Error> for StoreError {
    fn from(err: fjall::Error) -> Self {
        StoreError::Db(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_message_names_dir_and_pid() {
        let err = StoreError::Locked {
            dir: PathBuf::from("data"),
            pid: Some(42),
        };
        assert_eq!(
            err.to_string(),
            "data dir data is in use by another abstractgateway process (pid 42)"
        );
        let unknown = StoreError::Locked {
            dir: PathBuf::from("data"),
            pid: None,
        };
        assert!(unknown.to_string().ends_with("(pid unknown)"));
    }
}
