//! Cluster mode's replicated log on NATS JetStream.
//!
//! Every node's fjall store is a materialized replica of one stream, `<PREFIX>_LOG`:
//! - the lease holder (the **owner**, one for the whole gateway in this first cut: one shard) appends its entries to
//!   `<prefix>.j` with [`NatsLog`]'s `append_owned`, fenced on its own tail;
//! - any node appends **intake** entries (new runs, commands) to `<prefix>.in`, deduplicated by the caller's id;
//! - every node runs a [`Tailer`] that applies the stream, in order and once each, to its local replica.
//!
//! A standby waits in [`Cluster::acquire`] until the owner's lease expires (or is released), then appends a
//! takeover marker so that the stale owner's appends are refused from then on, whatever its local state says.
//!
//! ```text
//! let cluster = Cluster::connect(ClusterConfig::parse("nats://h1:4222,h2:4222,h3:4222")?).await?;
//! let tailer = cluster.tail(replica.clone());       // every node
//! tailer.caught_up().await;                         // ready for reads
//! let lease = cluster.acquire(replica, Box::new(|| std::process::exit(75))).await?;
//! // the store now appends with cluster.log() from its committer thread
//! ```

mod buckets;
mod cluster;
mod config;
mod error;
mod lease;
mod log;
mod presence;
mod publish;
mod security;
mod tail;

pub use buckets::{Bucket, BucketChange};
pub use cluster::Cluster;
pub use config::{
    ClusterConfig, DEFAULT_LEASE, DEFAULT_PREFIX, DEFAULT_RENEW, DEFAULT_SHARDS, MAX_SHARDS,
    MIN_SERVER_VERSION,
};
pub use error::NatsError;
pub use lease::{Gate, Lease};
pub use log::NatsLog;
pub use presence::Presence;
pub use security::{Auth, ENV_VARS as SECURITY_ENV_VARS, Security, Tls};
pub use tail::Tailer;
