//! The one wasmtime `Engine` of the process: pooling allocator, epoch interruption, a ticker thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::grants::MAX_MEMORY_MB;

/// How often the epoch advances: the granularity of CPU deadlines and cancellation.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Dirty bytes of a pooled linear memory put back by copying instead of `madvise`: a trivial node touches a few
/// pages, and unmapping them cost a TLB shootdown now and a page fault per page on the slot's next use.
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables (a component's few small tables fit).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Component instances the pool keeps ready.
const POOL_INSTANCES: u32 = 128;

/// Instance slots third-party executions (bundle and plugins-dir components) share.
pub const GENERAL_SLOTS: usize = 96;
/// Slots only built-in components and pin expressions may use beyond those, so a flood of third-party work
/// never starves them. The pool's remaining slots serve nested tool calls and `describe()`.
pub const RESERVED_SLOTS: usize = 20;
/// Executions that may wait for a slot; one more fails at once as busy.
pub const MAX_QUEUED: usize = 1024;
/// Longest an execution waits for a slot before failing as busy.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(60);

/// The engine plus the thread that ticks its epoch; the ticker stops when this is dropped.
pub struct PluginEngine {
    pub engine: Engine,
    stop: Arc<AtomicBool>,
}

impl PluginEngine {
    /// Builds the engine (pooling when the machine allows it, on-demand otherwise) and starts the ticker.
    pub fn new() -> wasmtime::Result<PluginEngine> {
        let engine = match Engine::new(&config(true)) {
            Ok(e) => e,
            Err(err) => {
                // Some hosts cap virtual memory; the pool's reservations are then refused.
                tracing::warn!("pooling allocator unavailable ({err}); using on-demand instances");
                Engine::new(&config(false))?
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (e, s) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match e.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })?;
        Ok(PluginEngine { engine, stop })
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn config(pooling: bool) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    // WASIp2 guests do not need the concurrent (p3) call path, which makes every call ~3x dearer.
    cfg.concurrency_support(false);
    cfg.max_wasm_stack(1 << 20);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .total_stacks(POOL_INSTANCES)
            .max_memory_size((MAX_MEMORY_MB << 20) as usize)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_core_instances_per_component(64)
            .table_elements(100_000)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(4 << 20);
        // Slots are reset to their initial contents on release either way; only the mechanism differs. The
        // page-map scan (Linux 6.7+) finds the pages actually written, so only those are copied back; without
        // it keeping memory resident would mean clearing the whole megabyte each time, dearer than `madvise`.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
                .table_keep_resident(TABLE_KEEP_RESIDENT)
                .pagemap_scan(wasmtime::Enabled::Yes);
        }
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}
