//! Loading a plugin: the header check, compilation (or a cache hit) on the
//! blocking pool, the world check, the `InstancePre`, and the catalogue read in a
//! sandboxed instance under its own deadline, then checked against the catalogue
//! limits. Also the same component again under new settings ([`Runtime::reconfigure`]).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use super::bindings::v0_1::PluginPre as PluginPreV01;
use super::catalogue;
use super::host::HostLogRate;
use super::{Alive, CallContext, LoadError, LoadedPlugin, Origin, Runtime};
use crate::config::{DirGrant, PluginSettings};

/// The WIT package versions this host serves.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.1.1", "0.1.2"];

impl Runtime {
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
        let (component, origin, hash) = self.compile(bytes).await?;
        self.check_fit(&component, &settings)?;
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

    /// Compiles a component (or finds it in the artifact cache) on the blocking
    /// pool and checks that it is a moat plugin; returns it with where it came
    /// from and its SHA-256. `moat compile` fills the cache with this.
    pub async fn compile(&self, bytes: Vec<u8>) -> Result<(Component, Origin, String), LoadError> {
        check_component_header(&bytes)?;
        let (engine, cache, pool) = (self.engine.clone(), self.cache.clone(), self.pool);
        let (component, origin, hash) = tokio::task::spawn_blocking(move || {
            let hash = hex::encode(Sha256::digest(&bytes));
            cache.load_or_compile(&engine, &bytes, &hash).map(|(c, o)| (c, o, hash)).map_err(|e| {
                let msg = format!("{e:#}");
                // The pool's per-component limits, checked when wasmtime builds
                // the component: it needs more than one instance may hold.
                if msg.contains("transitively contains") || msg.contains("pooling allocator") {
                    LoadError::Resources(format!(
                        "the component needs more than one instance of the pool holds ({} core instances, {} linear memories, {} tables; raise max_core_instances, max_memories or max_tables in moat.toml [plugins.defaults]): {msg}",
                        pool.core_instances, pool.memories, pool.tables
                    ))
                } else {
                    LoadError::NotAComponent(msg)
                }
            })
        })
        .await
        .map_err(|e| LoadError::Task { task: "compiling the component", reason: e.to_string() })??;
        self.check_world(&component)?;
        Ok((component, origin, hash))
    }

    /// Refuses, at load, a plugin that could not run as configured: more calls
    /// at once than the pool has instances, a memory that starts above the
    /// plugin's memory cap, a table larger than a pool slot holds. Otherwise
    /// each of its calls would fail later, one by one.
    fn check_fit(&self, component: &Component, settings: &PluginSettings) -> Result<(), LoadError> {
        let pool = &self.pool;
        let limits = &settings.limits;
        if limits.max_concurrency > pool.calls() {
            return Err(LoadError::Resources(format!(
                "max_concurrency = {} but the instance pool runs {} calls at once (pool_instances = {} in moat.toml [plugins.defaults])",
                limits.max_concurrency,
                pool.calls(),
                pool.instances
            )));
        }
        let Some(needs) = component.resources_required() else { return Ok(()) };
        let start_bytes = needs.max_initial_memory_size.unwrap_or(0).saturating_mul(64 << 10);
        if start_bytes > limits.memory_bytes {
            return Err(LoadError::Resources(format!(
                "a linear memory of the component starts at {} MiB, above the plugin's memory cap of {} MiB (raise memory_mb in its sidecar's [limits])",
                start_bytes.div_ceil(1 << 20),
                limits.memory_bytes >> 20
            )));
        }
        if let Some(elements) = needs.max_initial_table_size
            && elements > u64::from(pool.table_elements)
        {
            return Err(LoadError::Resources(format!(
                "a table of the component starts with {elements} elements, more than a pool slot holds ({}; raise max_table_elements in moat.toml [plugins.defaults])",
                pool.table_elements
            )));
        }
        Ok(())
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
        self.check_fit(next.pre.instance_pre().component(), &next.settings)?;
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
            .with_instance(plugin, limits, &CallContext::default(), "the catalogue", async |store, p| {
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
            .map_err(|e| LoadError::Task { task: "checking the catalogue", reason: e.to_string() })??;
        plugin.tools = checked.tools;
        plugin.resources = checked.resources;
        plugin.resource_templates = checked.templates;
        plugin.prompts = checked.prompts;
        Ok(())
    }
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
}
