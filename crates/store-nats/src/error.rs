//! What can go wrong joining the cluster or taking the lease.

/// Errors of [`crate::Cluster`] and [`crate::Lease`] (the log itself reports `StoreError`s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// The cluster URL or a configuration field is not usable.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// No seed server could be reached.
    #[error("cannot connect to the NATS cluster: {0}")]
    Connect(String),
    /// The server is older than cluster mode supports.
    #[error(
        "nats-server {version} is too old for cluster mode: it needs 2.12 or newer (2.9.x accepts two racing \
         publishers with the same expected last subject sequence, nats-server issue 4320)"
    )]
    ServerTooOld {
        /// The version the server reported.
        version: String,
    },
    /// The stream or the lease bucket exists with settings cluster mode cannot use.
    #[error("{name} exists with other settings: {differences}")]
    Mismatch {
        /// The stream or bucket.
        name: String,
        /// What differs from what cluster mode needs.
        differences: String,
    },
    /// A JetStream request failed.
    #[error("{context}: {message}")]
    Request {
        /// What was being done.
        context: String,
        /// The client's error text.
        message: String,
    },
    /// The lease was lost before `acquire` finished (another node took it, or renewals failed for too long).
    #[error("the lease was lost")]
    LeaseLost,
    /// This process held the lease before and lost or released it: its log stays fenced, it must restart to own
    /// the shard again.
    #[error("this process was fenced; restart it to take the lease again")]
    Fenced,
    /// `acquire` was called while this process holds (or is acquiring) the lease.
    #[error("this process already holds the lease")]
    AlreadyHeld,
}

impl NatsError {
    pub(crate) fn request(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        NatsError::Request {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
