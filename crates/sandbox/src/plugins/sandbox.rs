//! The one lifecycle of every component execution (a node, a tool call, a pin expression, `describe`): a
//! store with its memory limiter and epoch deadline, a watchdog for the time the component spends blocked
//! (a WASI sleep or poll never reaches an epoch check), cancellation, panic containment, admission to the
//! instance pool, and a typed reason when it stops without an answer.
//!
//! Host functions stop a component by returning a [`HostStop`]; the reason is read back by type, never
//! from an error's wording.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Engine, Store as WasmStore, UpdateDeadline};

use super::ctx::NodeCtx;
use super::grants::Grants;
use crate::runner::executor::CancelFlag;

/// Why a host function stopped the component (the trap's cause, found again by type).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HostStop {
    #[error("cancelled")]
    Cancelled,
    #[error("the time limit was reached")]
    TimeLimit,
    #[error("more than {0} host calls in one execution")]
    HostCalls(u64),
    #[error("ReplayDivergence: {0}")]
    Divergence(String),
    #[error("suspended: waiting for an event")]
    Suspended,
    #[error("{0}")]
    Failed(String),
}

/// Why an execution ended without the component's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// A cancel command (or the caller) stopped it.
    Cancelled,
    /// Time in the component (running or blocked in WASI), host calls excluded, passed `limit_ms`.
    TimeLimit {
        limit_ms: u64,
    },
    /// Wall-clock time, host calls included, passed `limit_ms`.
    WallClock {
        limit_ms: u64,
    },
    Memory {
        limit_mb: u64,
    },
    HostCalls(u64),
    /// A replayed call differs from its record.
    Divergence(String),
    /// The component waits in `durability.await`.
    Suspended,
    StackOverflow,
    /// No instance slot became free in time.
    Busy,
    /// A host function or the runtime panicked.
    Panic(String),
    /// The component trapped (`unreachable`, a guest panic, ...).
    Trap(String),
    /// The host failed (a ledger write, an instantiation).
    Failed(String),
}

impl Stop {
    /// The stop in words, after `who` (`PluginError: <who> ...`).
    pub fn describe(&self, who: &str) -> String {
        match self {
            Stop::Cancelled => format!("Cancelled: {who} was stopped by a cancel command"),
            Stop::TimeLimit { limit_ms } => format!(
                "PluginError: {who} exceeded its CPU time limit of {limit_ms} ms (time running or blocked in the component; host calls not counted)"
            ),
            Stop::WallClock { limit_ms } => {
                format!("PluginError: {who} exceeded its wall-clock limit of {limit_ms} ms")
            }
            Stop::Memory { limit_mb } => {
                format!("PluginError: {who} exceeded its memory limit of {limit_mb} MiB")
            }
            Stop::HostCalls(n) => {
                format!("PluginError: {who} made more than {n} host calls in one execution")
            }
            Stop::Divergence(m) => format!("ReplayDivergence: {m}"),
            Stop::Suspended => {
                format!("PluginError: {who}: suspended outside an await call")
            }
            Stop::StackOverflow => {
                format!("PluginError: {who} overflowed its stack (unbounded recursion?)")
            }
            Stop::Busy => format!(
                "PluginError: {who}: the gateway is busy (every component instance slot is taken); try again later"
            ),
            Stop::Panic(m) => format!("PluginError: {who}: the host failed while running it: {m}"),
            Stop::Trap(m) => format!("PluginError: {who} trapped: {m}"),
            Stop::Failed(m) => format!("PluginError: {who} failed: {m}"),
        }
    }
}

/// Time a component spent inside recorded host calls, so what remains is its own time.
#[derive(Debug)]
pub struct HostClock {
    started: Instant,
    inner: Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    /// Finished host calls.
    in_calls: Duration,
    /// Start of the host call under way, if one is (nested calls count once).
    since: Option<Instant>,
    depth: u32,
}

impl HostClock {
    /// A clock started now.
    pub fn new() -> Arc<HostClock> {
        Arc::new(HostClock {
            started: Instant::now(),
            inner: Mutex::new(ClockState::default()),
        })
    }
    /// A host call begins.
    pub fn enter(&self) {
        let mut s = self.inner.lock();
        if s.depth == 0 {
            s.since = Some(Instant::now());
        }
        s.depth += 1;
    }
    /// The host call ends.
    pub fn exit(&self) {
        let mut s = self.inner.lock();
        s.depth = s.depth.saturating_sub(1);
        if s.depth == 0
            && let Some(t) = s.since.take()
        {
            s.in_calls += t.elapsed();
        }
    }
    /// Time outside host calls since the start.
    pub fn own_time(&self) -> Duration {
        let s = self.inner.lock();
        let now = Instant::now();
        let in_calls = s.in_calls + s.since.map(|t| now - t).unwrap_or_default();
        (now - self.started).saturating_sub(in_calls)
    }
    /// Time since the start.
    pub fn wall(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The time limits of one execution.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time in the component (running or blocked in WASI), host calls excluded.
    pub time: Duration,
    /// Wall-clock time in all.
    pub wall: Duration,
}

impl Limits {
    /// The limits `grants` set.
    pub fn of(g: &Grants) -> Limits {
        Limits {
            time: Duration::from_millis(g.timeout_ms),
            wall: Duration::from_millis(g.wall_timeout_ms.max(g.timeout_ms)),
        }
    }
}

/// A store for one execution: the limiter, and an epoch callback that stops the component when it is
/// cancelled or out of time (the callback runs only while wasm code runs; [`run`] covers the rest).
pub fn store(
    engine: &Engine,
    ctx: NodeCtx,
    limits: Limits,
    cancel: Option<Arc<CancelFlag>>,
) -> WasmStore<NodeCtx> {
    let mut ws = WasmStore::new(engine, ctx);
    ws.limiter(|c| &mut c.limiter);
    ws.set_epoch_deadline(1);
    ws.epoch_deadline_callback(move |ctx| {
        if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(HostStop::Cancelled.into());
        }
        let clock = &ctx.data().rec.clock;
        if clock.own_time() > limits.time || clock.wall() > limits.wall {
            return Err(HostStop::TimeLimit.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    ws
}

/// Runs `body` (instantiate and call) under the store's limits: out of time while blocked, cancelled, or
/// panicking, it is dropped and the reason returned; a trap is classified by type.
pub async fn run<T>(
    ws: &mut WasmStore<NodeCtx>,
    limits: Limits,
    cancel: Option<Arc<CancelFlag>>,
    body: impl AsyncFnOnce(&mut WasmStore<NodeCtx>) -> wasmtime::Result<T>,
) -> Result<T, Stop> {
    let clock = ws.data().rec.clock.clone();
    let outcome = {
        let fut = AssertUnwindSafe(body(ws)).catch_unwind();
        let cancelled = async {
            match &cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            r = fut => match r {
                Ok(r) => Ok(r),
                Err(panic) => Err(Stop::Panic(panic_message(panic.as_ref()))),
            },
            s = watchdog(&clock, limits) => Err(s),
            _ = cancelled => Err(Stop::Cancelled),
        }
    };
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(trap)) => Err(classify(&trap, ws.data(), limits)),
        Err(stop) => Err(stop),
    }
}

/// Resolves when the execution is out of time, waking only at the next possible deadline.
async fn watchdog(clock: &HostClock, limits: Limits) -> Stop {
    loop {
        let (own, wall) = (clock.own_time(), clock.wall());
        if wall >= limits.wall {
            return Stop::WallClock {
                limit_ms: ms(limits.wall),
            };
        }
        if own >= limits.time {
            return Stop::TimeLimit {
                limit_ms: ms(limits.time),
            };
        }
        let next = (limits.time - own).min(limits.wall - wall);
        tokio::time::sleep(next + Duration::from_millis(1)).await;
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A trap as a [`Stop`]: the host's own reason when a host function or the epoch callback stopped it.
fn classify(trap: &wasmtime::Error, data: &NodeCtx, limits: Limits) -> Stop {
    let host = trap
        .chain()
        .find_map(|e| e.downcast_ref::<HostStop>())
        .cloned();
    if data.suspend.is_some() || host == Some(HostStop::Suspended) {
        return Stop::Suspended;
    }
    if data.limiter.memory_hit {
        return Stop::Memory {
            limit_mb: data.limiter.max_memory_mb() as u64,
        };
    }
    match host {
        Some(HostStop::Cancelled) => return Stop::Cancelled,
        Some(HostStop::TimeLimit) => {
            return if data.rec.clock.wall() > limits.wall {
                Stop::WallClock {
                    limit_ms: ms(limits.wall),
                }
            } else {
                Stop::TimeLimit {
                    limit_ms: ms(limits.time),
                }
            };
        }
        Some(HostStop::HostCalls(n)) => return Stop::HostCalls(n),
        Some(HostStop::Divergence(m)) => return Stop::Divergence(m),
        Some(HostStop::Failed(m)) => return Stop::Failed(m),
        Some(HostStop::Suspended) | None => {}
    }
    match trap.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => Stop::StackOverflow,
        Some(t) => Stop::Trap(t.to_string()),
        None => {
            let cause = trap
                .chain()
                .last()
                .map(|c| c.to_string())
                .unwrap_or_default();
            Stop::Failed(cause.lines().next().unwrap_or_default().to_string())
        }
    }
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Which share of the instance pool an execution may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Third-party code: bundle and plugins-dir components (the Python code node among them).
    General,
    /// The built-in components and pin expressions: they also get the reserve, so a flood of
    /// third-party work never starves them.
    Reserved,
}

/// Admission to the instance pool: bounded slots, a bounded queue, a reserve for [`Class::Reserved`].
pub struct Admission {
    general: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// A held instance slot.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    /// `general + reserve` slots in all (kept below the pool's size, which nested tool calls and `describe`
    /// also draw from), at most `max_waiting` executions queued, each for at most `max_wait`.
    pub fn new(
        general: usize,
        reserve: usize,
        max_waiting: usize,
        max_wait: Duration,
    ) -> Admission {
        Admission {
            general: Arc::new(Semaphore::new(general)),
            reserve: Arc::new(Semaphore::new(reserve)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// A slot for `class`, waiting in the bounded queue; `Stop::Busy` when the queue is full or the wait
    /// too long.
    pub async fn acquire(&self, class: Class) -> Result<Slot, Stop> {
        if let Ok(p) = self.general.clone().try_acquire_owned() {
            return Ok(Slot(p));
        }
        if class == Class::Reserved
            && let Ok(p) = self.reserve.clone().try_acquire_owned()
        {
            return Ok(Slot(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Stop::Busy);
        }
        let wait = async {
            match class {
                Class::General => self.general.clone().acquire_owned().await,
                Class::Reserved => tokio::select! {
                    p = self.general.clone().acquire_owned() => p,
                    p = self.reserve.clone().acquire_owned() => p,
                },
            }
        };
        let got = tokio::time::timeout(self.max_wait, wait).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(Slot(p)),
            _ => Err(Stop::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_time_excludes_host_calls_under_way_and_finished() {
        let c = HostClock::new();
        c.enter();
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            c.own_time() < Duration::from_millis(15),
            "{:?}",
            c.own_time()
        );
        c.enter();
        c.exit();
        std::thread::sleep(Duration::from_millis(10));
        assert!(
            c.own_time() < Duration::from_millis(15),
            "still inside the outer call"
        );
        c.exit();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.own_time() >= Duration::from_millis(20));
        assert!(c.wall() >= Duration::from_millis(60));
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_the_reserve_kept() {
        let a = Admission::new(1, 1, 1, Duration::from_millis(50));
        let g = a.acquire(Class::General).await.expect("first slot");
        assert_eq!(
            a.acquire(Class::General).await.err(),
            Some(Stop::Busy),
            "no free general slot within the wait"
        );
        let r = a.acquire(Class::Reserved).await.expect("the reserve");
        drop(g);
        let g2 = a.acquire(Class::General).await.expect("freed");
        drop((r, g2));
    }
}
