//! The plugin runtime: compiles components, and runs every call in a fresh,
//! locked-down instance.
//!
//! This module knows nothing of HTTP, tokens or JSON-RPC: it takes a plugin, a
//! name and JSON arguments, and returns content or a [`CallError`].
//!
//! Per call: a permit from the concurrency limit, a fresh [`Store`] holding only
//! the plugin's granted directories and environment variables (no network, no
//! inherited stdio), a memory cap enforced by a resource limiter, an epoch
//! deadline (the engine's epoch ticks every [`EPOCH_TICK`]; each tick the callback
//! yields to tokio or ends the call once the deadline passed), and an instance made
//! from the plugin's [`InstancePre`](wasmtime::component::InstancePre) in the
//! pooling allocator. The store is dropped when the call ends, whatever happened.

pub mod cache;
mod catalogue;
mod host;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::SinkOutputStream;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::config::{DirGrant, DirMode, Limits, MAX_MEMORY_MB, PluginSettings};
use crate::schema::{Invalid, SchemaValidator};
pub use cache::Origin;
pub use host::open_granted;
use host::{
    BadAnswer, Budget, CallState, CappedPipe, DeadlineExceeded, HostLogRate, InputRequired, MemoryLimitExceeded,
    MemoryLimiter, MissingCapability, SharedDeadline,
};
pub use host::{MAX_QUESTIONS_PER_CALL, MAX_QUESTIONS_PER_ROUND};
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

/// How often the engine's epoch advances: the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Most instances alive at once; further calls wait for a permit.
const MAX_INSTANCES: u32 = 256;
/// What one component instance may hold. The pool has room for this much in
/// every one of its instances, so no component can run the pool dry for
/// others; a component that needs more is refused at load.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
pub const MAX_TABLES_PER_COMPONENT: u32 = 8;
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Longest a call waits for a free slot of its plugin (`max_concurrency`)
/// before it is answered "busy".
const BUSY_WAIT: Duration = Duration::from_secs(1);
/// Events a call may have queued for the client; more are dropped.
pub const EVENT_QUEUE: usize = 64;
/// Bytes of each memory reset in place between instances (see `engine_config`).
const KEEP_RESIDENT: usize = 256 << 10;
/// Bytes of a plugin's stderr kept for error messages.
const STDERR_CAPACITY: usize = 64 * 1024;
/// The WIT package versions this host serves.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.1.1", "0.1.2"];

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("not a moat plugin: {0}")]
    WrongWorld(String),
    #[error(
        "imports {0}, which moat does not provide (plugins get WASI files, clocks and random, and moat's log, progress and volume-stats; no network)"
    )]
    UnsupportedImport(String),
    #[error("{0}")]
    Metadata(String),
    #[error("credential in plugin metadata: {0}")]
    Credential(String),
    #[error("sidecar: {0}")]
    Sidecar(String),
    /// The component needs more than one plugin instance may hold.
    #[error("{0}")]
    Resources(String),
}

/// Why a call did not return a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No tool, resource or prompt has this name.
    #[error("{0}")]
    NotFound(String),
    /// The arguments do not match the input schema (checked before the plugin runs)
    /// or the plugin rejected them.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and reported an error: a tool result with `isError`.
    #[error("{0}")]
    Failed(String),
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    MemoryLimit(String),
    #[error("output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: u64 },
    /// The plugin crashed (trap or panic).
    #[error("plugin crashed: {0}")]
    Crashed(String),
    /// The plugin returned something malformed.
    #[error("plugin returned an invalid result: {0}")]
    BadOutput(String),
    /// The plugin asked the client something not yet answered; the MCP layer
    /// turns this into an input-required result.
    #[error("the tool needs input from the client")]
    InputRequired,
    /// The plugin asked something the client did not declare (MCP -32021).
    #[error("the client did not declare the `{0}` capability this tool needs")]
    MissingCapability(&'static str),
    /// The plugin already runs as many calls as it may (`max_concurrency`).
    #[error("{0}")]
    Busy(String),
    /// moat itself could not run the call.
    #[error("cannot run the plugin: {0}")]
    Host(String),
}

impl CallError {
    /// True when the sandbox stopped the call (deadline, memory, output cap, crash).
    pub fn is_sandbox_stop(&self) -> bool {
        matches!(
            self,
            CallError::Timeout(_)
                | CallError::MemoryLimit(_)
                | CallError::OutputTooLarge { .. }
                | CallError::Crashed(_)
        )
    }
}

impl From<bindings::v0_1::moat::plugin::types::CallError> for CallError {
    fn from(e: bindings::v0_1::moat::plugin::types::CallError) -> Self {
        use bindings::v0_1::moat::plugin::types::CallError as W;
        match e {
            W::Failed(m) => CallError::Failed(m),
            W::InvalidArguments(m) => CallError::InvalidArguments(m),
            W::NotFound(m) => CallError::NotFound(m),
        }
    }
}

/// Options for [`Runtime::new`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// Compiles and runs plugins. One per process; cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: cache::ArtifactCache,
    permits: Arc<Semaphore>,
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

fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_memories(MAX_INSTANCES * MAX_MEMORIES_PER_COMPONENT)
        .total_tables(MAX_INSTANCES * MAX_TABLES_PER_COMPONENT)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .total_stacks(MAX_INSTANCES)
        .max_memories_per_module(1)
        .max_memory_size((MAX_MEMORY_MB as usize) << 20)
        .max_unused_warm_slots(64)
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
        let engine = Engine::new(&engine_config()).map_err(|e| format!("cannot create the wasm engine: {e}"))?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        PluginV01::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s).map_err(|e| e.to_string())?;
        let cache = match options.cache_dir {
            Some(dir) => cache::ArtifactCache::new(&engine, Some(dir)),
            None => cache::ArtifactCache::disabled(&engine),
        };
        spawn_epoch_ticker(&engine);
        Ok(Runtime { engine, linker, cache, permits: Arc::new(Semaphore::new(MAX_INSTANCES as usize - 16)) })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache.dir()
    }

    /// Loads the plugin at `path` with `settings`. Compilation (when the component
    /// is not cached) runs on tokio's blocking pool, off the request path.
    pub async fn load(&self, path: &Path, settings: PluginSettings) -> Result<LoadedPlugin, LoadError> {
        let bytes = tokio::fs::read(path).await.map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        self.load_bytes(path, bytes, settings).await
    }

    /// Loads a plugin from its bytes; `path` names it.
    pub async fn load_bytes(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        settings: PluginSettings,
    ) -> Result<LoadedPlugin, LoadError> {
        check_component_header(&bytes)?;
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let (component, origin, hash) = tokio::task::spawn_blocking(move || {
            let hash = hex::encode(Sha256::digest(&bytes));
            cache.load_or_compile(&engine, &bytes, &hash).map(|(c, o)| (c, o, hash)).map_err(|e| {
                let msg = format!("{e:#}");
                // The pool's per-component limits, checked when wasmtime builds
                // the component: it needs more than one instance may hold.
                if msg.contains("transitively contains") || msg.contains("pooling allocator") {
                    LoadError::Resources(format!(
                        "the component needs more than a plugin may use ({MAX_MEMORIES_PER_COMPONENT} linear memories, {MAX_TABLES_PER_COMPONENT} tables, {MAX_CORE_INSTANCES_PER_COMPONENT} core instances): {msg}"
                    ))
                } else {
                    LoadError::NotAComponent(msg)
                }
            })
        })
        .await
        .map_err(|e| LoadError::Metadata(format!("compilation task failed: {e}")))??;
        let (wit_version, imports) = self.check_world(&component)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            let msg = format!("{e:#}");
            match imports.iter().find(|i| msg.contains(i.as_str())) {
                Some(i) => LoadError::UnsupportedImport(i.clone()),
                None => LoadError::UnsupportedImport(msg),
            }
        })?;
        let pre = PluginPreV01::new(instance_pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let name = plugin_name(path);
        let grants: Arc<[DirGrant]> = settings.dirs.clone().into();
        let mut plugin = LoadedPlugin {
            name,
            path: path.to_owned(),
            hash,
            wit_version,
            origin,
            settings,
            tools: Vec::new(),
            resources: Vec::new(),
            resource_templates: Vec::new(),
            prompts: Vec::new(),
            imports,
            grants,
            pre,
            slots: Arc::new(Semaphore::new(0)),
            host_log: Arc::new(HostLogRate::new()),
            _alive: Alive::new(),
        };
        plugin.slots = Arc::new(Semaphore::new(plugin.settings.limits.max_concurrency as usize));
        self.read_catalogue(&mut plugin).await?;
        Ok(plugin)
    }

    /// The same component with new settings (a sidecar changed): nothing is
    /// compiled or read from disk; the catalogue is read again under the new grants.
    pub async fn reconfigure(
        &self,
        plugin: &LoadedPlugin,
        settings: PluginSettings,
    ) -> Result<LoadedPlugin, LoadError> {
        let mut next = LoadedPlugin {
            name: plugin.name.clone(),
            path: plugin.path.clone(),
            hash: plugin.hash.clone(),
            wit_version: plugin.wit_version.clone(),
            origin: plugin.origin,
            grants: settings.dirs.clone().into(),
            settings,
            tools: Vec::new(),
            resources: Vec::new(),
            resource_templates: Vec::new(),
            prompts: Vec::new(),
            imports: plugin.imports.clone(),
            pre: plugin.pre.clone(),
            slots: Arc::new(Semaphore::new(0)),
            host_log: plugin.host_log.clone(),
            _alive: Alive::new(),
        };
        next.slots = Arc::new(Semaphore::new(next.settings.limits.max_concurrency as usize));
        self.read_catalogue(&mut next).await?;
        Ok(next)
    }

    /// The WIT version the component was built against (from its export names)
    /// and what it imports.
    fn check_world(&self, component: &Component) -> Result<(String, Vec<String>), LoadError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(n, _)| n.to_owned()).collect();
        let imports: Vec<String> = ty.imports(&self.engine).map(|(n, _)| n.to_owned()).collect();
        let Some(tools) = exports.iter().find(|e| e.starts_with("moat:plugin/tools@")) else {
            return Err(LoadError::WrongWorld(format!(
                "it does not export moat:plugin/tools (it exports: {}); build it with moat-sdk",
                if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
            )));
        };
        let version = tools.trim_start_matches("moat:plugin/tools@").to_owned();
        if !SUPPORTED_WIT_VERSIONS.contains(&version.as_str()) {
            return Err(LoadError::WrongWorld(format!(
                "it was built against moat:plugin@{version}; this moat serves {}",
                SUPPORTED_WIT_VERSIONS.join(", ")
            )));
        }
        Ok((version, imports))
    }

    /// Asks the plugin what it offers (in a sandboxed instance, under its own
    /// short deadline) and checks it against the catalogue limits.
    async fn read_catalogue(&self, plugin: &mut LoadedPlugin) -> Result<(), LoadError> {
        let mut limits = plugin.settings.limits;
        limits.timeout_ms = limits.catalogue.catalogue_timeout_ms;
        limits.max_wall_ms = limits.timeout_ms;
        let (tools, resources, templates, prompts) = self
            .with_instance(plugin, limits, &CallContext::default(), async |store, p| {
                let tools = p.moat_plugin_tools().call_list_tools(&mut *store).await?;
                let resources = p.moat_plugin_resources().call_list_resources(&mut *store).await?;
                let templates = p.moat_plugin_resources().call_list_resource_templates(&mut *store).await?;
                let prompts = p.moat_plugin_prompts().call_list_prompts(&mut *store).await?;
                Ok((tools, resources, templates, prompts))
            })
            .await
            .map_err(|e| LoadError::Metadata(format!("listing its tools failed: {e}")))?;
        let raw = catalogue::RawCatalogue {
            tools: tools.into_iter().map(Into::into).collect(),
            resources: resources.into_iter().map(Into::into).collect(),
            templates: templates.into_iter().map(Into::into).collect(),
            prompts: prompts.into_iter().map(Into::into).collect(),
        };
        // Compiling up to hundreds of schemas is CPU work: off the async workers.
        let catalogue_limits = limits.catalogue;
        let checked = tokio::task::spawn_blocking(move || catalogue::check(raw, &catalogue_limits))
            .await
            .map_err(|e| LoadError::Metadata(format!("checking the catalogue failed: {e}")))??;
        plugin.tools = checked.tools;
        plugin.resources = checked.resources;
        plugin.resource_templates = checked.templates;
        plugin.prompts = checked.prompts;
        Ok(())
    }

    /// A slot among the plugin's `max_concurrency`, waited for briefly.
    async fn slot(&self, plugin: &LoadedPlugin) -> Result<tokio::sync::OwnedSemaphorePermit, CallError> {
        let wait = BUSY_WAIT.min(Duration::from_millis(plugin.settings.limits.timeout_ms));
        match tokio::time::timeout(wait, plugin.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(CallError::Host("the runtime is shutting down".into())),
            Err(_) => Err(CallError::Busy(format!(
                "plugin `{}` is busy: it already runs {} calls, its limit (max_concurrency); try again shortly",
                plugin.name, plugin.settings.limits.max_concurrency
            ))),
        }
    }

    /// Calls a tool: validates `arguments` against its input schema, then runs it
    /// in a fresh instance, then checks the result against its caps and its
    /// output schema.
    pub async fn call_tool(
        &self,
        plugin: &LoadedPlugin,
        tool: &str,
        arguments: &Value,
        ctx: &CallContext,
    ) -> Result<ToolOutput, CallError> {
        let info = plugin.tool(tool).ok_or_else(|| CallError::NotFound(format!("unknown tool `{tool}`")))?;
        let slot = Some(self.slot(plugin).await?);
        let limits = plugin.settings.limits;
        let args = arguments.to_string();
        if args.len() as u64 > limits.max_argument_bytes {
            return Err(CallError::InvalidArguments(format!(
                "the arguments are {} bytes; the limit is {} (max_argument_bytes)",
                args.len(),
                limits.max_argument_bytes
            )));
        }
        let (checked, slot) = check_value(&info.validator, arguments, args.len(), slot).await;
        checked.map_err(|e| match e {
            Invalid::Fields(m) => CallError::InvalidArguments(m),
            Invalid::Budget | Invalid::TooBig(..) => {
                CallError::InvalidArguments(format!("{e}; simplify the arguments"))
            }
        })?;
        let result = self
            .with_instance(plugin, limits, ctx, async |store, p| {
                p.moat_plugin_tools().call_call_tool(&mut *store, tool, &args).await
            })
            .await??;
        // Size the payload as the plugin returned it: no re-serialisation.
        let content: Vec<Content> = result.content.into_iter().map(Into::into).collect();
        let size = content.iter().map(Content::size).sum::<usize>() + result.structured.as_ref().map_or(0, String::len);
        if size as u64 > limits.max_output_bytes {
            return Err(CallError::OutputTooLarge { size, limit: limits.max_output_bytes });
        }
        let mut content = content;
        let structured = match result.structured {
            None if info.output_validator.is_some() => {
                return Err(CallError::BadOutput(
                    "the tool declares an output schema but returned no structured content".into(),
                ));
            }
            None => None,
            Some(s) => {
                let value = serde_json::from_str::<Value>(&s)
                    .map_err(|e| CallError::BadOutput(format!("structured content is not JSON: {e}")))?;
                if !value.is_object() {
                    return Err(CallError::BadOutput("structured content must be a JSON object".into()));
                }
                if let Some(v) = &info.output_validator {
                    let (checked, _) = check_value(v, &value, s.len(), slot).await;
                    checked.map_err(|e| {
                        CallError::BadOutput(format!("structured content does not match the output schema: {e}"))
                    })?;
                }
                // Clients without structured output read the same JSON as text.
                if content.is_empty() {
                    content.push(Content::Text(s));
                }
                Some(value)
            }
        };
        Ok(ToolOutput { content, structured })
    }

    /// Reads a resource the plugin serves.
    pub async fn read_resource(
        &self,
        plugin: &LoadedPlugin,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<Vec<ResourceContents>, CallError> {
        let _slot = self.slot(plugin).await?;
        let limits = plugin.settings.limits;
        let contents = self
            .with_instance(plugin, limits, ctx, async |store, p| {
                p.moat_plugin_resources().call_read_resource(&mut *store, uri).await
            })
            .await??;
        let contents: Vec<ResourceContents> = contents.into_iter().map(Into::into).collect();
        let size: usize = contents.iter().map(ResourceContents::size).sum();
        if size as u64 > limits.max_output_bytes {
            return Err(CallError::OutputTooLarge { size, limit: limits.max_output_bytes });
        }
        Ok(contents)
    }

    /// Fills in a prompt the plugin serves.
    pub async fn get_prompt(
        &self,
        plugin: &LoadedPlugin,
        name: &str,
        arguments: &[(String, String)],
        ctx: &CallContext,
    ) -> Result<PromptResult, CallError> {
        let _slot = self.slot(plugin).await?;
        let limits = plugin.settings.limits;
        let size = arguments.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>();
        if size as u64 > limits.max_argument_bytes {
            return Err(CallError::InvalidArguments(format!(
                "the arguments are {size} bytes; the limit is {} (max_argument_bytes)",
                limits.max_argument_bytes
            )));
        }
        let result: PromptResult = self
            .with_instance(plugin, limits, ctx, async |store, p| {
                p.moat_plugin_prompts().call_get_prompt(&mut *store, name, arguments).await
            })
            .await??
            .into();
        let size = result.size();
        if size as u64 > limits.max_output_bytes {
            return Err(CallError::OutputTooLarge { size, limit: limits.max_output_bytes });
        }
        Ok(result)
    }

    /// Runs `f` against a fresh instance of `plugin`, inside the sandbox limits.
    async fn with_instance<R>(
        &self,
        plugin: &LoadedPlugin,
        limits: Limits,
        ctx: &CallContext,
        f: impl AsyncFnOnce(&mut Store<CallState>, &PluginV01) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        // The shared pool: every plugin holds at most its `max_concurrency` of
        // it; a call waits for a permit no longer than its own deadline.
        let wait = Duration::from_millis(limits.timeout_ms);
        let _permit = match tokio::time::timeout(wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(CallError::Host("the runtime is shutting down".into())),
            Err(_) => {
                return Err(CallError::Busy(format!(
                    "the host runs {} instances at once, its limit; try again shortly",
                    MAX_INSTANCES - 16
                )));
            }
        };
        let stderr = CappedPipe::new(STDERR_CAPACITY);
        let mut store = self.new_store(plugin, limits, ctx, stderr.clone())?;
        let deadline = store.data().deadline.clone();
        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            f(&mut store, &instance).await
        };
        // The epoch callback ends runaway wasm; this also ends a call parked in a
        // host future (a long sleep, a wait for the client) that never runs wasm
        // to see the deadline. The slack lets the epoch callback go first.
        let slack = EPOCH_TICK * 10;
        let mut run = std::pin::pin!(run);
        let result = loop {
            let check = deadline.next_check() + slack;
            tokio::select! {
                r = run.as_mut() => break r,
                () = tokio::time::sleep_until(check.into()) => {
                    if let Some(ms) = deadline.expired(Instant::now() - slack) {
                        return Err(CallError::Timeout(ms));
                    }
                }
            }
        };
        result.map_err(|e| classify(e, limits, &stderr))
    }

    fn new_store(
        &self,
        plugin: &LoadedPlugin,
        limits: Limits,
        ctx: &CallContext,
        stderr: CappedPipe,
    ) -> Result<Store<CallState>, CallError> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(SinkOutputStream).stderr(stderr);
        for grant in plugin.grants.iter() {
            let perms = match grant.mode {
                DirMode::Ro => FsPerms::ReadOnly,
                DirMode::Rw => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(&grant.host, &grant.guest, perms)
                .map_err(|e| CallError::Host(format!("cannot open granted directory {}: {e}", grant.host.display())))?;
        }
        for name in &plugin.settings.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        let state = CallState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            plugin: plugin.name.as_str().into(),
            grants: plugin.grants.clone(),
            events: ctx.events.clone(),
            budget: Budget::new(limits.max_event_bytes),
            deadline: SharedDeadline::new(Instant::now(), limits.timeout_ms, limits.max_wall_ms),
            client: ctx.client.clone(),
            identity: ctx.identity.clone(),
            host_log: plugin.host_log.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if let Some(ms) = ctx.data().deadline.expired(Instant::now()) {
                return Err(DeadlineExceeded(ms).into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        Ok(store)
    }
}

/// Checks a value against a plugin's schema: inline when that is cheap, else on
/// the blocking pool, off the async workers. Either way under the check's
/// budgets, and holding the plugin's slot: a call cancelled meanwhile does not
/// free the slot before the check is done.
async fn check_value(
    validator: &Arc<SchemaValidator>,
    value: &Value,
    bytes: usize,
    slot: Option<OwnedSemaphorePermit>,
) -> (Result<(), Invalid>, Option<OwnedSemaphorePermit>) {
    if !validator.is_heavy(bytes) {
        return (validator.validate(value), slot);
    }
    let (validator, value) = (validator.clone(), value.clone());
    let task = tokio::task::spawn_blocking(move || (validator.validate(&value), slot));
    // A check that panicked counts as over budget; its slot went with it.
    task.await.unwrap_or((Err(Invalid::Budget), None))
}

/// Turns a wasmtime error from a call into what the caller is told.
fn classify(e: wasmtime::Error, limits: Limits, stderr: &CappedPipe) -> CallError {
    if e.downcast_ref::<InputRequired>().is_some() {
        return CallError::InputRequired;
    }
    if let Some(m) = e.downcast_ref::<BadAnswer>() {
        return CallError::InvalidArguments(m.0.clone());
    }
    if let Some(m) = e.downcast_ref::<MissingCapability>() {
        return CallError::MissingCapability(m.0);
    }
    if let Some(d) = e.downcast_ref::<DeadlineExceeded>() {
        return CallError::Timeout(d.0);
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimit(m.to_string());
    }
    let panic = panic_message(&stderr.contents());
    if let Some(trap) = e.downcast_ref::<Trap>() {
        let mut msg = match trap {
            Trap::StackOverflow => "stack overflow".to_owned(),
            // Rust plugins keep their stack at the start of linear memory, so a
            // runaway recursion that exhausts it ends here.
            Trap::MemoryOutOfBounds if panic.is_none() => {
                "out of bounds memory access (a stack overflow, or a bad pointer)".to_owned()
            }
            Trap::UnreachableCodeReached if panic.is_some() => "panicked".to_owned(),
            Trap::Interrupt => return CallError::Timeout(limits.timeout_ms),
            other => other.to_string(),
        };
        if let Some(p) = panic {
            msg = format!("{msg}: {p}");
        }
        if matches!(trap, Trap::UnreachableCodeReached) && msg.contains("memory allocation") {
            return CallError::MemoryLimit(format!(
                "memory limit of {} MiB exceeded: {msg}",
                limits.memory_bytes >> 20
            ));
        }
        return CallError::Crashed(msg);
    }
    CallError::Crashed(format!("{e:#}"))
}

/// The message of a Rust panic printed to stderr, if any.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("panicked at ")?;
    let rest = &text[start..];
    // "panicked at src/lib.rs:1:2:\nmessage\nnote: ..."
    let mut lines = rest.lines();
    let location = lines.next()?.trim_end_matches(':').trim_start_matches("panicked at ");
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    let message = message.join(" ");
    Some(if message.is_empty() { location.to_owned() } else { format!("{message} ({location})") })
}

/// A quick check that gives a clear message for files that are not components.
fn check_component_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::NotAComponent("the file does not start with the WebAssembly magic bytes".into()));
    }
    // Version field: 1 = core module; 0x0d with layer 1 = component.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::NotAComponent(
            "it is a core WebAssembly module, not a component; build for wasm32-wasip2".into(),
        ));
    }
    if bytes[6..8] != [1, 0] {
        return Err(LoadError::NotAComponent("unknown WebAssembly binary version".into()));
    }
    Ok(())
}

/// `plugins/disk_usage.wasm` → `disk_usage`.
pub fn plugin_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked() {
        assert!(matches!(check_component_header(b"hello world"), Err(LoadError::NotAComponent(_))));
        let core = b"\0asm\x01\0\0\0";
        let e = check_component_header(core).unwrap_err();
        assert!(e.to_string().contains("core WebAssembly module"), "{e}");
        assert!(check_component_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn panic_messages_are_extracted() {
        let err = b"\nthread '<unnamed>' panicked at src/lib.rs:10:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(err).unwrap(), "boom (src/lib.rs:10:5)");
        assert_eq!(panic_message(b"nothing"), None);
    }
}
