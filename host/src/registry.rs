//! A plugins folder loaded into one immutable snapshot, and kept in step with it.
//!
//! Every `NAME.wasm` is loaded with its optional sidecar `NAME.toml`. A file that
//! fails to load is recorded with its reason and the others still load. A
//! [`Loader`] remembers what it loaded, so a rescan reads only files whose
//! metadata changed, loads only content it has not seen (SHA-256 of component and
//! sidecar), and reuses the compiled component when only the sidecar changed.
//!
//! What serves wins: a new version that fails to load, or that offers a tool,
//! resource or prompt another serving plugin already offers, leaves the previous
//! version serving; a new file that clashes with a serving plugin is refused,
//! naming both files. At start nothing serves yet, so files load in name order and
//! the later of two clashing files is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Limits, PluginSettings};
use crate::policy::Access;
use crate::runtime::types::{PromptInfo, ToolInfo};
use crate::runtime::{LoadedPlugin, Origin, Runtime};
use crate::uri_template::{MAX_URI_BYTES, UriTemplate};

/// Plugin files loaded at once during a scan.
const LOAD_CONCURRENCY: usize = 4;

/// A plugin file that could not be loaded (or whose new version was refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadFailure {
    #[serde(rename = "file")]
    pub path: PathBuf,
    pub error: String,
    /// SHA-256 of the earlier version that keeps serving instead, if any.
    pub serving: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the plugins directory {path}: {source}")]
    ReadDir { path: PathBuf, source: std::io::Error },
}

/// The loaded plugins and an index of what they offer. Immutable: a reload builds
/// a new one.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    /// Per plugin: who may read its resources, and who may get its prompts.
    content: Vec<(Access, Access)>,
    /// Tool name → (plugin index, tool index, who may call it).
    tools: BTreeMap<String, (usize, usize, Access)>,
    /// Prompt name → (plugin index, prompt index).
    prompts: std::collections::HashMap<String, (usize, usize)>,
    /// Resource URI → plugin index.
    resources: std::collections::HashMap<String, usize>,
    /// Every resource template, parsed once, with its plugin's index.
    templates: Vec<(usize, UriTemplate)>,
    failures: Vec<LoadFailure>,
    /// Sidecars with no component beside them.
    orphan_sidecars: Vec<PathBuf>,
}

/// The component files in `dir`, sorted, and sidecars without a component.
/// Hidden files (editor swap files, Kubernetes `..data` links) and backups
/// ending in `~` are never plugins; a symlink counts as the file it points to.
pub fn scan_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), RegistryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::ReadDir { path: dir.to_owned(), source })?;
    let mut wasm = Vec::new();
    let mut toml = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if !is_candidate(Path::new(&name)) {
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") if path.is_file() => wasm.push(path),
            // What a plugin requests (`moat pull` writes it beside the component)
            // is not a sidecar: it grants nothing.
            Some("toml") if !path.to_string_lossy().ends_with(".requested.toml") => toml.push(path),
            _ => {}
        }
    }
    wasm.sort();
    let orphans = toml.into_iter().filter(|t| !wasm.iter().any(|w| w.with_extension("toml") == *t)).collect();
    Ok((wasm, orphans))
}

/// Whether a file name in the plugins folder can be a plugin or a sidecar.
pub fn is_candidate(name: &Path) -> bool {
    let Some(name) = name.file_name().and_then(|n| n.to_str()) else { return false };
    !name.starts_with('.') && !name.ends_with('~') && (name.ends_with(".wasm") || name.ends_with(".toml"))
}

/// What `a` offers that `b` offers too, if anything. Tool and prompt names
/// clash ignoring case (they look alike); a resource clashes with the same URI
/// or with a template of the other plugin that matches it, and two templates
/// clash when some URI matches both, since either plugin could then be asked
/// for the other's resources.
fn clash(a: &LoadedPlugin, b: &LoadedPlugin) -> Option<String> {
    let same = |x: &str, y: &str| x.eq_ignore_ascii_case(y);
    let templates = |p: &LoadedPlugin| -> Vec<(String, UriTemplate)> {
        p.resource_templates
            .iter()
            .filter_map(|t| UriTemplate::parse(&t.uri_template).ok().map(|u| (t.uri_template.clone(), u)))
            .collect()
    };
    let (ta, tb) = (templates(a), templates(b));
    let what = a
        .tools
        .iter()
        .find_map(|t| {
            b.tools.iter().find(|o| same(&o.name, &t.name)).map(|o| (format!("tool `{}`", t.name), o.name.clone()))
        })
        .or_else(|| {
            a.prompts.iter().find_map(|p| {
                b.prompts
                    .iter()
                    .find(|o| same(&o.name, &p.name))
                    .map(|o| (format!("prompt `{}`", p.name), o.name.clone()))
            })
        })
        .or_else(|| {
            a.resources.iter().find_map(|r| {
                b.resources
                    .iter()
                    .find(|o| o.uri == r.uri)
                    .map(|o| o.uri.clone())
                    .or_else(|| tb.iter().find(|(_, t)| t.matches(&r.uri)).map(|(s, _)| format!("template `{s}`")))
                    .map(|o| (format!("resource `{}`", r.uri), o))
            })
        })
        .or_else(|| {
            ta.iter().find_map(|(s, t)| {
                b.resources
                    .iter()
                    .find(|o| t.matches(&o.uri))
                    .map(|o| format!("resource `{}`", o.uri))
                    .or_else(|| tb.iter().find(|(_, o)| o.overlaps(t)).map(|(o, _)| format!("template `{o}`")))
                    .map(|o| (format!("resource template `{s}`"), o))
            })
        });
    what.map(|(what, theirs)| {
        format!("{what} overlaps {theirs}, already provided by {}; refusing {}", b.path.display(), a.path.display())
    })
}

impl Registry {
    /// Loads every plugin in `dir` once.
    pub async fn load_dir(runtime: &Runtime, dir: &Path, defaults: Limits) -> Result<Self, RegistryError> {
        let scan = Loader::new(dir, defaults).scan(runtime, &Registry::default(), false).await?;
        Ok(scan.registry)
    }

    /// A registry of `plugins`, which must not clash.
    fn build(mut plugins: Vec<Arc<LoadedPlugin>>, failures: Vec<LoadFailure>, orphan_sidecars: Vec<PathBuf>) -> Self {
        plugins.sort_by(|a, b| a.path.cmp(&b.path));
        let mut tools = BTreeMap::new();
        let mut prompts = std::collections::HashMap::new();
        let mut resources = std::collections::HashMap::new();
        let mut templates = Vec::new();
        let mut content = Vec::new();
        for (p, plugin) in plugins.iter().enumerate() {
            content
                .push((Access::of_content(&plugin.settings.resources), Access::of_content(&plugin.settings.prompts)));
            for (t, tool) in plugin.tools.iter().enumerate() {
                tools.insert(tool.name.clone(), (p, t, Access::of_tool(plugin, tool)));
            }
            for (i, prompt) in plugin.prompts.iter().enumerate() {
                prompts.entry(prompt.name.clone()).or_insert((p, i));
            }
            for r in &plugin.resources {
                resources.entry(r.uri.clone()).or_insert(p);
            }
            templates.extend(
                plugin
                    .resource_templates
                    .iter()
                    .filter_map(|t| UriTemplate::parse(&t.uri_template).ok().map(|u| (p, u))),
            );
        }
        Registry { plugins, content, tools, prompts, resources, templates, failures, orphan_sidecars }
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

    /// The tool `name`: its plugin, its description and who may call it.
    pub fn tool(&self, name: &str) -> Option<Served<'_, &ToolInfo>> {
        let (p, t, access) = self.tools.get(name)?;
        let plugin = &self.plugins[*p];
        Some(Served { plugin, item: &plugin.tools[*t], access })
    }

    /// The plugin serving the resource at `uri` and who may read it: a fixed
    /// resource, else the one template that matches (templates of different
    /// plugins never overlap). URIs longer than [`MAX_URI_BYTES`] are served
    /// by nobody.
    pub fn resource(&self, uri: &str) -> Option<Served<'_, ()>> {
        if uri.len() > MAX_URI_BYTES {
            return None;
        }
        let p = self
            .resources
            .get(uri)
            .copied()
            .or_else(|| self.templates.iter().find(|(_, t)| t.matches(uri)).map(|(p, _)| *p))?;
        Some(Served { plugin: &self.plugins[p], item: (), access: &self.content[p].0 })
    }

    /// The prompt `name`: its plugin, its description and who may get it.
    pub fn prompt(&self, name: &str) -> Option<Served<'_, &PromptInfo>> {
        let &(p, i) = self.prompts.get(name)?;
        let plugin = &self.plugins[p];
        Some(Served { plugin, item: &plugin.prompts[i], access: &self.content[p].1 })
    }

    /// Every tool, in name order.
    pub fn tools(&self) -> impl Iterator<Item = Served<'_, &ToolInfo>> {
        self.tools.values().map(|(p, t, access)| {
            let plugin = &self.plugins[*p];
            Served { plugin, item: &plugin.tools[*t], access }
        })
    }

    /// Every plugin with who may read its resources and who may get its prompts.
    pub fn plugins_with_access(&self) -> impl Iterator<Item = (&Arc<LoadedPlugin>, &Access, &Access)> {
        self.plugins.iter().zip(&self.content).map(|(p, (r, pr))| (p, r, pr))
    }
}

/// Something a plugin serves: the plugin, the item, and who may use it.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a, T> {
    pub plugin: &'a Arc<LoadedPlugin>,
    pub item: T,
    pub access: &'a Access,
}

/// A plugin version a scan swapped in.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub name: String,
    pub file: PathBuf,
    pub sha256: String,
    /// `compiled`, `cache` (compiled artifact read from the on-disk cache) or
    /// `settings` (same component, new sidecar).
    pub how: &'static str,
    /// Whether it replaced a version that was serving.
    pub replaced: bool,
    pub took_ms: f64,
}

/// What one scan found and did.
#[derive(Debug, Default, Serialize)]
pub struct ScanReport {
    pub loaded: Vec<Loaded>,
    /// Names of plugins whose files are gone.
    pub removed: Vec<String>,
    /// Failures this scan found (a failure still in place from an earlier scan is
    /// not repeated; [`Registry::failures`] has them all).
    pub failed: Vec<LoadFailure>,
    /// Files that changed while being loaded (still being written); left as they
    /// were, for a later scan.
    pub unsettled: Vec<PathBuf>,
    pub took_ms: f64,
}

/// A scan's new registry and its report.
pub struct Scan {
    pub registry: Registry,
    pub report: ScanReport,
    /// The registry differs from the one the scan started from: a version loaded
    /// or removed, or a failure found or fixed.
    pub changed: bool,
}

/// File identity and change stamp, following symlinks: any write, truncation,
/// rename over or symlink swap changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Option<Self>> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(FileStamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Stamps of a component and its sidecar.
type Stamps = (Option<FileStamp>, Option<FileStamp>);

fn stamps(wasm: &Path, sidecar: Option<&Path>) -> Stamps {
    (FileStamp::of(wasm).ok().flatten(), sidecar.and_then(|s| FileStamp::of(s).ok().flatten()))
}

/// The latest load of one file.
struct Known {
    stamps: Stamps,
    wasm_hash: String,
    sidecar: Option<String>,
    outcome: Result<Arc<LoadedPlugin>, String>,
}

/// Loads a plugins folder, then keeps loading what changes in it.
pub struct Loader {
    dir: PathBuf,
    defaults: Limits,
    known: BTreeMap<PathBuf, Known>,
    /// Components outside the folder (pinned registry artifacts), each with
    /// its sidecar, if any.
    extra: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Loader {
    pub fn new(dir: &Path, defaults: Limits) -> Self {
        Loader { dir: dir.to_owned(), defaults, known: BTreeMap::new(), extra: Vec::new() }
    }

    /// Also loads each of `extra` (a component path and its sidecar) whenever
    /// its component exists. Their sidecars are not orphans of the folder.
    pub fn with_extra(mut self, extra: Vec<(PathBuf, Option<PathBuf>)>) -> Self {
        self.extra = extra;
        self
    }

    /// The sidecar of the component at `wasm`.
    fn sidecar_of(&self, wasm: &Path) -> Option<PathBuf> {
        match self.extra.iter().find(|(w, _)| w == wasm) {
            Some((_, sidecar)) => sidecar.clone(),
            None => Some(wasm.with_extension("toml")),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the folder and builds the registry that should serve next, starting
    /// from `current`. With `force`, every file is read and hashed again even if
    /// its metadata looks unchanged (unchanged content is still not reloaded).
    pub async fn scan(&mut self, runtime: &Runtime, current: &Registry, force: bool) -> Result<Scan, RegistryError> {
        let started = Instant::now();
        let (mut files, mut orphans) = scan_dir(&self.dir)?;
        files.extend(self.extra.iter().filter(|(w, _)| w.is_file()).map(|(w, _)| w.clone()));
        orphans.retain(|o| !self.extra.iter().any(|(_, s)| s.as_ref() == Some(o)));
        let mut report = ScanReport::default();
        let mut took = BTreeMap::new();
        self.known.retain(|path, _| files.contains(path));
        // Files load concurrently: one slow plugin (a long compile, a catalogue
        // read that runs to its deadline) does not hold up the others.
        let jobs: Vec<Job> = files.iter().filter_map(|path| self.job(current, path, force)).collect();
        let done: Vec<(PathBuf, JobOutcome)> = futures_util::stream::iter(jobs)
            .map(|job| job.run(runtime))
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        for (path, outcome) in done {
            match outcome {
                JobOutcome::Unchanged(stamps) => {
                    if let Some(k) = self.known.get_mut(&path) {
                        k.stamps = stamps;
                    }
                }
                JobOutcome::Unsettled => report.unsettled.push(path),
                JobOutcome::Loaded { known, took_ms } => {
                    if let Some(ms) = took_ms {
                        took.insert(path.clone(), ms);
                    }
                    self.known.insert(path, known);
                }
            }
        }

        // Serving versions stay unless their file is gone or a newer version loads
        // without clashing; then newcomers, in name order.
        let mut serving: Vec<Arc<LoadedPlugin>> =
            current.plugins().iter().filter(|p| files.contains(&p.path)).cloned().collect();
        let mut failures = Vec::new();
        for i in 0..serving.len() {
            let path = serving[i].path.clone();
            match self.known.get(&path).map(|k| &k.outcome) {
                None => {}
                Some(Ok(next)) if Arc::ptr_eq(next, &serving[i]) => {}
                Some(Ok(next)) => {
                    match serving.iter().enumerate().filter(|&(j, _)| j != i).find_map(|(_, other)| clash(next, other))
                    {
                        None => serving[i] = next.clone(),
                        Some(error) => {
                            failures.push(LoadFailure { path, error, serving: Some(serving[i].hash.clone()) })
                        }
                    }
                }
                Some(Err(error)) => {
                    failures.push(LoadFailure { path, error: error.clone(), serving: Some(serving[i].hash.clone()) })
                }
            }
        }
        for path in &files {
            if serving.iter().any(|p| &p.path == path) {
                continue;
            }
            match self.known.get(path).map(|k| &k.outcome) {
                None => {}
                Some(Ok(next)) => match serving.iter().find_map(|other| clash(next, other)) {
                    None => serving.push(next.clone()),
                    Some(error) => failures.push(LoadFailure { path: path.clone(), error, serving: None }),
                },
                Some(Err(error)) => {
                    failures.push(LoadFailure { path: path.clone(), error: error.clone(), serving: None })
                }
            }
        }

        for p in &serving {
            if !current.plugins().iter().any(|c| Arc::ptr_eq(c, p)) {
                let replaced = current.plugins().iter().find(|c| c.path == p.path);
                let how = match (replaced, p.origin) {
                    (Some(old), _) if old.hash == p.hash => "settings",
                    (_, Origin::Compiled) => "compiled",
                    (_, Origin::Cache) => "cache",
                };
                report.loaded.push(Loaded {
                    name: p.name.clone(),
                    file: p.path.clone(),
                    sha256: p.hash.clone(),
                    how,
                    replaced: replaced.is_some(),
                    took_ms: took.get(&p.path).copied().unwrap_or_default(),
                });
            }
        }
        for p in current.plugins() {
            if !serving.iter().any(|s| s.path == p.path) {
                report.removed.push(p.name.clone());
            }
        }
        report.failed = failures.iter().filter(|f| !current.failures().contains(f)).cloned().collect();
        let changed = !report.loaded.is_empty() || !report.removed.is_empty() || failures != current.failures();
        report.took_ms = started.elapsed().as_secs_f64() * 1e3;
        log(&report);
        Ok(Scan { registry: Registry::build(serving, failures, orphans), report, changed })
    }

    /// What loading `path` needs, if it changed since the last scan.
    fn job(&self, current: &Registry, path: &Path, force: bool) -> Option<Job> {
        let sidecar = self.sidecar_of(path);
        let before = stamps(path, sidecar.as_deref());
        // Gone since the folder was listed: the next rescan drops it.
        before.0?;
        let known = self.known.get(path);
        if !force && known.is_some_and(|k| k.stamps == before) {
            return None;
        }
        // Compiled components of this file at hand, to reuse for the same content.
        let compiled = known
            .and_then(|k| k.outcome.as_ref().ok())
            .into_iter()
            .chain(current.plugins().iter().filter(|p| p.path == path))
            .cloned()
            .collect();
        Some(Job {
            path: path.to_owned(),
            sidecar,
            before,
            seen: known.map(|k| (k.wasm_hash.clone(), k.sidecar.clone())),
            compiled,
            defaults: self.defaults,
        })
    }
}

/// A file to look at again during a scan; jobs run concurrently.
struct Job {
    path: PathBuf,
    sidecar: Option<PathBuf>,
    before: Stamps,
    /// Hashes of the content loaded last time.
    seen: Option<(String, Option<String>)>,
    compiled: Vec<Arc<LoadedPlugin>>,
    defaults: Limits,
}

enum JobOutcome {
    /// Same content as before: only the stamps are new.
    Unchanged(Stamps),
    /// Written to while being read: left for a later scan.
    Unsettled,
    Loaded {
        known: Known,
        took_ms: Option<f64>,
    },
}

impl Job {
    async fn run(self, runtime: &Runtime) -> (PathBuf, JobOutcome) {
        let outcome = self.load(runtime).await;
        (self.path, outcome)
    }

    async fn load(&self, runtime: &Runtime) -> JobOutcome {
        let (path, before) = (&self.path, self.before);
        let started = Instant::now();
        let sidecar_path = self.sidecar.clone().unwrap_or_default();
        let read = {
            let (path, sidecar_path) = (path.to_owned(), self.sidecar.clone());
            tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, String, Option<String>), String> {
                let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let hash = hex::encode(Sha256::digest(&bytes));
                let sidecar = match sidecar_path.as_deref().map(std::fs::read_to_string) {
                    None => None,
                    Some(Ok(t)) => Some(t),
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Some(Err(e)) => {
                        let p = sidecar_path.as_deref().unwrap_or(Path::new(""));
                        return Err(format!("sidecar: cannot read {}: {e}", p.display()));
                    }
                };
                Ok((bytes, hash, sidecar))
            })
            .await
            .unwrap_or_else(|e| Err(format!("reading failed: {e}")))
        };
        let (bytes, wasm_hash, sidecar) = match read {
            Ok(r) => r,
            Err(error) if stamps(path, self.sidecar.as_deref()) == before => {
                return JobOutcome::Loaded {
                    known: Known { stamps: before, wasm_hash: String::new(), sidecar: None, outcome: Err(error) },
                    took_ms: None,
                };
            }
            Err(_) => return JobOutcome::Unsettled,
        };
        if self.seen.as_ref().is_some_and(|(h, s)| *h == wasm_hash && *s == sidecar) {
            return JobOutcome::Unchanged(before);
        }
        let same_component = self.compiled.iter().find(|p| p.hash == wasm_hash).cloned();
        let settings = match &sidecar {
            Some(text) => PluginSettings::parse_sidecar(text, &sidecar_path, self.defaults),
            None => Ok(PluginSettings::with_limits(self.defaults)),
        };
        let outcome = match settings {
            Err(e) => Err(format!("sidecar: {e}")),
            Ok(settings) => match same_component {
                Some(p) => runtime.reconfigure(&p, settings).await,
                None => runtime.load_bytes(path, bytes, settings).await,
            }
            .map(Arc::new)
            .map_err(|e| e.to_string()),
        };
        if outcome.is_err() && stamps(path, self.sidecar.as_deref()) != before {
            // Written to while we read it: wait for the writer to finish.
            return JobOutcome::Unsettled;
        }
        let took_ms = outcome.is_ok().then(|| started.elapsed().as_secs_f64() * 1e3);
        JobOutcome::Loaded { known: Known { stamps: before, wasm_hash, sidecar, outcome }, took_ms }
    }
}

fn log(report: &ScanReport) {
    for l in &report.loaded {
        tracing::info!(
            plugin = %l.name,
            file = %l.file.display(),
            sha256 = %&l.sha256[..12],
            how = l.how,
            replaced = l.replaced,
            took_ms = l.took_ms,
            "plugin loaded"
        );
    }
    for name in &report.removed {
        tracing::info!(plugin = %name, "plugin removed: its file is gone");
    }
    for f in &report.failed {
        match &f.serving {
            Some(hash) => tracing::error!(
                file = %f.path.display(),
                error = ?f.error,
                serving = %&hash[..12],
                "new plugin version not loaded; the previous version keeps serving"
            ),
            None => tracing::error!(file = %f.path.display(), error = ?f.error, "plugin not loaded"),
        }
    }
    for path in &report.unsettled {
        tracing::debug!(file = %path.display(), "plugin file still being written; will look again");
    }
}
