//! How long a call may run: its two clocks ([`SharedDeadline`]), the trap raised
//! when one runs out ([`DeadlineExceeded`]), and the thread that advances the
//! engine's epoch every [`EPOCH_TICK`] (each tick runs a store's epoch callback,
//! which looks at the clocks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// How often the engine's epoch advances: the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Raised (as a trap) when a call passes its deadline or wall-clock ceiling.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0} ms")]
pub struct DeadlineExceeded(pub u64);

/// A call's two clocks: the deadline (`timeout_ms`), which stands still while
/// the call waits for a person's answer, and the wall-clock ceiling
/// (`max_wall_ms`), which never moves. Read by the epoch callback and by the
/// timer around the call.
#[derive(Clone)]
pub struct SharedDeadline(Arc<std::sync::Mutex<Clocks>>);

struct Clocks {
    deadline: Instant,
    paused_since: Option<Instant>,
    ceiling: Instant,
    timeout_ms: u64,
    wall_ms: u64,
}

impl SharedDeadline {
    pub fn new(started: Instant, timeout_ms: u64, wall_ms: u64) -> Self {
        SharedDeadline(Arc::new(std::sync::Mutex::new(Clocks {
            deadline: started + Duration::from_millis(timeout_ms),
            paused_since: None,
            ceiling: started + Duration::from_millis(wall_ms),
            timeout_ms,
            wall_ms,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clocks> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the call should next be looked at: its deadline; while it waits for
    /// an answer, the ceiling or within [`PAUSED_CHECK`], whichever is first
    /// (the wait may end, and the deadline run again, at any moment).
    pub fn next_check(&self) -> Instant {
        let c = self.lock();
        if c.paused_since.is_some() { c.ceiling.min(Instant::now() + PAUSED_CHECK) } else { c.deadline.min(c.ceiling) }
    }

    /// The limit (in ms) the call has passed at `now`, if any.
    pub fn expired(&self, now: Instant) -> Option<u64> {
        let c = self.lock();
        if now >= c.ceiling {
            return Some(c.wall_ms);
        }
        (c.paused_since.is_none() && now >= c.deadline).then_some(c.timeout_ms)
    }

    /// How long the call may still run from `now`: to its deadline, or to the
    /// ceiling while the deadline stands still.
    pub fn remaining(&self, now: Instant) -> Duration {
        let c = self.lock();
        let end = if c.paused_since.is_some() { c.ceiling } else { c.deadline.min(c.ceiling) };
        end.saturating_duration_since(now)
    }

    pub(super) fn pause(&self) {
        let mut c = self.lock();
        c.paused_since.get_or_insert_with(Instant::now);
    }

    fn resume(&self) {
        let mut c = self.lock();
        if let Some(since) = c.paused_since.take() {
            c.deadline += since.elapsed();
        }
    }
}

/// How often a call waiting for a person's answer is looked at.
const PAUSED_CHECK: Duration = Duration::from_millis(100);

/// Resumes the deadline when a wait for an answer ends, however it ends.
pub(super) struct Paused<'a>(pub(super) &'a SharedDeadline);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
pub(super) fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("moat-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
