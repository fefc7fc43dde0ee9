//! What a component's store holds while one node runs: a WASI context granting nothing, its limits,
//! its grants, the host capabilities and the ledger recorder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::caps::Capabilities;
use super::durable::Recorder;
use super::grants::Grants;

/// The store data of one node execution.
pub struct NodeCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    pub grants: Arc<Grants>,
    pub caps: Arc<Capabilities>,
    pub rec: Recorder,
    /// When the component started running (for its CPU budget).
    pub started: Instant,
    /// Set by `durability.await-event` when the node must wait for an event.
    pub suspend: Option<(String, crate::run::Obj)>,
    /// The run's workspace (its var `workspace_root`): where file tools called by this node may reach.
    pub workspace_root: Option<String>,
    /// The frozen clock's time, ms since the epoch (tool plugins this node calls see the same).
    pub now_ms: u64,
}

impl NodeCtx {
    /// A context whose clocks are frozen at `now_ms` and whose randomness derives from `seed`: a replay
    /// sees exactly what the first execution saw, and nothing else of the host leaks in.
    pub fn new(
        grants: Arc<Grants>,
        caps: Arc<Capabilities>,
        rec: Recorder,
        now_ms: u64,
        seed: &str,
    ) -> Self {
        // 256 bytes cycled: enough to seed a guest's hash maps; a component needing real entropy has none here.
        let bytes: Vec<u8> = (0u8..8)
            .flat_map(|i| Sha256::digest(format!("{seed}:{i}").as_bytes()).to_vec())
            .collect();
        let mut b = WasiCtx::builder();
        b.wall_clock(FrozenClock(now_ms))
            .monotonic_clock(FrozenClock(now_ms))
            .secure_random(wasmtime_wasi::Deterministic::new(bytes.clone()))
            .insecure_random(wasmtime_wasi::Deterministic::new(bytes))
            .insecure_random_seed(u128::from_le_bytes(
                Sha256::digest(seed.as_bytes())[..16]
                    .try_into()
                    .unwrap_or_default(),
            ));
        NodeCtx {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(grants.memory_mb << 20),
            grants,
            caps,
            rec,
            started: Instant::now(),
            suspend: None,
            workspace_root: None,
            now_ms,
        }
    }

    /// CPU time the component has used: wall time minus time spent in host calls.
    pub fn cpu_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.rec.host_time)
    }
}

impl WasiView for NodeCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Clocks that always read the node's start time.
struct FrozenClock(u64);

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.0.saturating_mul(1_000_000)
    }
}

/// Caps linear memory and remembers that the cap was hit, to name it in the node's error.
pub struct Limiter {
    max_memory: usize,
    pub memory_hit: bool,
}

impl Limiter {
    fn new(max_memory: u64) -> Self {
        Limiter {
            max_memory: usize::try_from(max_memory).unwrap_or(usize::MAX),
            memory_hit: false,
        }
    }
    /// The cap in MiB.
    pub fn max_memory_mb(&self) -> usize {
        self.max_memory >> 20
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        16
    }
}
