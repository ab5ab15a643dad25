//! Per-call store state and the host side of the plugin's imports: log, progress,
//! volume-stats and client (elicitation, sampling).

use std::sync::Arc;

use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::v0_1::moat::plugin::{caller, client, log, progress, types, volume_stats};
use super::deadline::{Paused, SharedDeadline};
use super::egress::Egress;
use super::types::{Answer, AskOutcome, ClientBridge, ClientCapabilities, ElicitAction, LogLevel, PluginEvent};
use super::types::{Content, PromptMessage, Question, SamplingRequest};
use crate::config::DirGrant;

/// Most log or progress events one call may send; the rest are dropped.
const MAX_EVENTS_PER_CALL: u32 = 10_000;
/// Longest log or progress message kept; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// What an event costs beyond its message: the JSON-RPC notification around it.
const EVENT_OVERHEAD: u64 = 64;
/// Plugin log lines one call may write to the host's log; the rest are counted
/// and reported in one line when the call ends.
const MAX_HOST_LOG_LINES_PER_CALL: u32 = 50;
/// Questions one round may hold, and one call may ask in all.
pub const MAX_QUESTIONS_PER_ROUND: usize = 16;
pub const MAX_QUESTIONS_PER_CALL: u32 = 64;

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
    pub(super) http: WasiHttpCtx,
    /// Outbound HTTP: the grants, the caps and the audit of this call.
    pub(super) egress: Egress,
    pub(super) limiter: MemoryLimiter,
    pub(super) plugin: Arc<str>,
    pub(super) grants: Arc<[DirGrant]>,
    pub(super) events: Option<mpsc::Sender<PluginEvent>>,
    pub(super) budget: Budget,
    pub(super) deadline: SharedDeadline,
    pub(super) client: Option<Arc<dyn ClientBridge>>,
    pub(super) identity: Option<super::types::Identity>,
    /// The plugin's allowance of lines in the host's log, shared by its calls.
    pub(super) host_log: Arc<HostLogRate>,
}

/// What one call may still send, and what it was refused.
pub struct Budget {
    pub event_bytes_left: u64,
    pub events_sent: u32,
    pub events_dropped: u32,
    pub host_lines_left: u32,
    pub host_lines_suppressed: u32,
    pub questions_asked: u32,
}

impl Budget {
    pub fn new(event_bytes: u64) -> Self {
        Budget {
            event_bytes_left: event_bytes,
            events_sent: 0,
            events_dropped: 0,
            host_lines_left: MAX_HOST_LOG_LINES_PER_CALL,
            host_lines_suppressed: 0,
            questions_asked: 0,
        }
    }

    /// Takes `bytes` from the event budget, if there is that much left.
    fn spend(&mut self, bytes: u64) -> bool {
        if bytes > self.event_bytes_left {
            return false;
        }
        self.event_bytes_left -= bytes;
        true
    }
}

/// Lines per second (and burst) one plugin may write to the host's log across
/// all its calls.
pub struct HostLogRate(governor::DefaultDirectRateLimiter);

impl HostLogRate {
    pub fn new() -> Self {
        let quota = governor::Quota::per_second(std::num::NonZeroU32::new(20).expect("non-zero"))
            .allow_burst(std::num::NonZeroU32::new(200).expect("non-zero"));
        HostLogRate(governor::RateLimiter::direct(quota))
    }
}

impl Default for HostLogRate {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl CallState {
    /// Sends an event to the client if the call's budgets allow; never blocks
    /// (a client that does not read loses events, it never stalls the plugin).
    fn emit(&mut self, event: PluginEvent, bytes: u64) {
        let b = &mut self.budget;
        if b.events_sent >= MAX_EVENTS_PER_CALL || !b.spend(bytes + EVENT_OVERHEAD) {
            b.events_dropped += 1;
            return;
        }
        b.events_sent += 1;
        if let Some(tx) = &self.events
            && tx.try_send(event).is_err()
        {
            b.events_dropped += 1;
        }
    }

    /// Whether one more plugin line may go to the host's log.
    fn host_line(&mut self) -> bool {
        let b = &mut self.budget;
        if b.host_lines_left > 0 && self.host_log.0.check().is_ok() {
            b.host_lines_left -= 1;
            true
        } else {
            b.host_lines_suppressed += 1;
            false
        }
    }
}

impl Drop for CallState {
    fn drop(&mut self) {
        let b = &self.budget;
        if b.host_lines_suppressed > 0 {
            tracing::warn!(
                plugin = ?self.plugin,
                suppressed = b.host_lines_suppressed,
                "plugin log lines left out of the host log (at most {MAX_HOST_LOG_LINES_PER_CALL} per call, 20/s per plugin)"
            );
        }
        if b.events_dropped > 0 {
            tracing::debug!(plugin = ?self.plugin, dropped = b.events_dropped, "plugin events over the call's budget dropped");
        }
    }
}

/// Cuts `message` to [`MAX_MESSAGE_BYTES`] on a character boundary.
fn cut(message: &mut String) {
    crate::text::cut(message, MAX_MESSAGE_BYTES);
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, mut message: String) {
        cut(&mut message);
        let level = match level {
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Notice => LogLevel::Notice,
            log::Level::Warning => LogLevel::Warning,
            log::Level::Error => LogLevel::Error,
        };
        // Plugin text is logged escaped (`?`): a newline or an escape sequence
        // in it can never start a line of its own or fake a field.
        if self.host_line() {
            let plugin = &*self.plugin;
            match level {
                LogLevel::Debug => tracing::debug!(plugin, message = ?message, "plugin log"),
                LogLevel::Info | LogLevel::Notice => tracing::info!(plugin, message = ?message, "plugin log"),
                LogLevel::Warning => tracing::warn!(plugin, message = ?message, "plugin log"),
                LogLevel::Error => tracing::error!(plugin, message = ?message, "plugin log"),
            }
        }
        let bytes = message.len() as u64;
        self.emit(PluginEvent::Log { level, message }, bytes);
    }
}

impl progress::Host for CallState {
    fn report(&mut self, progress: f64, total: Option<f64>, mut message: Option<String>) {
        if !progress.is_finite() || total.is_some_and(|t| !t.is_finite()) {
            return;
        }
        if let Some(m) = &mut message {
            cut(m);
        }
        let bytes = message.as_ref().map_or(0, |m| m.len() as u64);
        self.emit(PluginEvent::Progress { progress, total, message }, bytes);
    }
}

impl volume_stats::Host for CallState {
    fn stat(&mut self, path: String) -> Result<volume_stats::Stats, volume_stats::StatsError> {
        let fd = open_granted(&self.grants, &path)?;
        let s = rustix::fs::fstatvfs(&fd).map_err(|e| volume_stats::StatsError::Io(format!("{path}: {e}")))?;
        Ok(volume_stats::Stats {
            total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
            free_bytes: s.f_bfree.saturating_mul(s.f_frsize),
            available_bytes: s.f_bavail.saturating_mul(s.f_frsize),
        })
    }
}

/// Opens (as an `O_PATH` handle) what a guest path names, if it lies inside a
/// grant. The kernel resolves the path beneath the grant's directory (`openat2`
/// with `RESOLVE_BENEATH`): symbolic links are followed only while they stay
/// inside, and the handle is what gets used, so nothing can swap a path for a
/// link between the check and the use.
/// Why `volume-stats` (and [`open_granted`]) refused a path.
pub type VolumeStatsError = volume_stats::StatsError;

pub fn open_granted(grants: &[DirGrant], guest: &str) -> Result<rustix::fd::OwnedFd, volume_stats::StatsError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
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
    let io = |e: rustix::io::Errno| match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => StatsError::NotFound(guest.to_owned()),
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => {
            StatsError::NotGranted(format!("{guest} resolves outside the granted directory"))
        }
        e => StatsError::Io(format!("{guest}: {e}")),
    };
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let root = rustix::fs::open(&grant.host, flags | OFlags::DIRECTORY, Mode::empty()).map_err(io)?;
    let rest = parts[depth..].join("/");
    if rest.is_empty() {
        return Ok(root);
    }
    rustix::fs::openat2(&root, rest.as_str(), flags, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS)
        .map_err(io)
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
        if questions.len() > MAX_QUESTIONS_PER_ROUND {
            return Ok(Err(format!(
                "{} questions in one round; at most {MAX_QUESTIONS_PER_ROUND} may be asked at once",
                questions.len()
            )));
        }
        let total = self.budget.questions_asked.saturating_add(questions.len() as u32);
        if total > MAX_QUESTIONS_PER_CALL {
            return Ok(Err(format!("a call may ask at most {MAX_QUESTIONS_PER_CALL} questions in all")));
        }
        self.budget.questions_asked = total;
        let bytes: u64 = questions.iter().map(|(k, q)| (k.len() + question_bytes(q)) as u64 + EVENT_OVERHEAD).sum();
        if !self.budget.spend(bytes) {
            return Ok(Err("the questions exceed what is left of the call's event budget (max_event_bytes)".into()));
        }
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
        // A person may take a while to answer a form or approve a sampling
        // request: the deadline stands still meanwhile (the ceiling does not).
        // Answers a client gives by itself (roots) run on the deadline.
        let waits_for_a_person = asked.iter().any(|(_, q)| !matches!(q, Question::ListRoots));
        let _paused = waits_for_a_person.then(|| {
            self.deadline.pause();
            Paused(&self.deadline)
        });
        let outcome = bridge.ask(asked).await;
        drop(_paused);
        match outcome {
            AskOutcome::Answered(answers) => Ok(Ok(answers.into_iter().map(wit_answer).collect())),
            AskOutcome::Failed(m) => Ok(Err(m)),
            AskOutcome::BadAnswer(m) => Err(BadAnswer(m).into()),
            AskOutcome::NeedsInput => Err(InputRequired.into()),
        }
    }
}

/// Bytes a question takes on the wire, roughly: its texts and schema.
fn question_bytes(q: &client::Question) -> usize {
    match q {
        client::Question::Elicit(e) => e.message.len() + e.requested_schema.len(),
        client::Question::Sample(r) => {
            r.system_prompt.as_ref().map_or(0, String::len)
                + r.model_hints.iter().map(String::len).sum::<usize>()
                + r.messages.iter().map(|m| Content::from(m.content.clone()).size()).sum::<usize>()
        }
        client::Question::ListRoots => 0,
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
    fn opens_only_inside_grants() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", tmp.path().join("sub/out")).unwrap();
        std::os::unix::fs::symlink("../sub", tmp.path().join("sub/inside")).unwrap();
        let grants = [DirGrant::new(tmp.path(), "/data", DirMode::Ro).unwrap()];
        for good in ["/data", "/data/sub/../sub", "/data/sub/inside"] {
            assert!(open_granted(&grants, good).is_ok(), "{good} should open");
        }
        for bad in ["/", "/etc", "/data/..", "/data/../etc", "data", "/datax", "/data/sub/out", "/data/sub/out/passwd"]
        {
            assert!(
                matches!(open_granted(&grants, bad), Err(volume_stats::StatsError::NotGranted(_))),
                "{bad} should be refused"
            );
        }
        assert!(matches!(open_granted(&grants, "/data/missing"), Err(volume_stats::StatsError::NotFound(_))));
    }
}
