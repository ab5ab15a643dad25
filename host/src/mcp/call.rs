//! Per-call plumbing shared by the tool, resource and prompt handlers: who is
//! calling, the one admission check, the call's client bridge and events, and
//! the sealed request state of 2026-07-28 input rounds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::*;
use rmcp::service::RequestContext;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::bridge::{self, InputBridge, PeerBridge, StateBlob};
use super::{McpSnapshot, MoatServer, Shared, Transport, convert};
use crate::errors::{McpError, Refusal};
use crate::policy::Principal;
use crate::runtime::types::{ClientBridge, Identity, LogLevel, PluginEvent};
use crate::runtime::{CallContext, CallError, EVENT_QUEUE};

/// Longest a finished call waits to hand its last queued events to a slow client.
const FLUSH_WAIT: Duration = Duration::from_millis(500);
/// How long a sealed request state stays valid (and a retired state key keeps
/// opening states).
pub const STATE_TTL: Duration = Duration::from_secs(3600);

/// What a request wants to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tool(String),
    Resource(String),
    Prompt(String),
}

/// What the HTTP edge already decided for a request: the snapshot it looked
/// in and the target it admitted (scopes checked, rate limit charged). The
/// handler then neither looks again nor charges twice.
#[derive(Clone)]
pub struct Admitted {
    pub snapshot: Arc<McpSnapshot>,
    pub target: Target,
}

/// Lets `who` use `target` in `snapshot`: the one admission check of every
/// transport. An unknown target is not refused here (its handler answers).
pub async fn admit(state: &Shared, snapshot: &McpSnapshot, who: &Principal, target: &Target) -> Result<(), Refusal> {
    let registry = &snapshot.registry;
    // A tool's rate limit is keyed by its name; resources and prompts have none.
    let (access, key) = match target {
        Target::Tool(name) => (registry.tool(name).map(|t| t.access), name.as_str()),
        Target::Resource(uri) => (registry.resource(uri).map(|r| r.access), uri.as_str()),
        Target::Prompt(name) => (registry.prompt(name).map(|p| p.access), name.as_str()),
    };
    let Some(access) = access else { return Ok(()) };
    access.admit(who, key, &state.rate_limits).await.map_err(|refusal| {
        let what = match target {
            Target::Tool(name) => format!("`{name}`"),
            Target::Resource(uri) => format!("resource `{uri}`"),
            Target::Prompt(name) => format!("prompt `{name}`"),
        };
        tracing::info!(subject = ?who.subject(), what = ?what, %refusal, "request refused");
        match refusal {
            Refusal::InsufficientScope { needed, .. } => Refusal::InsufficientScope { what, needed },
            other => other,
        }
    })
}

fn http_parts(cx: &RequestContext<RoleServer>) -> Option<&http::request::Parts> {
    cx.extensions.get::<http::request::Parts>()
}

/// Whether the request is in the stateless 2026-07-28 era.
pub(super) fn stateless(cx: &RequestContext<RoleServer>) -> bool {
    cx.protocol_version().is_some_and(|v| !v.has_initialize())
}

fn level_rank(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn mcp_level(l: LogLevel) -> LoggingLevel {
    match l {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Notice => LoggingLevel::Notice,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
    }
}

/// The request's input responses and sealed state, opened and checked.
pub(super) struct Inputs {
    answers: BTreeMap<String, Value>,
}

/// A call about to run: its context, its event stream, and (2026-07-28) the
/// bridge that collects unanswered questions.
pub(super) struct Prepared {
    pub ctx: CallContext,
    pub events: mpsc::Receiver<PluginEvent>,
    pub input: Option<Arc<InputBridge>>,
}

impl MoatServer {
    /// Who is calling: the transport's own identity, or the verified caller
    /// the HTTP layer attached. A transport that attaches none is refused.
    pub(super) fn principal(&self, cx: &RequestContext<RoleServer>) -> Result<Principal, Refusal> {
        match self.mcp.transport {
            Transport::Local => Ok(Principal::Local),
            Transport::Http => {
                http_parts(cx).and_then(|p| p.extensions.get::<Principal>()).cloned().ok_or(Refusal::NoToken)
            }
        }
    }

    /// The snapshot to serve `target` from, admitted for the caller: the one
    /// the HTTP edge admitted it in, else the current one, checked now.
    pub(super) async fn admitted(
        &self,
        cx: &RequestContext<RoleServer>,
        who: &Principal,
        target: Target,
    ) -> Result<Arc<McpSnapshot>, McpError> {
        if let Some(a) = http_parts(cx).and_then(|p| p.extensions.get::<Admitted>())
            && a.target == target
        {
            return Ok(a.snapshot.clone());
        }
        let snapshot = self.state().snapshot();
        admit(self.state(), &snapshot, who, &target).await?;
        Ok(snapshot)
    }

    /// Opens the request's sealed state and merges in its new answers.
    pub(super) fn open_inputs(
        &self,
        what: &str,
        who: &Principal,
        state: Option<&str>,
        responses: Option<&InputResponses>,
    ) -> Result<Inputs, McpError> {
        let mut answers = BTreeMap::new();
        if let Some(state) = state {
            let ad = state_binding(what, who);
            let blob: StateBlob =
                self.mcp.keys.codec().open_json_with(state, ad.as_bytes()).map_err(|_| McpError::BadRequestState)?;
            answers = blob.answers;
        }
        if let Some(responses) = responses {
            for (k, v) in responses {
                answers.insert(k.clone(), v.clone());
            }
        }
        Ok(Inputs { answers })
    }

    /// Runs `call` (a plugin call) while relaying its logs and progress to the
    /// client; ends it if the client cancels.
    pub(super) async fn run_call<T>(
        &self,
        cx: &RequestContext<RoleServer>,
        events: mpsc::Receiver<PluginEvent>,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<Result<T, CallError>, McpError> {
        let _counted = self.state().calls().token();
        let mut rx = events;
        let progress_token = cx.meta.get_progress_token();
        let min_level = if stateless(cx) {
            cx.meta.log_level()
        } else {
            *self.session.log_level.lock().unwrap_or_else(|e| e.into_inner())
        };
        // Events are relayed beside the call, never instead of it: a client
        // that reads slowly holds up only its own events (queued, then
        // dropped), while the call and its deadline run on.
        let mut call = std::pin::pin!(call);
        let mut sending: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>>> = None;
        let result = loop {
            tokio::select! {
                biased;
                () = cx.ct.cancelled() => return Err(McpError::Cancelled),
                r = call.as_mut() => break r,
                () = async { sending.as_mut().expect("guarded").await }, if sending.is_some() => sending = None,
                Some(event) = rx.recv(), if sending.is_none() => {
                    sending = Some(Box::pin(relay(cx, event, progress_token.as_ref(), min_level)));
                }
            }
        };
        let flush = async {
            if let Some(s) = sending {
                s.await;
            }
            while let Ok(event) = rx.try_recv() {
                relay(cx, event, progress_token.as_ref(), min_level).await;
            }
        };
        let _ = tokio::time::timeout(FLUSH_WAIT, flush).await;
        Ok(result)
    }

    /// A call context whose client bridge fits the request's era.
    pub(super) fn prepare(&self, cx: &RequestContext<RoleServer>, who: &Principal, inputs: Inputs) -> Prepared {
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let caps = bridge::capabilities(cx.client_capabilities());
        let (client, input): (Arc<dyn ClientBridge>, _) = if stateless(cx) {
            let b = Arc::new(InputBridge::new(caps, inputs.answers));
            (b.clone(), Some(b))
        } else {
            (Arc::new(PeerBridge::new(cx.peer.clone(), caps)), None)
        };
        let identity = who.caller().map(|c| Identity {
            subject: c.subject.clone(),
            scopes: c.scopes.clone(),
            client_id: c.client_id.clone(),
        });
        Prepared { ctx: CallContext { events: Some(tx), client: Some(client), identity }, events, input }
    }

    /// The input-required result for a call that stopped on unanswered
    /// questions, with the answers so far sealed into its request state. A
    /// call outside 2026-07-28 cannot get here (its questions go to the peer).
    pub(super) fn input_required(
        &self,
        what: &str,
        who: &Principal,
        bridge: Option<&InputBridge>,
    ) -> Result<InputRequiredResult, McpError> {
        let bridge = bridge.ok_or(McpError::Internal("input required outside the 2026-07-28 protocol".into()))?;
        let (answers, pending) = bridge.take();
        let requests = pending
            .into_iter()
            .map(|(k, q)| {
                let (method, params) = convert::question(&q);
                let req: InputRequest = serde_json::from_value(json!({"method": method, "params": params}))
                    .map_err(|e| McpError::Internal(format!("cannot encode the question `{k}`: {e}").into()))?;
                Ok((k, req))
            })
            .collect::<Result<InputRequests, McpError>>()?;
        let ad = state_binding(what, who);
        let state = self
            .mcp
            .keys
            .codec()
            .seal_json_with(&StateBlob { answers }, &SealOptions::new().associated_data(ad.as_bytes()).ttl(STATE_TTL))
            .map_err(|e| McpError::Internal(format!("cannot seal the request state: {e}").into()))?;
        Ok(InputRequiredResult::new(Some(requests), Some(state)))
    }
}

/// Binds a request state to the caller and the tool or prompt it was issued for.
fn state_binding(what: &str, who: &Principal) -> String {
    let subject = who.caller().map_or("", |c| c.subject.as_str());
    format!("{subject}\u{0}{what}")
}

async fn relay(
    cx: &RequestContext<RoleServer>,
    event: PluginEvent,
    token: Option<&ProgressToken>,
    min_level: Option<LoggingLevel>,
) {
    match event {
        PluginEvent::Log { level, message } => {
            let level = mcp_level(level);
            if min_level.is_some_and(|min| level_rank(level) >= level_rank(min)) {
                let param = LoggingMessageNotificationParam::new(level, json!(message));
                let _ = cx.peer.notify_logging_message(param).await;
            }
        }
        PluginEvent::Progress { progress, total, message } => {
            if let Some(token) = token {
                let mut p = ProgressNotificationParam::new(token.clone(), progress);
                if let Some(t) = total {
                    p = p.with_total(t);
                }
                if let Some(m) = message {
                    p = p.with_message(m);
                }
                let _ = cx.peer.notify_progress(p).await;
            }
        }
    }
}
