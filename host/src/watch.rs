//! Hot reload: watch the plugins folder, wait until changed files settle, rescan,
//! and swap the registry snapshot.
//!
//! One task owns the [`Loader`] and is the only writer of the registry: events
//! from the `notify` watcher, `SIGHUP` and the admin `POST /reload` all become
//! rescans on that task, one at a time. A burst of events (many files copied at
//! once, an editor's save dance, a Kubernetes `..data` symlink swap) becomes one
//! rescan: it starts once the folder has been quiet for [`QUIET`] and no plugin
//! file is still open for writing (a file being written gets until it is closed,
//! or until it has not been written to for [`STALL`]). The rescan compiles off the
//! request path, and a file that still changes while it loads is left for a later
//! rescan, so a half-written component is never loaded.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::registry::{Loader, RegistryError, ScanReport, is_candidate};
use crate::runtime::Runtime;
use crate::state::Publish;

/// How long the folder must be quiet before a rescan.
pub const QUIET: Duration = Duration::from_millis(25);
/// How long a plugin file open for writing may go without a write before it is
/// looked at anyway.
pub const STALL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch the plugins directory {path}: {source}")]
    Watch { path: PathBuf, source: notify::Error },
    #[error("the reload task has stopped")]
    Stopped,
    #[error(transparent)]
    Scan(#[from] RegistryError),
}

/// What started a rescan (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    Watch,
    Signal,
    Admin,
    /// A registry source pinned a new version.
    Registry,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Watch => "watch",
            Trigger::Signal => "signal",
            Trigger::Admin => "admin",
            Trigger::Registry => "registry",
        }
    }
}

/// What the reload task writes to: the served state, through [`Publish`] only,
/// with the runtime that loads plugins and the metrics it reports to.
#[derive(Clone)]
pub struct Writer {
    pub runtime: Arc<Runtime>,
    pub metrics: Arc<Metrics>,
    pub state: Arc<dyn Publish>,
}

struct Request {
    trigger: Trigger,
    reply: Option<oneshot::Sender<Result<ScanReport, WatchError>>>,
}

/// A handle on the reload task. Cheap to clone.
#[derive(Clone)]
pub struct Reloads {
    requests: mpsc::Sender<Request>,
    watching: bool,
}

impl Reloads {
    /// Rereads every plugin file now (content already loaded is not loaded again)
    /// and waits for the outcome.
    pub async fn rescan(&self, trigger: Trigger) -> Result<ScanReport, WatchError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request { trigger, reply: Some(tx) }).await.map_err(|_| WatchError::Stopped)?;
        rx.await.map_err(|_| WatchError::Stopped)?
    }

    /// Asks for a rescan without waiting for it (a signal handler).
    pub fn nudge(&self, trigger: Trigger) {
        let _ = self.requests.try_send(Request { trigger, reply: None });
    }

    /// Whether the folder is watched (else only signals and the admin endpoint reload).
    pub fn watching(&self) -> bool {
        self.watching
    }
}

/// Loads the plugins folder into `writer` and keeps it loaded: starts the reload
/// task, watching the folder unless `watch` is false. The first scan has already
/// been done by the caller (so startup failures are reported before serving).
pub fn spawn(writer: Writer, loader: Loader, watch: bool, shutdown: CancellationToken) -> Result<Reloads, WatchError> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let watcher = if watch {
        let w = notify::recommended_watcher(move |event| {
            let _ = events_tx.send(event);
        })
        .map_err(|source| WatchError::Watch { path: loader.dir().to_owned(), source })?;
        Some(Folder::watch(w, loader.dir())?)
    } else {
        drop(events_tx);
        None
    };
    let (requests, rx) = mpsc::channel(16);
    tokio::spawn(run(writer, loader, events, rx, watcher, shutdown));
    Ok(Reloads { requests, watching: watch })
}

/// Rescans and, when anything changed, swaps the registry.
pub async fn reload(writer: &Writer, loader: &mut Loader, trigger: Trigger) -> Result<ScanReport, WatchError> {
    let force = matches!(trigger, Trigger::Signal | Trigger::Admin);
    let current = writer.state.registry();
    let scan = match loader.scan(&writer.runtime, &current, force).await {
        Ok(scan) => scan,
        Err(e) => {
            tracing::error!(error = %e, "rescan failed; the plugins loaded before keep serving");
            writer.metrics.reload(trigger.as_str(), false, Duration::ZERO);
            return Err(e.into());
        }
    };
    drop(current);
    let report = scan.report;
    writer.metrics.plugin_loads(report.loaded.len(), report.failed.len());
    writer.metrics.plugins(scan.registry.plugins().len(), scan.registry.failures().len());
    writer.metrics.reload(trigger.as_str(), true, Duration::from_secs_f64(report.took_ms / 1e3));
    if scan.changed {
        let changes = writer.state.publish(scan.registry);
        tracing::info!(
            trigger = trigger.as_str(),
            loaded = report.loaded.len(),
            removed = report.removed.len(),
            failed = report.failed.len(),
            ?changes,
            took_ms = report.took_ms,
            "registry swapped"
        );
    }
    Ok(report)
}

async fn run(
    writer: Writer,
    mut loader: Loader,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut requests: mpsc::Receiver<Request>,
    mut watcher: Option<Folder>,
    shutdown: CancellationToken,
) {
    let mut pending = Pending::default();
    let mut watching = watcher.is_some();
    if watching {
        // Whatever changed between the first scan and the watch starting.
        pending.touch(Instant::now());
    }
    loop {
        let deadline = pending.deadline();
        tokio::select! {
            () = shutdown.cancelled() => break,
            event = events.recv(), if watching => match event {
                Some(Ok(event)) => match watcher.as_mut().map(|w| w.classify(&event)) {
                    Some(Seen::Inside) => pending.record(&event, Instant::now()),
                    Some(Seen::Folder) => {
                        if let Some(w) = watcher.as_mut() {
                            w.rewatch();
                        }
                        pending.touch(Instant::now());
                    }
                    Some(Seen::Elsewhere) | None => {}
                },
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "plugins directory watcher error; rescanning");
                    pending.touch(Instant::now());
                }
                None => watching = false,
            },
            request = requests.recv() => {
                let Some(request) = request else { break };
                pending = Pending::default();
                let outcome = reload(&writer, &mut loader, request.trigger).await;
                if let Ok(report) = &outcome {
                    pending.retry_unsettled(report, Instant::now());
                }
                if let Some(reply) = request.reply {
                    let _ = reply.send(outcome);
                }
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                pending = Pending::default();
                if let Ok(report) = reload(&writer, &mut loader, Trigger::Watch).await {
                    pending.retry_unsettled(&report, Instant::now());
                }
            }
        }
    }
    drop(watcher);
}

/// The watched plugins folder. Its parent is watched too, so a folder that is
/// replaced (a release symlink swapped, `mv new plugins`) or deleted and
/// recreated is watched again under its name.
struct Folder {
    watcher: notify::RecommendedWatcher,
    /// Absolute, not canonical: a symlink stays the symlink.
    dir: PathBuf,
}

/// Where an event happened.
enum Seen {
    /// In the plugins folder.
    Inside,
    /// To the plugins folder itself (seen from its parent).
    Folder,
    /// To something else in the parent.
    Elsewhere,
}

impl Folder {
    fn watch(mut watcher: notify::RecommendedWatcher, dir: &Path) -> Result<Self, WatchError> {
        let abs = std::path::absolute(dir).map_err(|e| WatchError::Watch { path: dir.to_owned(), source: e.into() })?;
        watcher
            .watch(&abs, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch { path: dir.to_owned(), source })?;
        if let Some(p) = abs.parent()
            && let Err(e) = watcher.watch(p, RecursiveMode::NonRecursive)
        {
            tracing::warn!(dir = %p.display(), error = %e, "cannot watch the plugins directory's parent; a replaced plugins directory needs SIGHUP");
        }
        tracing::info!(dir = %abs.display(), "watching the plugins directory");
        Ok(Folder { watcher, dir: abs })
    }

    fn classify(&self, event: &notify::Event) -> Seen {
        if event.paths.is_empty() || event.paths.iter().any(|p| p.parent() == Some(&self.dir)) {
            // In the folder, or a queue overflow and the like (anything may have changed).
            return Seen::Inside;
        }
        // Opening the folder (every rescan does) changes nothing.
        if !matches!(event.kind, EventKind::Access(_)) && event.paths.iter().any(|p| p == &self.dir) {
            Seen::Folder
        } else {
            Seen::Elsewhere
        }
    }

    /// Watches whatever now stands at the folder's path.
    fn rewatch(&mut self) {
        let _ = self.watcher.unwatch(&self.dir);
        match self.watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
            Ok(()) => tracing::info!(dir = %self.dir.display(), "plugins directory replaced; watching the new one"),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "plugins directory gone; waiting for it to come back")
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Events seen since the last rescan.
#[derive(Default, Debug)]
struct Pending {
    last_event: Option<Instant>,
    /// Plugin files written to and not yet closed, with the time of the last write.
    writing: HashMap<OsString, Instant>,
}

impl Pending {
    fn touch(&mut self, now: Instant) {
        self.last_event = Some(now);
    }

    fn record(&mut self, event: &notify::Event, now: Instant) {
        // Only plugin files and Kubernetes' `..data` links matter: a log file or
        // an editor's swap file written in the folder does not cause rescans.
        let relevant = event.paths.is_empty()
            || event
                .paths
                .iter()
                .filter_map(|p| p.file_name())
                .any(|n| is_candidate(Path::new(n)) || n.to_str().is_some_and(|n| n.starts_with("..")));
        if !relevant {
            return;
        }
        let names = || event.paths.iter().filter_map(|p| p.file_name()).filter(|n| is_candidate(Path::new(n)));
        match event.kind {
            // Opening and reading (our own reads among them) change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for name in names() {
                    self.writing.remove(name);
                }
            }
            EventKind::Access(_) => return,
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                for name in names() {
                    self.writing.insert(name.to_owned(), now);
                }
            }
            EventKind::Create(CreateKind::File | CreateKind::Any) => {
                // A new regular file is being written (a symlink or a hard link is whole).
                for path in &event.paths {
                    if let Some(name) = path.file_name().filter(|n| is_candidate(Path::new(n)))
                        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
                    {
                        self.writing.insert(name.to_owned(), now);
                    }
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both | RenameMode::Any))
            | EventKind::Remove(_) => {
                for name in names() {
                    self.writing.remove(name);
                }
            }
            _ => {}
        }
        self.last_event = Some(now);
    }

    /// Files that changed while being loaded: look again once they stop changing.
    fn retry_unsettled(&mut self, report: &ScanReport, now: Instant) {
        for path in &report.unsettled {
            if let Some(name) = path.file_name() {
                self.writing.insert(name.to_owned(), now);
            }
        }
        if !report.unsettled.is_empty() {
            self.last_event = Some(now);
        }
    }

    /// When to rescan: the folder quiet and every file being written closed or stalled.
    fn deadline(&self) -> Option<Instant> {
        let quiet = self.last_event? + QUIET;
        Some(self.writing.values().map(|&w| w + STALL).fold(quiet, Instant::max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, RemoveKind};

    fn event(kind: EventKind, name: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from("/plugins").join(name))
    }

    #[test]
    fn a_file_being_written_holds_the_rescan_until_it_is_closed() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        assert_eq!(p.deadline(), None);
        p.record(&event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), "a.wasm"), t0);
        assert_eq!(p.deadline(), Some(t0 + STALL), "open for writing: wait for close or stall");
        let t1 = t0 + Duration::from_millis(5);
        p.record(&event(EventKind::Access(AccessKind::Close(AccessMode::Write)), "a.wasm"), t1);
        assert_eq!(p.deadline(), Some(t1 + QUIET));
    }

    #[test]
    fn reads_and_swap_files_do_not_hold_anything() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.record(&event(EventKind::Access(AccessKind::Open(AccessMode::Any)), "a.wasm"), t0);
        assert_eq!(p.deadline(), None, "our own reads must not trigger rescans");
        p.record(&event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), ".a.toml.swp"), t0);
        p.record(&event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), "server.log"), t0);
        assert_eq!(p.deadline(), None, "swap files and logs in the folder cause no rescan");
        p.record(&event(EventKind::Modify(ModifyKind::Name(RenameMode::To)), "..data"), t0);
        assert_eq!(p.deadline(), Some(t0 + QUIET), "a Kubernetes ..data swap does");
        p.record(&event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), "b.wasm"), t0);
        p.record(&event(EventKind::Remove(RemoveKind::File), "b.wasm"), t0);
        assert_eq!(p.deadline(), Some(t0 + QUIET), "a removed file is not being written");
    }

    #[test]
    fn a_rename_into_place_is_whole() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.record(&event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), "a.wasm"), t0);
        p.record(&event(EventKind::Modify(ModifyKind::Name(RenameMode::To)), "a.wasm"), t0);
        assert_eq!(p.deadline(), Some(t0 + QUIET));
    }
}
