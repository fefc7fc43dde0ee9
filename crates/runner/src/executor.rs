//! The seam between the runner and whatever executes plugin nodes (the component host): a job goes out,
//! exactly one `NodeDone` comes back through the runner's inbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::engine::PluginOutcome;
use crate::run::Obj;
use crate::store::Store;

/// Cancels one executing node: checked by the component's epoch callback and raced against host calls.
#[derive(Debug, Default)]
pub struct CancelFlag {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CancelFlag {
    /// Asks the node to stop as soon as it can.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Resolves when cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// One plugin node to execute.
#[derive(Debug, Clone)]
pub struct NodeJob {
    pub run_id: String,
    pub session_id: Option<String>,
    pub actor_id: Option<String>,
    pub workflow_id: String,
    pub node_id: String,
    pub node_type: String,
    pub plugin: String,
    /// The component the run is pinned to.
    pub digest: String,
    /// The node's `data` object from the flow.
    pub config: Obj,
    /// Resolved input pins.
    pub inputs: Value,
    /// The run's context, if the node type reads it.
    pub run_context: Option<Value>,
    /// The run's variables, if the node type reads them.
    pub vars: Option<Value>,
    /// The directory the host chose for the run (else for its nearest ancestor): the file tools' sandbox.
    pub workspace_root: Option<String>,
    /// The bundle (`id@version`) of the run's flow: its tool plugins serve this node.
    pub bundle: Option<String>,
    /// Seq of the node's `started` record: recorded host calls after it are replayed.
    pub started_seq: u64,
    /// When that record was written (ms since the epoch), if the runner wrote it in this process.
    pub started_ms: Option<u64>,
    /// Durable ledger length now: live host calls append from `ledger_len + 1`.
    pub ledger_len: u64,
    /// The run's shard: its records go to that shard's journal (cluster mode; 0 on one machine).
    pub shard: u32,
    pub cancel: Arc<CancelFlag>,
}

/// What comes back from executing a node.
#[derive(Debug, Clone)]
pub struct NodeDone {
    pub run_id: String,
    pub outcome: PluginOutcome,
    /// The run's ledger length after the node's host-call records.
    pub ledger_len: u64,
}

/// Executes plugin nodes in the background.
pub trait NodeExecutor: Send + Sync {
    /// Starts `job`; `done` is called exactly once, from any thread.
    fn spawn(self: Arc<Self>, store: Store, job: NodeJob, done: Box<dyn FnOnce(NodeDone) + Send>);
}
