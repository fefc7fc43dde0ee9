//! What a component's store holds while one node runs: a WASI context granting nothing, its limits,
//! its grants, the host capabilities and the ledger recorder.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::caps::Capabilities;
use super::component::Owner;
use super::durable::Recorder;
use super::grants::Grants;

/// Host resources (WASI pollables, streams) one execution may hold at once.
pub const MAX_HOST_RESOURCES: usize = 16_384;

/// The store data of one node execution.
pub struct NodeCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    pub grants: Arc<Grants>,
    pub caps: Arc<Capabilities>,
    pub rec: Recorder,
    /// Who installed the component (its kv namespace, its private-host allowance).
    pub owner: Owner,
    /// Set by `durability.await` when the node must wait (a person, a key or an event).
    pub suspend: Option<crate::engine::PluginWait>,
    /// The run's workspace, chosen by the host: where file tools called by this node may reach.
    pub workspace_root: Option<String>,
    /// The bundle (`id@version`) of the run: its tool plugins are the ones this node may call.
    pub bundle: Option<String>,
    /// The frozen clock's time, ms since the epoch (tool plugins this node calls see the same).
    pub now_ms: u64,
    /// Tool calls a person approved in this execution (consumed one by one by `tools.invoke` when the
    /// gateway's tool mode is not `local`).
    pub approved_tools: Vec<(String, serde_json::Value)>,
    /// Log bytes written so far (capped by `grants.max_log_bytes`).
    pub log_bytes: u64,
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
        owner: Owner,
    ) -> Self {
        let mut b = WasiCtx::builder();
        b.wall_clock(FrozenClock(now_ms))
            .monotonic_clock(FrozenClock(now_ms))
            .secure_random(SeededBytes::new(seed))
            .insecure_random(SeededBytes::new(seed))
            .insecure_random_seed(u128::from_le_bytes(
                Sha256::digest(seed.as_bytes())[..16]
                    .try_into()
                    .unwrap_or_default(),
            ));
        // Host-side WASI resources (pollables, streams) live outside the component's memory limit: a
        // component that makes them without dropping them must hit this cap, not the host's memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        NodeCtx {
            wasi: b.build(),
            table,
            limiter: Limiter::new(grants.memory_mb << 20),
            grants,
            caps,
            rec,
            owner,
            suspend: None,
            workspace_root: None,
            bundle: None,
            now_ms,
            approved_tools: Vec::new(),
            log_bytes: 0,
        }
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

/// The guest's random bytes: sha256 of `<seed>:0` .. `<seed>:7` (256 bytes), cycled, the same stream on every
/// replay. Each 32-byte block is hashed when first read: most nodes never ask for randomness, and hashing all
/// of it up front was a quarter of a trivial node's cost.
struct SeededBytes {
    seed: String,
    /// Position in the 256-byte cycle.
    pos: usize,
    /// Which block `block` holds.
    loaded: Option<usize>,
    block: [u8; 32],
}

impl SeededBytes {
    /// Bytes of the cycle.
    const LEN: usize = 256;

    fn new(seed: &str) -> Self {
        SeededBytes {
            seed: seed.to_string(),
            pos: 0,
            loaded: None,
            block: [0; 32],
        }
    }

    fn next_byte(&mut self) -> u8 {
        let index = self.pos / 32;
        if self.loaded != Some(index) {
            self.block = Sha256::digest(format!("{}:{index}", self.seed).as_bytes()).into();
            self.loaded = Some(index);
        }
        let b = self.block[self.pos % 32];
        self.pos = (self.pos + 1) % Self::LEN;
        b
    }
}

impl rand_core::TryRng for SeededBytes {
    type Error = std::convert::Infallible;

    // Big-endian words, as the byte-cycle generator this replaces composed them (recorded runs replay alike).
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut w = [0u8; 4];
        for b in &mut w {
            *b = self.next_byte();
        }
        Ok(u32::from_be_bytes(w))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let hi = u64::from(self.try_next_u32()?);
        let lo = u64::from(self.try_next_u32()?);
        Ok((hi << 32) | lo)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.next_byte();
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::Rng;

    /// The eager form: every block hashed up front, cycled by wasmtime-wasi's generator.
    fn eager(seed: &str) -> wasmtime_wasi::Deterministic {
        let bytes: Vec<u8> = (0u8..8)
            .flat_map(|i| Sha256::digest(format!("{seed}:{i}").as_bytes()).to_vec())
            .collect();
        wasmtime_wasi::Deterministic::new(bytes)
    }

    #[test]
    fn lazy_bytes_are_the_eager_stream_across_the_cycle() {
        let (mut lazy, mut det) = (SeededBytes::new("run-1:7"), eager("run-1:7"));
        assert_eq!(lazy.next_u32(), det.next_u32());
        assert_eq!(lazy.next_u64(), det.next_u64());
        // 700 bytes: crosses every block boundary and wraps the 256-byte cycle twice.
        let (mut a, mut b) = (vec![0u8; 700], vec![0u8; 700]);
        lazy.fill_bytes(&mut a);
        det.fill_bytes(&mut b);
        assert_eq!(a, b);
        assert_eq!(lazy.next_u64(), det.next_u64());
        let mut other = SeededBytes::new("run-1:8");
        let mut c = vec![0u8; 32];
        other.fill_bytes(&mut c);
        assert_ne!(c[..], a[..32], "another node execution sees other bytes");
    }
}
