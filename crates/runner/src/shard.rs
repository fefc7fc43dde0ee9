//! Shards: in cluster mode runs are spread over a fixed number of shards, and each shard has one owner (the runner
//! holding its lease) with one runner loop. A run belongs to the shard of its tree's root run, so a parent, its
//! children and its event listeners are always stepped by the same loop. On one machine there is one shard.
//!
//! What each shard keeps for itself in the store: its command cursor, its deferred commands and its outbox (events
//! its runs emitted that the other shards still have to deliver).

use std::collections::HashMap;

use crate::run::RunState;
use crate::store::{Batch, Store, StoreError};

/// Parents followed to find a run's root (deeper trees are refused by the engine long before).
const MAX_DEPTH: usize = 256;
/// Parents remembered at most; past it the memory starts over (a loop lives as long as the process).
const MAX_REMEMBERED: usize = 100_000;

/// The shard of a tree whose root run is `root`: FNV-1a of the id, modulo the shard count. Stable across
/// processes, versions and machines (every node must compute the same shard).
pub fn of_root(root: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards)) as u32
}

/// The root of a run just created outside a runner (a started run and its listeners, a scheduled run): itself,
/// or its parent (a listener's parent is the root it listens for).
pub fn root_of_new(run: &RunState) -> &str {
    run.parent_run_id.as_deref().unwrap_or(&run.run_id)
}

/// Finds the roots of stored runs, remembering what it read.
#[derive(Default)]
pub struct Roots {
    parent: HashMap<String, Option<String>>,
}

impl Roots {
    /// The root of run `id` (`id` itself when it is a root, or when its parents cannot be read).
    pub fn of(&mut self, store: &Store, id: &str) -> String {
        if self.parent.len() > MAX_REMEMBERED {
            self.parent.clear();
        }
        let mut cur = id.to_string();
        for _ in 0..MAX_DEPTH {
            let parent = match self.parent.get(&cur) {
                Some(p) => p.clone(),
                None => {
                    let p = store
                        .get_run(&cur)
                        .ok()
                        .flatten()
                        .and_then(|r| r.parent_run_id);
                    self.parent.insert(cur.clone(), p.clone());
                    p
                }
            };
            match parent {
                Some(p) => cur = p,
                None => return cur,
            }
        }
        cur
    }

    /// Learns a run's parent without reading the store.
    pub fn learn(&mut self, run: &RunState) {
        self.parent
            .insert(run.run_id.clone(), run.parent_run_id.clone());
    }
}

/// Meta keys of shard `n`'s own state (shard 0 keeps the names a single runner always used).
pub struct Keys {
    pub shard: u32,
    pub deferred: String,
    cursor: Option<String>,
    pub outbox_prefix: String,
}

impl Keys {
    pub fn new(shard: u32) -> Keys {
        let deferred = crate::world::DEFERRED_KEY;
        Keys {
            shard,
            deferred: if shard == 0 {
                deferred.to_string()
            } else {
                format!("{deferred}.{shard}")
            },
            cursor: (shard != 0).then(|| format!("command_cursor.{shard}")),
            outbox_prefix: format!("outbox.{shard}."),
        }
    }

    /// The last command seq this shard applied.
    pub fn cursor(&self, store: &Store) -> Result<u64, StoreError> {
        match &self.cursor {
            None => store.command_cursor(),
            Some(key) => Ok(store
                .get_meta(key)?
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0)),
        }
    }

    /// An empty batch of this shard's writes.
    pub fn batch(&self) -> Batch {
        let mut batch = Batch::default();
        batch.set_shard(self.shard);
        batch
    }

    /// Moves this shard's cursor in `batch`.
    pub fn set_cursor(&self, batch: &mut Batch, seq: u64) {
        match &self.cursor {
            None => batch.set_command_cursor(seq),
            Some(key) => batch.put_meta(key, &seq.to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(of_root("anything", 1), 0);
        // Pinned: every node of a cluster, of any version, must agree.
        assert_eq!(of_root("run-a", 4), of_root("run-a", 4));
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[of_root(&uuid::Uuid::new_v4().to_string(), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
        assert_eq!(of_root("", 4), (0xcbf2_9ce4_8422_2325u64 % 4) as u32);
    }

    #[test]
    fn shard_zero_keeps_the_single_runner_keys() {
        let k = Keys::new(0);
        assert_eq!(k.deferred, "deferred_commands");
        assert!(k.cursor.is_none());
        let k = Keys::new(3);
        assert_eq!(k.deferred, "deferred_commands.3");
        assert_eq!(k.cursor.as_deref(), Some("command_cursor.3"));
        assert_eq!(k.outbox_prefix, "outbox.3.");
    }
}
