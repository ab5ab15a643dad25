//! MCP over the plugin registry: a dynamic rmcp `ServerHandler`.
//!
//! rmcp owns the wire (both protocol eras, sessions, SSE, header checks); this
//! module answers each request from one snapshot of the served state, runs
//! plugins through the runtime, relays their logs and progress, and carries
//! their questions to the client (server requests in 2025-11-25 sessions,
//! input-required round trips in 2026-07-28).
//!
//! Layout: [`catalogue`] is the wire view of a snapshot; `call` the per-call
//! plumbing (identity, admission, events, request state); `tools`,
//! `resources` and `prompts` the handlers; `notify` what listening clients
//! hear; this file the thin `impl ServerHandler` that dispatches to them.

// Logging and sampling are deprecated by SEP-2577 but are what 2025-11-25
// clients use; moat keeps serving them.
#![allow(deprecated)]

mod bridge;
mod call;
pub mod catalogue;
pub mod convert;
mod notify;
mod prompts;
mod resources;
mod tools;

use std::sync::{Arc, Mutex};

use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

pub use call::{Admitted, STATE_TTL, Target, admit};
pub use catalogue::Catalogue;

use crate::fleet::keys::StateKeys;
use crate::state::{Snapshot, State};

/// The process state as the MCP layer reads it.
pub type Shared = State<Catalogue>;
/// One snapshot of it.
pub type McpSnapshot = Snapshot<Catalogue>;

/// Items per page of a list result.
const PAGE_SIZE: usize = 100;
/// Most resource subscriptions one session may hold.
const MAX_SUBSCRIPTIONS: usize = 1024;

/// How a transport vouches for its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// stdio: the operator who started the process; may use everything.
    Local,
    /// HTTP: only a caller the auth layer verified; none means refused.
    Http,
}

/// What every session shares: the state, and the keys that seal request
/// states (2026-07-28 input rounds).
pub struct Mcp {
    pub state: Arc<Shared>,
    keys: Arc<StateKeys>,
    transport: Transport,
}

impl Mcp {
    /// With a request-state key of this process's own.
    pub fn new(state: Arc<Shared>, transport: Transport) -> Arc<Self> {
        Self::with_keys(state, transport, Arc::new(StateKeys::random()))
    }

    /// With request-state keys shared by a fleet.
    pub fn with_keys(state: Arc<Shared>, transport: Transport, keys: Arc<StateKeys>) -> Arc<Self> {
        Arc::new(Mcp { state, keys, transport })
    }
}

/// Per-session state (one per 2025-11-25 session; fresh per stateless request).
#[derive(Default)]
struct Session {
    log_level: Mutex<Option<LoggingLevel>>,
    /// Resource URIs this session subscribed to; a reload that changes the
    /// plugin serving one sends `notifications/resources/updated`.
    subscriptions: Arc<Mutex<notify::Subscriptions>>,
}

/// The handler rmcp calls. Cheap to clone: made once per session or request.
#[derive(Clone)]
pub struct MoatServer {
    mcp: Arc<Mcp>,
    session: Arc<Session>,
}

impl MoatServer {
    pub fn new(mcp: Arc<Mcp>) -> Self {
        MoatServer { mcp, session: Arc::new(Session::default()) }
    }

    fn state(&self) -> &Shared {
        &self.mcp.state
    }
}

/// One page of the items `visible` admits, starting at `cursor` (an index into
/// `items`): the work is proportional to the page, not to the whole list.
fn page<T, U>(
    items: &[T],
    cursor: Option<&str>,
    visible: impl Fn(&T) -> bool,
    convert: impl Fn(&T) -> U,
) -> Result<(Vec<U>, Option<String>), crate::errors::McpError> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|&i| i <= items.len())
            .ok_or_else(|| crate::errors::McpError::invalid_cursor(c))?,
    };
    let mut out = Vec::new();
    let mut at = start;
    while at < items.len() && out.len() < PAGE_SIZE {
        if visible(&items[at]) {
            out.push(convert(&items[at]));
        }
        at += 1;
    }
    let next = (at < items.len()).then(|| at.to_string());
    Ok((out, next))
}

fn cursor(r: &Option<PaginatedRequestParams>) -> Option<&str> {
    r.as_ref().and_then(|p| p.cursor.as_deref())
}

impl MoatServer {
    /// One page of the catalogue list `list` picks, holding only what the
    /// caller may use: lists vary by token, not by connection.
    fn visible_page<T: Clone>(
        &self,
        cx: &RequestContext<RoleServer>,
        r: &Option<PaginatedRequestParams>,
        list: fn(&Catalogue) -> &[catalogue::Listed<T>],
    ) -> Result<(Vec<T>, Option<String>), crate::errors::McpError> {
        let who = self.principal(cx)?;
        let snapshot = self.state().snapshot();
        page(list(&snapshot.view), cursor(r), |l| who.holds(&l.access.scopes), |l| l.item.clone())
    }
}

impl ServerHandler for MoatServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_resources_list_changed()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_logging()
                .enable_completions()
                .build(),
        )
        .with_server_info(Implementation::new("moat", env!("CARGO_PKG_VERSION")))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state().snapshot().view.tool(name).cloned()
    }

    async fn list_tools(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(self.tools_list(r, &cx)?)
    }

    async fn call_tool(
        &self,
        r: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(self.tools_call(r, &cx).await?)
    }

    async fn list_resources(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(self.resources_list(r, &cx)?)
    }

    async fn list_resource_templates(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(self.templates_list(r, &cx)?)
    }

    async fn read_resource(
        &self,
        r: ReadResourceRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(self.resources_read(r, &cx).await?)
    }

    async fn list_prompts(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(self.prompts_list(r, &cx)?)
    }

    async fn get_prompt(
        &self,
        r: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(self.prompts_get(r, &cx).await?)
    }

    async fn complete(
        &self,
        r: CompleteRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(self.completion(r)?)
    }

    async fn set_level(&self, r: SetLevelRequestParams, _cx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        *self.session.log_level.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.level);
        Ok(())
    }

    async fn subscribe(&self, r: SubscribeRequestParams, cx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        Ok(self.resources_subscribe(r, &cx).await?)
    }

    async fn unsubscribe(&self, r: UnsubscribeRequestParams, _cx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.session.subscriptions.lock().unwrap_or_else(|e| e.into_inner()).remove(&r.uri);
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(self.accepted_filter(requested))
    }

    async fn listen(&self, cx: SubscriptionContext) -> Result<(), ErrorData> {
        self.listen_for_swaps(cx).await;
        Ok(())
    }

    async fn on_initialized(&self, cx: NotificationContext<RoleServer>) {
        self.follow_swaps(cx.peer.clone());
    }
}
