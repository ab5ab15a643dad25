//! MCP over the plugin registry: a dynamic rmcp `ServerHandler`.
//!
//! rmcp owns the wire (both protocol eras, sessions, SSE, header checks); this
//! module answers each request from the current registry snapshot, runs plugins
//! through the runtime, relays their logs and progress, and carries their
//! questions to the client (server requests in 2025-11-25 sessions,
//! input-required round trips in 2026-07-28).

// Logging and sampling are deprecated by SEP-2577 but are what 2025-11-25
// clients use; moat keeps serving them.
#![allow(deprecated)]

mod bridge;
pub mod convert;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use rmcp::model::*;
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::auth::Caller;
use crate::metrics::Metrics;
use crate::policy;
use crate::registry::Registry;
use crate::runtime::types::{LogLevel, PluginEvent};
use crate::runtime::{CallContext, CallError, EVENT_QUEUE, Runtime};
use crate::text::shown;
use crate::uri_template::MAX_URI_BYTES;
use bridge::{InputBridge, PeerBridge, StateBlob};

/// Items per page of a list result.
const PAGE_SIZE: usize = 100;
/// Most resource subscriptions one 2025-11-25 session may hold.
const MAX_SUBSCRIPTIONS: usize = 1024;
/// Longest a finished call waits to hand its last queued events to a slow client.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// What changed in the catalogue, for list_changed notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Tools,
    Resources,
    Prompts,
}

/// The registry's tools as MCP sees them, converted once per registry snapshot
/// (rmcp asks for a tool's definition on every call, to check headers).
#[derive(Default)]
struct Catalogue {
    tools: Vec<Tool>,
    access: Vec<Access>,
    index: std::collections::HashMap<String, usize>,
}

/// Who may call a tool, and how often.
#[derive(Debug, Clone)]
pub struct Access {
    /// All of these scopes are needed to list and call it.
    pub scopes: Arc<[String]>,
    pub rate_limit: Option<crate::config::RateLimit>,
}

impl Catalogue {
    fn of(registry: &Registry) -> Self {
        let (tools, access): (Vec<Tool>, Vec<Access>) = registry
            .tools()
            .map(|(p, t)| {
                let rate_limit =
                    p.settings.tools.get(&t.name).and_then(|policy| policy.rate_limit).or(p.settings.limits.rate_limit);
                (convert::tool(t), Access { scopes: policy::required_scopes(p, t).into(), rate_limit })
            })
            .unzip();
        let index = tools.iter().enumerate().map(|(i, t)| (t.name.to_string(), i)).collect();
        Catalogue { tools, access, index }
    }
}

/// State shared by every session and request.
pub struct Shared {
    pub runtime: Arc<Runtime>,
    pub registry: ArcSwap<Registry>,
    catalogue: ArcSwap<Catalogue>,
    pub metrics: Arc<Metrics>,
    changes: broadcast::Sender<Change>,
    state_codec: RequestStateCodec,
    in_flight: std::sync::atomic::AtomicUsize,
    reloads: std::sync::OnceLock<crate::watch::Reloads>,
}

/// Counts a plugin call in flight for as long as it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Shared {
    pub fn new(runtime: Arc<Runtime>, registry: Registry, metrics: Arc<Metrics>) -> Arc<Self> {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).expect("the system random generator works");
        let state_codec = RequestStateCodec::try_new(key.to_vec()).expect("a 32-byte key is long enough");
        let (changes, _) = broadcast::channel(64);
        let catalogue = ArcSwap::from_pointee(Catalogue::of(&registry));
        Arc::new(Shared {
            runtime,
            registry: ArcSwap::from_pointee(registry),
            catalogue,
            metrics,
            changes,
            state_codec,
            in_flight: Default::default(),
            reloads: Default::default(),
        })
    }

    /// Who may call `tool`, if it exists.
    pub fn access(&self, tool: &str) -> Option<Access> {
        let c = self.catalogue.load();
        c.index.get(tool).map(|&i| c.access[i].clone())
    }

    /// The scopes needed to read the resource at `uri`, if some plugin serves it.
    pub fn resource_scopes(&self, uri: &str) -> Option<Vec<String>> {
        let registry = self.registry.load();
        let p = registry.resource_owner(uri)?;
        Some(policy::content_scopes(&p.settings.resources))
    }

    /// The scopes needed to get the prompt `name`, if some plugin serves it.
    pub fn prompt_scopes(&self, name: &str) -> Option<Vec<String>> {
        let registry = self.registry.load();
        let p = registry.plugins().iter().find(|p| p.prompts.iter().any(|pr| pr.name == name))?;
        Some(policy::content_scopes(&p.settings.prompts))
    }

    /// Every scope some tool needs, sorted.
    pub fn scopes_supported(&self) -> Vec<String> {
        let c = self.catalogue.load();
        let mut all: std::collections::BTreeSet<String> =
            [policy::READ_SCOPE, policy::WRITE_SCOPE].into_iter().map(str::to_owned).collect();
        all.extend(c.access.iter().flat_map(|a| a.scopes.iter().cloned()));
        for p in self.registry.load().plugins() {
            all.extend(policy::content_scopes(&p.settings.resources));
            all.extend(policy::content_scopes(&p.settings.prompts));
        }
        all.into_iter().collect()
    }

    /// Hands over the reload task's handle (once, at start).
    pub fn set_reloads(&self, reloads: crate::watch::Reloads) {
        let _ = self.reloads.set(reloads);
    }

    /// The reload task, once started.
    pub fn reloads(&self) -> Option<&crate::watch::Reloads> {
        self.reloads.get()
    }

    /// Plugin calls running now (shutdown waits for them).
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Swaps in a new registry and tells listening clients what changed: the
    /// tools, resources or prompts a client can see, or the scopes they need.
    /// Returns what changed.
    pub fn replace_registry(&self, registry: Registry) -> Vec<Change> {
        let catalogue = Catalogue::of(&registry);
        let old_catalogue = self.catalogue.load();
        let old = self.registry.load();
        let mut changed = Vec::new();
        if old_catalogue.tools != catalogue.tools
            || old_catalogue.access.iter().map(|a| &a.scopes).ne(catalogue.access.iter().map(|a| &a.scopes))
        {
            changed.push(Change::Tools);
        }
        if content_signature(&old, Change::Resources) != content_signature(&registry, Change::Resources) {
            changed.push(Change::Resources);
        }
        if content_signature(&old, Change::Prompts) != content_signature(&registry, Change::Prompts) {
            changed.push(Change::Prompts);
        }
        drop((old, old_catalogue));
        // Catalogue first: a reader may briefly see new tools before the registry
        // that runs them, and then gets "unknown tool", never the reverse mismatch
        // of running a tool whose definition it cannot see.
        self.catalogue.store(Arc::new(catalogue));
        self.registry.store(Arc::new(registry));
        for c in &changed {
            let _ = self.changes.send(*c);
        }
        changed
    }
}

/// What clients see of a registry's resources or prompts, each with the scopes it
/// needs (plugins offering none add nothing).
fn content_signature(registry: &Registry, kind: Change) -> Value {
    let mut items = Vec::new();
    for p in registry.plugins() {
        if kind == Change::Prompts {
            let scopes = policy::content_scopes(&p.settings.prompts);
            items.extend(p.prompts.iter().map(|pr| json!([scopes, convert::prompt(pr)])));
        } else {
            let scopes = policy::content_scopes(&p.settings.resources);
            items.extend(p.resources.iter().map(|r| json!([scopes, convert::resource(r)])));
            items.extend(p.resource_templates.iter().map(|t| json!([scopes, convert::resource_template(t)])));
        }
    }
    Value::Array(items)
}

/// Per-session state (one per 2025-11-25 session; fresh per stateless request).
#[derive(Default)]
struct Session {
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<std::collections::BTreeSet<String>>,
}

/// The handler rmcp calls. Cheap to clone: made once per session or request.
#[derive(Clone)]
pub struct MoatServer {
    shared: Arc<Shared>,
    session: Arc<Session>,
}

impl MoatServer {
    pub fn new(shared: Arc<Shared>) -> Self {
        MoatServer { shared, session: Arc::new(Session::default()) }
    }

    fn registry(&self) -> arc_swap::Guard<Arc<Registry>> {
        self.shared.registry.load()
    }
}

fn caller(cx: &RequestContext<RoleServer>) -> Option<Caller> {
    cx.extensions.get::<http::request::Parts>().and_then(|p| p.extensions.get::<Caller>()).cloned()
}

/// Whether the request is in the stateless 2026-07-28 era.
fn stateless(cx: &RequestContext<RoleServer>) -> bool {
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

/// One page of the items `visible` admits, starting at `cursor` (an index into
/// `items`): the work is proportional to the page, not to the whole list.
fn page<T, U>(
    items: &[T],
    cursor: Option<&str>,
    visible: impl Fn(&T) -> bool,
    convert: impl Fn(&T) -> U,
) -> Result<(Vec<U>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|&i| i <= items.len())
            .ok_or_else(|| ErrorData::invalid_params(format!("invalid cursor `{}`", shown(c)), None))?,
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

fn call_error(e: &CallError) -> ErrorData {
    match e {
        CallError::NotFound(m) => ErrorData::invalid_params(m.clone(), None),
        CallError::InvalidArguments(m) => ErrorData::invalid_params(format!("invalid arguments: {m}"), None),
        CallError::MissingCapability(cap) => ErrorData::new(
            ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!("this tool needs the client capability `{cap}`"),
            Some(json!({"requiredCapabilities": {*cap: {}}})),
        ),
        other => ErrorData::internal_error(other.to_string(), None),
    }
}

fn outcome(r: &Result<impl Sized, CallError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(CallError::Failed(_)) => "tool_error",
        Err(CallError::InvalidArguments(_)) => "invalid_arguments",
        Err(CallError::NotFound(_)) => "not_found",
        Err(CallError::Timeout(_)) => "timeout",
        Err(CallError::MemoryLimit(_)) => "memory_limit",
        Err(CallError::OutputTooLarge { .. }) => "output_too_large",
        Err(CallError::Crashed(_)) => "crashed",
        Err(CallError::BadOutput(_)) => "bad_output",
        Err(CallError::InputRequired) => "input_required",
        Err(CallError::MissingCapability(_)) => "missing_capability",
        Err(CallError::Busy(_)) => "busy",
        Err(CallError::Host(_)) => "host_error",
    }
}

/// The request's input responses and sealed state, opened and checked.
struct Inputs {
    answers: BTreeMap<String, Value>,
}

impl MoatServer {
    fn open_inputs(
        &self,
        what: &str,
        state: Option<&str>,
        responses: Option<&InputResponses>,
        cx: &RequestContext<RoleServer>,
    ) -> Result<Inputs, ErrorData> {
        let mut answers = BTreeMap::new();
        if let Some(state) = state {
            let ad = self.state_binding(what, cx);
            let blob: StateBlob = self.shared.state_codec.open_json_with(state, ad.as_bytes()).map_err(|_| {
                ErrorData::invalid_params(
                    "requestState was not issued by this server for this request, or has expired",
                    None,
                )
            })?;
            answers = blob.answers;
        }
        if let Some(responses) = responses {
            for (k, v) in responses {
                answers.insert(k.clone(), v.clone());
            }
        }
        Ok(Inputs { answers })
    }

    /// Binds a request state to the caller and the tool or prompt it was issued for.
    fn state_binding(&self, what: &str, cx: &RequestContext<RoleServer>) -> String {
        let subject = caller(cx).map(|c| c.subject).unwrap_or_default();
        format!("{subject}\u{0}{what}")
    }

    /// Runs `f` (a plugin call) while relaying its logs and progress to the
    /// client; ends it if the client cancels.
    async fn run_call<T>(
        &self,
        cx: &RequestContext<RoleServer>,
        rx: mpsc::Receiver<PluginEvent>,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<Result<T, CallError>, ErrorData> {
        let _counted = InFlight::new(&self.shared.in_flight);
        let mut rx = rx;
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
                () = cx.ct.cancelled() => {
                    return Err(ErrorData::new(ErrorCode(-32800), "request cancelled", None));
                }
                r = call.as_mut() => break r,
                () = async { sending.as_mut().expect("guarded").await }, if sending.is_some() => sending = None,
                Some(event) = rx.recv(), if sending.is_none() => {
                    sending = Some(Box::pin(self.relay(cx, event, progress_token.as_ref(), min_level)));
                }
            }
        };
        let flush = async {
            if let Some(s) = sending {
                s.await;
            }
            while let Ok(event) = rx.try_recv() {
                self.relay(cx, event, progress_token.as_ref(), min_level).await;
            }
        };
        let _ = tokio::time::timeout(FLUSH_WAIT, flush).await;
        Ok(result)
    }

    async fn relay(
        &self,
        cx: &RequestContext<RoleServer>,
        event: PluginEvent,
        token: Option<&ProgressToken>,
        min_level: Option<LoggingLevel>,
    ) {
        match event {
            PluginEvent::Log { level, message } => {
                let level = mcp_level(level);
                if min_level.is_some_and(|min| level_rank(level) >= level_rank(min)) {
                    #[allow(deprecated)]
                    let param = LoggingMessageNotificationParam::new(level, json!(message));
                    #[allow(deprecated)]
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

    /// A call context whose client bridge fits the request's era.
    fn call_context(
        &self,
        cx: &RequestContext<RoleServer>,
        inputs: Inputs,
    ) -> (CallContext, mpsc::Receiver<PluginEvent>, Option<Arc<InputBridge>>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let caps = bridge::capabilities(cx.client_capabilities());
        let (client, input): (Arc<dyn crate::runtime::types::ClientBridge>, _) = if stateless(cx) {
            let b = Arc::new(InputBridge::new(caps, inputs.answers));
            (b.clone(), Some(b))
        } else {
            (Arc::new(PeerBridge::new(cx.peer.clone(), caps)), None)
        };
        let identity = caller(cx).map(|c| crate::runtime::types::Identity {
            subject: c.subject,
            scopes: c.scopes,
            client_id: c.client_id,
        });
        (CallContext { events: Some(tx), client: Some(client), identity }, rx, input)
    }

    fn input_required(
        &self,
        what: &str,
        cx: &RequestContext<RoleServer>,
        bridge: &InputBridge,
    ) -> Result<InputRequiredResult, ErrorData> {
        let (answers, pending) = bridge.take();
        let requests = pending
            .into_iter()
            .map(|(k, q)| {
                let (method, params) = convert::question(&q);
                let req: InputRequest = serde_json::from_value(json!({"method": method, "params": params}))
                    .map_err(|e| ErrorData::internal_error(format!("cannot encode the question `{k}`: {e}"), None))?;
                Ok((k, req))
            })
            .collect::<Result<InputRequests, ErrorData>>()?;
        let ad = self.state_binding(what, cx);
        let state = self
            .shared
            .state_codec
            .seal_json_with(
                &StateBlob { answers },
                &SealOptions::new().associated_data(ad.as_bytes()).ttl(std::time::Duration::from_secs(3600)),
            )
            .map_err(|e| ErrorData::internal_error(format!("cannot seal the request state: {e}"), None))?;
        Ok(InputRequiredResult::new(Some(requests), Some(state)))
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
        let c = self.shared.catalogue.load();
        c.index.get(name).map(|&i| c.tools[i].clone())
    }

    async fn list_tools(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // Only what the caller may call: the list varies by token, not by connection.
        let who = caller(&cx);
        let c = self.shared.catalogue.load();
        let (tools, next) = page(
            &c.tools,
            cursor(&r),
            |t| c.index.get(t.name.as_ref()).is_some_and(|&i| policy::permits(who.as_ref(), &c.access[i].scopes)),
            Tool::clone,
        )?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        r: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let registry = self.registry();
        let Some((plugin, _)) = registry.tool(&r.name) else {
            return Err(ErrorData::invalid_params(format!("unknown tool `{}`", r.name), None));
        };
        let plugin = plugin.clone();
        drop(registry);
        // The HTTP layer answers 403 first; this holds for every transport.
        if let Some(access) = self.shared.access(&r.name)
            && !policy::permits(caller(&cx).as_ref(), &access.scopes)
        {
            return Err(ErrorData::invalid_request(
                format!("insufficient scope: `{}` needs {}", r.name, access.scopes.join(" ")),
                None,
            ));
        }
        let arguments = Value::Object(r.arguments.clone().unwrap_or_default());
        let inputs = self.open_inputs(&r.name, r.request_state.as_deref(), r.input_responses.as_ref(), &cx)?;
        let (ctx, rx, input) = self.call_context(&cx, inputs);
        let started = Instant::now();
        let runtime = &self.shared.runtime;
        let result = self.run_call(&cx, rx, runtime.call_tool(&plugin, &r.name, &arguments, &ctx)).await?;
        let took = started.elapsed();
        self.shared.metrics.tool_call(&r.name, outcome(&result), took);
        let who = caller(&cx);
        tracing::info!(
            target: "moat::audit",
            subject = who.as_ref().map_or("-", |c| c.subject.as_str()),
            client_id = who.as_ref().and_then(|c| c.client_id.as_deref()).unwrap_or("-"),
            tool = %r.name,
            plugin = %plugin.name,
            plugin_sha256 = %&plugin.hash[..16],
            outcome = outcome(&result),
            duration_ms = took.as_secs_f64() * 1e3,
            "tool call"
        );
        match result {
            Ok(out) => {
                let mut result = CallToolResult::success(out.content.into_iter().map(convert::into_content).collect());
                result.structured_content = out.structured;
                Ok(result.into())
            }
            Err(CallError::InputRequired) => match input {
                Some(bridge) => Ok(self.input_required(&r.name, &cx, &bridge)?.into()),
                None => Err(ErrorData::internal_error("input required outside the 2026-07-28 protocol", None)),
            },
            Err(
                e @ (CallError::Failed(_)
                | CallError::Timeout(_)
                | CallError::MemoryLimit(_)
                | CallError::OutputTooLarge { .. }
                | CallError::Crashed(_)
                | CallError::BadOutput(_)
                | CallError::Busy(_)),
            ) => Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into()),
            Err(e) => Err(call_error(&e)),
        }
    }

    async fn list_resources(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let who = caller(&cx);
        let registry = self.registry();
        let all: Vec<_> = registry.plugins().iter().flat_map(|p| p.resources.iter().map(move |r| (p, r))).collect();
        let (items, next) = page(
            &all,
            cursor(&r),
            |(p, _)| policy::permits(who.as_ref(), &policy::content_scopes(&p.settings.resources)),
            |(_, r)| convert::resource(r),
        )?;
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let who = caller(&cx);
        let registry = self.registry();
        let all: Vec<_> =
            registry.plugins().iter().flat_map(|p| p.resource_templates.iter().map(move |t| (p, t))).collect();
        let (items, next) = page(
            &all,
            cursor(&r),
            |(p, _)| policy::permits(who.as_ref(), &policy::content_scopes(&p.settings.resources)),
            |(_, t)| convert::resource_template(t),
        )?;
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        r: ReadResourceRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if r.uri.len() > MAX_URI_BYTES {
            return Err(ErrorData::invalid_params(format!("the URI is longer than {MAX_URI_BYTES} bytes"), None));
        }
        let registry = self.registry();
        let plugin = registry.resource_owner(&r.uri).cloned().ok_or_else(|| {
            ErrorData::resource_not_found(format!("no resource at `{}`", r.uri), Some(json!({"uri": r.uri})))
        })?;
        drop(registry);
        let needed = policy::content_scopes(&plugin.settings.resources);
        if !policy::permits(caller(&cx).as_ref(), &needed) {
            return Err(ErrorData::invalid_request(format!("insufficient scope: needs {}", needed.join(" ")), None));
        }
        let inputs = self.open_inputs(&r.uri, r.request_state.as_deref(), r.input_responses.as_ref(), &cx)?;
        let (ctx, rx, input) = self.call_context(&cx, inputs);
        let runtime = &self.shared.runtime;
        match self.run_call(&cx, rx, runtime.read_resource(&plugin, &r.uri, &ctx)).await? {
            Ok(contents) => Ok(ReadResourceResult::new(contents.iter().map(convert::contents).collect()).into()),
            Err(CallError::InputRequired) => match input {
                Some(bridge) => Ok(self.input_required(&r.uri, &cx, &bridge)?.into()),
                None => Err(call_error(&CallError::InputRequired)),
            },
            Err(CallError::NotFound(m)) => Err(ErrorData::resource_not_found(m, Some(json!({"uri": r.uri})))),
            Err(e) => Err(call_error(&e)),
        }
    }

    async fn list_prompts(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let who = caller(&cx);
        let registry = self.registry();
        let all: Vec<_> = registry.plugins().iter().flat_map(|p| p.prompts.iter().map(move |pr| (p, pr))).collect();
        let (items, next) = page(
            &all,
            cursor(&r),
            |(p, _)| policy::permits(who.as_ref(), &policy::content_scopes(&p.settings.prompts)),
            |(_, pr)| convert::prompt(pr),
        )?;
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        r: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let registry = self.registry();
        let found = registry
            .plugins()
            .iter()
            .find_map(|p| p.prompts.iter().find(|pr| pr.name == r.name).map(|pr| (p.clone(), pr.clone())));
        drop(registry);
        let Some((plugin, info)) = found else {
            return Err(ErrorData::invalid_params(format!("unknown prompt `{}`", r.name), None));
        };
        let needed = policy::content_scopes(&plugin.settings.prompts);
        if !policy::permits(caller(&cx).as_ref(), &needed) {
            return Err(ErrorData::invalid_request(format!("insufficient scope: needs {}", needed.join(" ")), None));
        }
        let given = r.arguments.clone().unwrap_or_default();
        let missing: Vec<&str> =
            info.arguments.iter().filter(|a| a.required && !given.contains_key(&a.name)).map(|a| &*a.name).collect();
        if !missing.is_empty() {
            return Err(ErrorData::invalid_params(
                format!("prompt `{}` needs the argument(s): {}", r.name, missing.join(", ")),
                None,
            ));
        }
        let args: Vec<(String, String)> = given
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        let inputs = self.open_inputs(&r.name, r.request_state.as_deref(), r.input_responses.as_ref(), &cx)?;
        let (ctx, rx, input) = self.call_context(&cx, inputs);
        let runtime = &self.shared.runtime;
        match self.run_call(&cx, rx, runtime.get_prompt(&plugin, &r.name, &args, &ctx)).await? {
            Ok(p) => Ok(convert::prompt_result(&p).into()),
            Err(CallError::InputRequired) => match input {
                Some(bridge) => Ok(self.input_required(&r.name, &cx, &bridge)?.into()),
                None => Err(call_error(&CallError::InputRequired)),
            },
            Err(e) => Err(call_error(&e)),
        }
    }

    async fn complete(
        &self,
        r: CompleteRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        // WIT 0.1 has no completion export: check the reference, offer nothing.
        let registry = self.registry();
        let known = match &r.r#ref {
            Reference::Prompt(p) => registry.plugins().iter().any(|pl| {
                pl.prompts.iter().any(|pr| pr.name == p.name && pr.arguments.iter().any(|a| a.name == r.argument.name))
            }),
            Reference::Resource(t) => {
                registry.plugins().iter().any(|pl| pl.resource_templates.iter().any(|rt| rt.uri_template == t.uri))
            }
            _ => false,
        };
        if !known {
            return Err(ErrorData::invalid_params("no such prompt argument or resource template", None));
        }
        Ok(CompleteResult::new(CompletionInfo::new(Vec::new()).map_err(|e| ErrorData::internal_error(e, None))?))
    }

    #[allow(deprecated)]
    async fn set_level(&self, r: SetLevelRequestParams, _cx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        *self.session.log_level.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.level);
        Ok(())
    }

    #[allow(deprecated)]
    async fn subscribe(&self, r: SubscribeRequestParams, _cx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        if r.uri.len() > MAX_URI_BYTES {
            return Err(ErrorData::invalid_params(format!("the URI is longer than {MAX_URI_BYTES} bytes"), None));
        }
        let exists = self.registry().resource_owner(&r.uri).is_some();
        if !exists {
            return Err(ErrorData::resource_not_found(
                format!("no resource at `{}`", r.uri),
                Some(json!({"uri": r.uri})),
            ));
        }
        // Templates match endless URIs: a session holds a bounded set.
        let mut subscribed = self.session.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        if subscribed.len() >= MAX_SUBSCRIPTIONS && !subscribed.contains(&r.uri) {
            return Err(ErrorData::invalid_request(
                format!("a session may hold at most {MAX_SUBSCRIPTIONS} resource subscriptions"),
                None,
            ));
        }
        subscribed.insert(r.uri);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(&self, r: UnsubscribeRequestParams, _cx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.session.subscriptions.lock().unwrap_or_else(|e| e.into_inner()).remove(&r.uri);
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, cx: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.shared.changes.subscribe();
        let sink = cx.sink().clone();
        loop {
            tokio::select! {
                () = cx.cancelled() => return Ok(()),
                change = changes.recv() => {
                    let sent = match change {
                        Ok(Change::Tools) => sink.notify_tool_list_changed().await,
                        Ok(Change::Resources) => sink.notify_resource_list_changed().await,
                        Ok(Change::Prompts) => sink.notify_prompt_list_changed().await,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    if let Err(rmcp::service::SubscriptionSendError::SubscriptionClosed) = sent {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn on_initialized(&self, cx: rmcp::service::NotificationContext<RoleServer>) {
        // A legacy session hears catalogue changes on its GET stream until it ends.
        let mut changes = self.shared.changes.subscribe();
        let peer = cx.peer.clone();
        tokio::spawn(async move {
            while let Ok(change) = changes.recv().await {
                let sent = match change {
                    Change::Tools => peer.notify_tool_list_changed().await,
                    Change::Resources => peer.notify_resource_list_changed().await,
                    Change::Prompts => peer.notify_prompt_list_changed().await,
                };
                if sent.is_err() && peer.is_transport_closed() {
                    break;
                }
            }
        });
    }
}
