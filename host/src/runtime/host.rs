//! Per-call store state and the host side of the plugin's imports: log, progress,
//! volume-stats and client (elicitation, sampling).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::v0_1::moat::plugin::{caller, client, log, progress, types, volume_stats};
use super::types::{Answer, AskOutcome, ClientBridge, ClientCapabilities, ElicitAction, LogLevel, PluginEvent};
use super::types::{PromptMessage, Question, SamplingRequest};
use crate::config::DirGrant;

/// Most log or progress events one call may send; the rest are dropped.
const MAX_EVENTS_PER_CALL: u32 = 10_000;
/// Longest log message kept; longer ones are cut.
const MAX_LOG_BYTES: usize = 16 * 1024;

/// Raised (as a trap) when a call passes its deadline.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0} ms")]
pub struct DeadlineExceeded(pub u64);

/// Raised (as a trap) when a plugin tries to grow its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit_mb} MiB exceeded (the plugin asked for {wanted_mb} MiB)")]
pub struct MemoryLimitExceeded {
    pub limit_mb: u64,
    pub wanted_mb: u64,
}

/// Raised (as a trap) when a plugin asks the client something that has no answer
/// yet: the call stops and the question goes back to the client (2026-07-28).
#[derive(Debug, thiserror::Error)]
#[error("the tool needs input from the client")]
pub struct InputRequired;

/// A call's deadline, read by the epoch callback and by the timer around the
/// call; pushed back while the plugin waits for the client.
#[derive(Clone)]
pub struct SharedDeadline(Arc<std::sync::Mutex<Instant>>);

impl SharedDeadline {
    pub fn new(at: Instant) -> Self {
        SharedDeadline(Arc::new(std::sync::Mutex::new(at)))
    }

    pub fn get(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn extend(&self, by: std::time::Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

/// Raised (as a trap) when a plugin asks something the client did not declare.
#[derive(Debug, thiserror::Error)]
#[error("the client did not declare the `{0}` capability")]
pub struct MissingCapability(pub &'static str);

/// Raised (as a trap) when the client's answer does not fit the question.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadAnswer(pub String);

/// Caps the total linear memory of one instance.
pub struct MemoryLimiter {
    limit: usize,
    /// Sum of all memories' sizes, in bytes.
    total: usize,
}

impl MemoryLimiter {
    pub fn new(limit_bytes: u64) -> Self {
        MemoryLimiter { limit: usize::try_from(limit_bytes).unwrap_or(usize::MAX), total: 0 }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.total - current.min(self.total) + desired;
        if total > self.limit {
            return Err(MemoryLimitExceeded {
                limit_mb: (self.limit >> 20) as u64,
                wanted_mb: total.div_ceil(1 << 20) as u64,
            }
            .into());
        }
        self.total = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Everything one call's store holds. Nothing here outlives the call.
pub struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    pub(super) plugin: Arc<str>,
    pub(super) grants: Arc<[DirGrant]>,
    pub(super) events: Option<mpsc::UnboundedSender<PluginEvent>>,
    pub(super) events_sent: u32,
    pub(super) deadline: SharedDeadline,
    pub(super) timeout_ms: u64,
    pub(super) client: Option<Arc<dyn ClientBridge>>,
    pub(super) identity: Option<super::types::Identity>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl CallState {
    fn emit(&mut self, event: PluginEvent) {
        if self.events_sent >= MAX_EVENTS_PER_CALL {
            return;
        }
        self.events_sent += 1;
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, mut message: String) {
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        let level = match level {
            log::Level::Debug => {
                tracing::debug!(plugin, message = %message, "plugin log");
                LogLevel::Debug
            }
            log::Level::Info => {
                tracing::info!(plugin, message = %message, "plugin log");
                LogLevel::Info
            }
            log::Level::Notice => {
                tracing::info!(plugin, message = %message, "plugin log");
                LogLevel::Notice
            }
            log::Level::Warning => {
                tracing::warn!(plugin, message = %message, "plugin log");
                LogLevel::Warning
            }
            log::Level::Error => {
                tracing::error!(plugin, message = %message, "plugin log");
                LogLevel::Error
            }
        };
        self.emit(PluginEvent::Log { level, message });
    }
}

impl progress::Host for CallState {
    fn report(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        if !progress.is_finite() || total.is_some_and(|t| !t.is_finite()) {
            return;
        }
        self.emit(PluginEvent::Progress { progress, total, message });
    }
}

impl volume_stats::Host for CallState {
    fn stat(&mut self, path: String) -> Result<volume_stats::Stats, volume_stats::StatsError> {
        let host = resolve_granted(&self.grants, &path)?;
        let s = statvfs(&host).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => volume_stats::StatsError::NotFound(path.clone()),
            _ => volume_stats::StatsError::Io(format!("{path}: {e}")),
        })?;
        Ok(s)
    }
}

/// Maps a guest path to the host path it names, if it lies inside a grant, with
/// symbolic links resolved and checked to stay inside that grant.
pub fn resolve_granted(grants: &[DirGrant], guest: &str) -> Result<PathBuf, volume_stats::StatsError> {
    use volume_stats::StatsError;
    let not_granted = || StatsError::NotGranted(format!("{guest} is outside the granted directories"));
    if !guest.starts_with('/') {
        return Err(StatsError::NotGranted(format!("{guest}: give an absolute path inside a granted directory")));
    }
    // Lexical normalisation; `..` may not climb above the root.
    let mut parts: Vec<&str> = Vec::new();
    for part in guest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(not_granted)?;
            }
            p => parts.push(p),
        }
    }
    // The grant with the longest guest prefix wins.
    let grant = grants
        .iter()
        .filter_map(|g| {
            let prefix: Vec<&str> = g.guest.split('/').filter(|p| !p.is_empty()).collect();
            parts.starts_with(&prefix).then_some((prefix.len(), g))
        })
        .max_by_key(|(len, _)| *len);
    let Some((depth, grant)) = grant else {
        return Err(not_granted());
    };
    let host = parts[depth..].iter().fold(grant.host.clone(), |p, part| p.join(part));
    let real = std::fs::canonicalize(&host).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StatsError::NotFound(guest.to_owned()),
        _ => StatsError::Io(format!("{guest}: {e}")),
    })?;
    if !real.starts_with(&grant.host) || real.components().any(|c| c == Component::ParentDir) {
        return Err(StatsError::NotGranted(format!("{guest} resolves outside the granted directory")));
    }
    Ok(real)
}

fn statvfs(path: &Path) -> std::io::Result<volume_stats::Stats> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and `s` is writable memory of the right
    // size, initialised by statvfs when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0.
    let s = unsafe { s.assume_init() };
    let frsize = s.f_frsize;
    Ok(volume_stats::Stats {
        total_bytes: s.f_blocks * frsize,
        free_bytes: s.f_bfree * frsize,
        available_bytes: s.f_bavail * frsize,
    })
}

/// A plugin's stderr: keeps the first `capacity` bytes for error messages and
/// drops the rest. Writes never fail, so a chatty plugin is not killed by its logs.
#[derive(Clone)]
pub struct CappedPipe {
    buf: Arc<std::sync::Mutex<Vec<u8>>>,
    capacity: usize,
}

impl CappedPipe {
    pub fn new(capacity: usize) -> Self {
        CappedPipe { buf: Arc::new(std::sync::Mutex::new(Vec::new())), capacity }
    }

    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().map(|b| b.clone()).unwrap_or_default()
    }

    fn keep(&self, bytes: &[u8]) {
        if let Ok(mut b) = self.buf.lock() {
            let room = self.capacity.saturating_sub(b.len());
            b.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl wasmtime_wasi::p2::OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.keep(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl CallState {
    fn client_capabilities(&self) -> ClientCapabilities {
        self.client.as_ref().map(|c| c.capabilities()).unwrap_or_default()
    }
}

impl caller::Host for CallState {
    fn identity(&mut self) -> Option<caller::CallerIdentity> {
        self.identity.as_ref().map(|i| caller::CallerIdentity {
            subject: i.subject.clone(),
            scopes: i.scopes.clone(),
            client_id: i.client_id.clone(),
        })
    }
}

impl client::Host for CallState {
    fn capabilities(&mut self) -> client::ClientCapabilities {
        let c = self.client_capabilities();
        client::ClientCapabilities { elicitation: c.elicitation, sampling: c.sampling, roots: c.roots }
    }

    /// The time spent waiting for the answer (a person filling in a form) does
    /// not count against the plugin's deadline.
    async fn ask(
        &mut self,
        questions: Vec<(String, client::Question)>,
    ) -> wasmtime::Result<Result<Vec<client::Answer>, String>> {
        let mut asked = Vec::with_capacity(questions.len());
        for (key, q) in questions {
            if asked.iter().any(|(k, _)| k == &key) {
                return Ok(Err(format!("question key `{key}` is used twice")));
            }
            let q = match q {
                client::Question::Elicit(e) => match serde_json::from_str(&e.requested_schema) {
                    Ok(schema @ serde_json::Value::Object(_)) => {
                        Question::Elicit { message: e.message, requested_schema: schema }
                    }
                    _ => return Ok(Err(format!("question `{key}`: requested-schema must be a JSON object"))),
                },
                client::Question::Sample(r) => Question::Sample(SamplingRequest {
                    messages: r
                        .messages
                        .into_iter()
                        .map(|m| PromptMessage { role: m.role.into(), content: m.content.into() })
                        .collect(),
                    system_prompt: r.system_prompt,
                    max_tokens: r.max_tokens,
                    temperature: r.temperature,
                    model_hints: r.model_hints,
                }),
                client::Question::ListRoots => Question::ListRoots,
            };
            asked.push((key, q));
        }
        let caps = self.client_capabilities();
        for (_, q) in &asked {
            let declared = match q {
                Question::Elicit { .. } => caps.elicitation,
                Question::Sample(_) => caps.sampling,
                Question::ListRoots => caps.roots,
            };
            if !declared {
                return Err(MissingCapability(q.capability()).into());
            }
        }
        let Some(bridge) = self.client.clone() else {
            return Ok(Err("this call has no client to ask".into()));
        };
        let started = Instant::now();
        let outcome = bridge.ask(asked).await;
        self.deadline.extend(started.elapsed());
        match outcome {
            AskOutcome::Answered(answers) => Ok(Ok(answers.into_iter().map(wit_answer).collect())),
            AskOutcome::Failed(m) => Ok(Err(m)),
            AskOutcome::BadAnswer(m) => Err(BadAnswer(m).into()),
            AskOutcome::MissingCapability(c) => Err(MissingCapability(c).into()),
            AskOutcome::NeedsInput => Err(InputRequired.into()),
        }
    }
}

fn wit_answer(a: Answer) -> client::Answer {
    match a {
        Answer::Elicit { action, content } => client::Answer::Elicit(client::ElicitResponse {
            action: match action {
                ElicitAction::Accept => client::ElicitAction::Accept,
                ElicitAction::Decline => client::ElicitAction::Decline,
                ElicitAction::Cancel => client::ElicitAction::Cancel,
            },
            content: content.map(|c| c.to_string()),
        }),
        Answer::Sample { role, content, model, stop_reason } => client::Answer::Sample(client::SamplingResponse {
            role: role.into(),
            content: content.into(),
            model,
            stop_reason,
        }),
        Answer::Roots(roots) => {
            client::Answer::Roots(roots.into_iter().map(|r| client::Root { uri: r.uri, name: r.name }).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DirMode;

    #[test]
    fn resolves_only_inside_grants() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", tmp.path().join("sub/out")).unwrap();
        let grants = [DirGrant::new(tmp.path(), "/data", DirMode::Ro).unwrap()];
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(resolve_granted(&grants, "/data").unwrap(), root);
        assert_eq!(resolve_granted(&grants, "/data/sub/../sub").unwrap(), root.join("sub"));
        for bad in ["/", "/etc", "/data/..", "/data/../etc", "data", "/datax", "/data/sub/out"] {
            assert!(
                matches!(resolve_granted(&grants, bad), Err(volume_stats::StatsError::NotGranted(_))),
                "{bad} should be refused"
            );
        }
        assert!(matches!(resolve_granted(&grants, "/data/missing"), Err(volume_stats::StatsError::NotFound(_))));
    }
}
