//! Which runners are alive, so that each takes a fair share of the shards: a runner puts `runner.<node>` in the
//! lease bucket every renewal and deletes it when it stops; every runner watches `runner.*` and counts the keys
//! that changed within one lease, by its own clock (as leases are judged: no two clocks need to agree).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant, sleep};

use crate::cluster::Cluster;

/// The presence key of `node` (characters a key may not hold become `_`).
fn runner_key(node: &str) -> String {
    let clean: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("runner.{clean}")
}

/// This runner's presence, and its count of the live runners.
pub struct Presence {
    kv: kv::Store,
    key: String,
    alive: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl Presence {
    /// Runners seen alive within the last lease, this one included (at least 1).
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst).max(1)
    }

    /// A shared reading of [`Presence::alive`].
    pub fn counter(&self) -> Arc<AtomicUsize> {
        self.alive.clone()
    }

    /// Stops announcing and deletes the key, so the others count one runner less at once.
    pub async fn leave(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = self.kv.delete(&self.key).await {
            tracing::warn!(error = %e, "deleting this runner's presence");
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Cluster {
    /// Announces this node as a runner and starts counting the live runners.
    pub fn announce(&self) -> Presence {
        let (kv, key) = (self.kv.clone(), runner_key(&self.cfg.node_id));
        let (every, lease) = (self.cfg.renew, self.cfg.lease);
        let alive = Arc::new(AtomicUsize::new(1));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (kv2, key2, alive2) = (kv.clone(), key.clone(), alive.clone());
        tokio::spawn(async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let mut watch = None;
            let mut tick = tokio::time::interval(every);
            loop {
                if watch.is_none() {
                    watch = kv2.watch("runner.*").await.ok();
                }
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tick.tick() => {
                        if let Err(e) = kv2.put(&key2, Bytes::from_static(b"1")).await {
                            tracing::warn!(error = %e, "announcing this runner");
                        }
                        let now = Instant::now();
                        seen.retain(|_, at| now.duration_since(*at) < lease);
                        alive2.store(seen.len().max(1), Ordering::SeqCst);
                    }
                    entry = next(&mut watch) => match entry {
                        Some(entry) => match entry.operation {
                            Operation::Put => {
                                seen.insert(entry.key, Instant::now());
                            }
                            Operation::Delete | Operation::Purge => {
                                seen.remove(&entry.key);
                            }
                        },
                        None => {
                            watch = None;
                            sleep(Duration::from_millis(200)).await;
                        }
                    },
                }
            }
        });
        Presence {
            kv,
            key,
            alive,
            stop: Some(stop),
        }
    }
}

/// The next entry of a watch (pending forever without one; `None` when it ended or failed).
async fn next(watch: &mut Option<kv::Watch>) -> Option<kv::Entry> {
    match watch {
        Some(w) => match w.next().await {
            Some(Ok(entry)) => Some(entry),
            _ => None,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_only_what_a_key_may() {
        assert_eq!(runner_key("run-1"), "runner.run-1");
        assert_eq!(runner_key("host.x:1 2"), "runner.host_x_1_2");
    }
}
