//! The plugin runtime: compiles components, and runs every call in a fresh,
//! locked-down instance.
//!
//! This module knows nothing of HTTP, tokens or JSON-RPC: it takes a plugin, a
//! name and JSON arguments, and returns content or a [`CallError`].
//!
//! Per call: a permit from the concurrency limit, a fresh
//! [`Store`](wasmtime::Store) holding only the plugin's granted directories,
//! environment variables and HTTP origins (no sockets, no inherited stdio; every
//! outbound request goes through `egress`), a memory cap enforced
//! by a resource limiter, an epoch deadline (the engine's epoch ticks every
//! [`EPOCH_TICK`]; each tick the callback yields to tokio or ends the call once
//! the deadline passed), and an instance made from the plugin's
//! [`InstancePre`](wasmtime::component::InstancePre) in the pooling allocator.
//! The store is dropped when the call ends, whatever happened.
//!
//! Here: the engine and its pool, [`Runtime`], [`LoadedPlugin`] and the
//! bindings. Loading is in `load` (with the catalogue checks in `catalogue`),
//! the call path in `call`, the errors in `error`, the call's clocks and the
//! epoch ticker in `deadline`, and the per-call store state and the host side of
//! the plugin's imports in `host`.

pub mod cache;
mod call;
mod catalogue;
mod deadline;
mod egress;
mod error;
mod host;
mod load;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::{DirGrant, MAX_MEMORY_MB, PluginSettings, PoolLimits};
pub use cache::Origin;
pub use deadline::EPOCH_TICK;
use deadline::spawn_epoch_ticker;
pub use egress::EgressMetrics;
pub use error::{CallError, LoadError};
use host::{CallState, HostLogRate};
pub use host::{MAX_QUESTIONS_PER_CALL, MAX_QUESTIONS_PER_ROUND};
pub use host::{VolumeStatsError, open_granted};
pub use load::{SUPPORTED_WIT_VERSIONS, plugin_name};
use types::*;

pub(crate) mod bindings {
    pub mod v0_1 {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.2",
            world: "moat:plugin/plugin@0.1.2",
            imports: {
                "moat:plugin/client.ask": async | trappable,
            },
            exports: { default: async },
        });
    }
}

use bindings::v0_1::{Plugin as PluginV01, PluginPre as PluginPreV01};

/// Events a call may have queued for the client; more are dropped.
pub const EVENT_QUEUE: usize = 64;
/// Bytes of each memory reset in place between instances (see `engine_config`).
const KEEP_RESIDENT: usize = 256 << 10;

/// Options for [`Runtime::new`].
#[derive(Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Where outbound HTTP requests are counted; `None`: nowhere.
    pub metrics: Option<Arc<dyn EgressMetrics>>,
    /// The instance pool's shape (`[plugins.defaults]`).
    pub pool: PoolLimits,
}

/// Compiles and runs plugins. One per process; cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: cache::ArtifactCache,
    /// One permit per call that may run at once, every plugin together: the
    /// pool's instances less those kept for catalogue reads at load.
    permits: Arc<Semaphore>,
    pool: PoolLimits,
    metrics: Option<Arc<dyn EgressMetrics>>,
}

/// Per-call extras from the caller.
#[derive(Default, Clone)]
pub struct CallContext {
    /// Receives the plugin's log and progress events as they happen (a bounded
    /// queue: when it is full, events are dropped, never waited for).
    pub events: Option<mpsc::Sender<PluginEvent>>,
    /// Answers the plugin's elicitation and sampling questions.
    pub client: Option<Arc<dyn ClientBridge>>,
    /// Who is calling (the `caller` import); none without auth.
    pub identity: Option<Identity>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("events", &self.events.is_some())
            .field("client", &self.client.is_some())
            .field("identity", &self.identity)
            .finish()
    }
}

/// A loaded plugin: its compiled component ready to instantiate, what it offers,
/// and what the operator grants it. Immutable; replaced whole on reload.
pub struct LoadedPlugin {
    pub name: String,
    pub path: PathBuf,
    /// SHA-256 of the `.wasm` file, hex.
    pub hash: String,
    pub wit_version: String,
    pub origin: Origin,
    pub settings: PluginSettings,
    pub tools: Vec<ToolInfo>,
    pub resources: Vec<ResourceInfo>,
    pub resource_templates: Vec<ResourceTemplateInfo>,
    pub prompts: Vec<PromptInfo>,
    /// Interfaces the component imports.
    pub imports: Vec<String>,
    grants: Arc<[DirGrant]>,
    pre: PluginPreV01<CallState>,
    /// One permit per call that may run at once (`max_concurrency`).
    slots: Arc<Semaphore>,
    host_log: Arc<HostLogRate>,
    _alive: Alive,
}

/// Counts loaded plugin versions still alive (in a registry snapshot or held by a
/// call in flight): after reloads settle it equals the plugins serving, or
/// something leaked.
static VERSIONS_ALIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Alive;

impl Alive {
    fn new() -> Self {
        VERSIONS_ALIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Alive
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        VERSIONS_ALIVE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Plugin versions alive in this process (see [`LoadedPlugin`]).
pub fn versions_alive() -> usize {
    VERSIONS_ALIVE.load(std::sync::atomic::Ordering::Relaxed)
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("hash", &self.hash)
            .field("tools", &self.tools.iter().map(|t| &t.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub fn tool(&self, name: &str) -> Option<&ToolInfo> {
        self.tools.iter().find(|t| t.name == name)
    }
}

fn engine_config(shape: &PoolLimits) -> Config {
    let n = shape.instances;
    let mut pool = PoolingAllocationConfig::default();
    // Room for the most in every slot: no component can run the pool dry for
    // others, and one that needs more than a slot holds is refused at load.
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(shape.core_instances))
        .total_memories(n.saturating_mul(shape.memories))
        .total_tables(n.saturating_mul(shape.tables))
        .max_core_instances_per_component(shape.core_instances)
        .max_memories_per_component(shape.memories)
        .max_tables_per_component(shape.tables)
        .table_elements(shape.table_elements as usize)
        .total_stacks(n)
        .max_memories_per_module(1)
        .max_memory_size((MAX_MEMORY_MB as usize) << 20)
        .max_unused_warm_slots(64.min(n))
        // Reset the first pages of a memory (stack, data, heap start) by memset
        // instead of madvise + page faults on the next instance.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(16 << 10);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(1 << 20);
    config
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Self, String> {
        let pool = options.pool;
        let engine = Engine::new(&engine_config(&pool)).map_err(|e| format!("cannot create the wasm engine: {e}"))?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        PluginV01::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s).map_err(|e| e.to_string())?;
        let cache = match options.cache_dir {
            Some(dir) => cache::ArtifactCache::new(&engine, Some(dir)),
            None => cache::ArtifactCache::disabled(&engine),
        };
        spawn_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
            permits: Arc::new(Semaphore::new(pool.calls() as usize)),
            pool,
            metrics: options.metrics,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache.dir()
    }

    /// The instance pool's shape.
    pub fn pool(&self) -> &PoolLimits {
        &self.pool
    }
}
