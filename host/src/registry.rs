//! A plugins folder loaded into one immutable catalogue.
//!
//! Every `NAME.wasm` is loaded with its optional sidecar `NAME.toml`. A file that
//! fails to load is recorded with its reason and the others still load. Plugins
//! load in file-name order; a plugin offering a tool, resource or prompt name that
//! an earlier one already offers is refused, naming both files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Limits, PluginSettings};
use crate::runtime::types::ToolInfo;
use crate::runtime::{LoadedPlugin, Runtime};

/// A plugin file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the plugins directory {path}: {source}")]
    ReadDir { path: PathBuf, source: std::io::Error },
}

/// The loaded plugins and an index of what they offer.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    /// Tool name → (plugin index, tool index).
    tools: BTreeMap<String, (usize, usize)>,
    failures: Vec<LoadFailure>,
    /// Sidecars with no component beside them.
    orphan_sidecars: Vec<PathBuf>,
}

/// The component files in `dir`, sorted, and sidecars without a component.
pub fn scan_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), RegistryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::ReadDir { path: dir.to_owned(), source })?;
    let mut wasm = Vec::new();
    let mut toml = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Hidden files, editor swap and backup files are never plugins.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") if path.is_file() => wasm.push(path),
            Some("toml") => toml.push(path),
            _ => {}
        }
    }
    wasm.sort();
    let orphans = toml.into_iter().filter(|t| !wasm.iter().any(|w| w.with_extension("toml") == *t)).collect();
    Ok((wasm, orphans))
}

impl Registry {
    /// Loads every plugin in `dir`.
    pub async fn load_dir(runtime: &Runtime, dir: &Path, defaults: Limits) -> Result<Self, RegistryError> {
        let (files, orphan_sidecars) = scan_dir(dir)?;
        let mut registry = Registry { orphan_sidecars, ..Default::default() };
        for path in files {
            let result = match PluginSettings::load_sidecar(&path.with_extension("toml"), defaults) {
                Ok(settings) => runtime.load(&path, settings).await.map_err(|e| e.to_string()),
                Err(e) => Err(format!("sidecar: {e}")),
            };
            match result.and_then(|p| registry.add(p)) {
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "plugin not loaded");
                    registry.failures.push(LoadFailure { path, error });
                }
            }
        }
        Ok(registry)
    }

    /// Adds a loaded plugin unless something it offers is already offered.
    pub fn add(&mut self, plugin: LoadedPlugin) -> Result<(), String> {
        for other in &self.plugins {
            let clash = plugin
                .tools
                .iter()
                .find(|t| other.tool(&t.name).is_some())
                .map(|t| format!("tool `{}`", t.name))
                .or_else(|| {
                    plugin
                        .resources
                        .iter()
                        .find(|r| other.resources.iter().any(|o| o.uri == r.uri))
                        .map(|r| format!("resource `{}`", r.uri))
                })
                .or_else(|| {
                    plugin
                        .prompts
                        .iter()
                        .find(|p| other.prompts.iter().any(|o| o.name == p.name))
                        .map(|p| format!("prompt `{}`", p.name))
                });
            if let Some(what) = clash {
                return Err(format!(
                    "{what} is already provided by {}; refusing {}",
                    other.path.display(),
                    plugin.path.display()
                ));
            }
        }
        let index = self.plugins.len();
        for (i, t) in plugin.tools.iter().enumerate() {
            self.tools.insert(t.name.clone(), (index, i));
        }
        tracing::info!(
            plugin = %plugin.name,
            tools = plugin.tools.len(),
            origin = ?plugin.origin,
            hash = %&plugin.hash[..12],
            "plugin loaded"
        );
        self.plugins.push(Arc::new(plugin));
        Ok(())
    }

    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    pub fn orphan_sidecars(&self) -> &[PathBuf] {
        &self.orphan_sidecars
    }

    /// The plugin serving `name` and the tool's description.
    pub fn tool(&self, name: &str) -> Option<(&Arc<LoadedPlugin>, &ToolInfo)> {
        let &(p, t) = self.tools.get(name)?;
        Some((&self.plugins[p], &self.plugins[p].tools[t]))
    }

    /// Every tool, in name order.
    pub fn tools(&self) -> impl Iterator<Item = (&Arc<LoadedPlugin>, &ToolInfo)> {
        self.tools.values().map(|&(p, t)| (&self.plugins[p], &self.plugins[p].tools[t]))
    }
}
