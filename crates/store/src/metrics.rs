//! What the store reports to the process's metrics recorder (with none installed, nothing is kept). The names are
//! listed, with the rest, in `docs/api.md` ("Metrics").

use std::time::Duration;

/// One group commit made durable: how many requests it carried, how long the write took and, of that, the fsync.
pub(crate) fn group_committed(requests: usize, write: Duration, fsync: Option<Duration>) {
    metrics::histogram!("abstractgateway_store_commit_batch_size").record(requests as f64);
    metrics::histogram!("abstractgateway_store_commit_seconds").record(write.as_secs_f64());
    if let Some(f) = fsync {
        metrics::histogram!("abstractgateway_store_fsync_seconds").record(f.as_secs_f64());
    }
}

/// Ledger records made durable in this node's store.
pub(crate) fn ledger_appended(records: u64) {
    if records > 0 {
        metrics::counter!("abstractgateway_ledger_records_appended_total").increment(records);
    }
}
