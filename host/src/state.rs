//! The process's state: one immutable [`Snapshot`] of what is served (the
//! registry and the protocol layer's view of it, always a matching pair) behind
//! one `ArcSwap`, the runtime, metrics, rate limits and the calls in flight.
//!
//! The reload task writes through the narrow [`Publish`] interface; the
//! protocol layer only reads; `serve` wires them together. A reader takes one
//! snapshot per request and keeps it for the whole request, so it never sees a
//! registry and a view that belong to different reloads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use tokio::sync::{broadcast, watch};
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::policy::RateLimits;
use crate::registry::Registry;
use crate::runtime::Runtime;

/// What a swap changed in what clients can see, for `list_changed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Tools,
    Resources,
    Prompts,
}

/// What a protocol layer derives from a registry once per snapshot (its wire
/// form of the catalogue), and how two of them differ for clients.
pub trait View: Send + Sync + Sized + 'static {
    fn of(registry: &Registry) -> Self;
    /// What a client would see change going from `self` to `next`.
    fn changes(&self, next: &Self) -> Vec<Change>;
}

/// One reload's worth of served state. Immutable.
pub struct Snapshot<V> {
    pub registry: Arc<Registry>,
    pub view: V,
}

/// A swap, as heard by listening sessions: what changed. Sent on every swap,
/// also when only plugin versions changed (subscribed resources may have).
#[derive(Debug, Clone)]
pub struct Swap {
    pub changes: Arc<[Change]>,
}

/// What listeners wait for after a swap before they hear of it (in a fleet:
/// until the other replicas serve the same versions, within a bound), so a
/// client that re-lists on `list_changed` sees the new list on any replica.
pub type Settle = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// How the reload task writes the served state.
pub trait Publish: Send + Sync {
    /// The registry serving now.
    fn registry(&self) -> Arc<Registry>;
    /// Swaps in `registry` (with a view made from it) and tells listening
    /// sessions; returns what changed for clients.
    fn publish(&self, registry: Registry) -> Vec<Change>;
}

/// The whole process's state.
pub struct State<V> {
    pub runtime: Arc<Runtime>,
    pub metrics: Arc<Metrics>,
    pub rate_limits: RateLimits,
    current: ArcSwap<Snapshot<V>>,
    swaps: broadcast::Sender<Swap>,
    /// Counts swaps, heard at once (what the fleet's view publishes from).
    served: watch::Sender<u64>,
    settle: OnceLock<Settle>,
    calls: TaskTracker,
    ready: AtomicBool,
}

impl<V: View> State<V> {
    pub fn new(runtime: Arc<Runtime>, metrics: Arc<Metrics>) -> Arc<Self> {
        Self::with_limits(runtime, metrics, RateLimits::default())
    }

    /// With `rate_limits` (fleet-wide ones, say).
    pub fn with_limits(runtime: Arc<Runtime>, metrics: Arc<Metrics>, rate_limits: RateLimits) -> Arc<Self> {
        let registry = Arc::new(Registry::default());
        let view = V::of(&registry);
        let (swaps, _) = broadcast::channel(64);
        Arc::new(State {
            runtime,
            metrics,
            rate_limits,
            current: ArcSwap::from_pointee(Snapshot { registry, view }),
            swaps,
            served: watch::Sender::new(0),
            settle: OnceLock::new(),
            calls: TaskTracker::new(),
            ready: AtomicBool::new(false),
        })
    }

    /// The snapshot serving now; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot<V>> {
        self.current.load_full()
    }

    /// Hears every later swap (after it settled, see [`Settle`]).
    pub fn swaps(&self) -> broadcast::Receiver<Swap> {
        self.swaps.subscribe()
    }

    /// Changes at every swap, at once.
    pub fn served(&self) -> watch::Receiver<u64> {
        self.served.subscribe()
    }

    /// From now on, listeners hear of a swap once `settle` is done.
    pub fn settle_before_telling(&self, settle: Settle) {
        let _ = self.settle.set(settle);
    }

    /// Counts plugin calls in flight while the returned token lives; shutdown
    /// waits for them.
    pub fn calls(&self) -> &TaskTracker {
        &self.calls
    }

    /// Marks the first load done (`/readyz` answers 200 from here on).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

impl<V: View> Publish for State<V> {
    fn registry(&self) -> Arc<Registry> {
        self.current.load().registry.clone()
    }

    fn publish(&self, registry: Registry) -> Vec<Change> {
        let view = V::of(&registry);
        let next = Arc::new(Snapshot { registry: Arc::new(registry), view });
        let old = self.current.swap(next.clone());
        let changes = old.view.changes(&next.view);
        self.served.send_modify(|n| *n += 1);
        let swap = Swap { changes: changes.clone().into() };
        match self.settle.get() {
            None => {
                let _ = self.swaps.send(swap);
            }
            Some(settle) => {
                let (settled, swaps) = (settle(), self.swaps.clone());
                tokio::spawn(async move {
                    settled.await;
                    let _ = swaps.send(swap);
                });
            }
        }
        changes
    }
}
