//! The call path: a slot of the plugin (`max_concurrency`), the arguments
//! checked against the input schema, a permit from the shared pool, a fresh
//! locked-down store and instance under the call's deadline, and the result
//! checked against the output caps and the output schema.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::SinkOutputStream;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::v0_1::Plugin as PluginV01;
use super::deadline::{DeadlineExceeded, EPOCH_TICK, SharedDeadline};
use super::egress::{CallEgress, Egress, HttpLimitPassed};
use super::error::classify;
use super::host::{Budget, CallState, CappedPipe, MemoryLimiter};
use super::types::{Content, PromptResult, ResourceContents, ToolOutput};
use super::{CallContext, CallError, LoadedPlugin, Runtime};
use crate::config::{DirMode, Limits};
use crate::schema::{Invalid, SchemaValidator};

/// Longest a call waits for a free slot of its plugin (`max_concurrency`)
/// before it is answered "busy".
const BUSY_WAIT: Duration = Duration::from_secs(1);
/// Bytes of a plugin's stderr kept for error messages.
const STDERR_CAPACITY: usize = 64 * 1024;

impl Runtime {
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
            .with_instance(plugin, limits, ctx, tool, async |store, p| {
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
            .with_instance(plugin, limits, ctx, uri, async |store, p| {
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
            .with_instance(plugin, limits, ctx, name, async |store, p| {
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
    pub(super) async fn with_instance<R>(
        &self,
        plugin: &LoadedPlugin,
        limits: Limits,
        ctx: &CallContext,
        item: &str,
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
                    self.pool.calls()
                )));
            }
        };
        let stderr = CappedPipe::new(STDERR_CAPACITY);
        let mut store = self.new_store(plugin, limits, ctx, item, stderr.clone())?;
        let deadline = store.data().deadline.clone();
        let egress = store.data().egress.call().clone();
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
        // A call that passed an HTTP cap ends with that, whatever the plugin
        // made of the failed request.
        if let Some(why) = egress.stopped() {
            return Err(CallError::HttpLimit(why.to_owned()));
        }
        result.map_err(|e| classify(e, limits, &stderr))
    }

    fn new_store(
        &self,
        plugin: &LoadedPlugin,
        limits: Limits,
        ctx: &CallContext,
        item: &str,
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
        let name: Arc<str> = plugin.name.as_str().into();
        let deadline = SharedDeadline::new(Instant::now(), limits.timeout_ms, limits.max_wall_ms);
        let egress = CallEgress::new(
            name.clone(),
            item.into(),
            ctx.identity.as_ref().map(|i| i.subject.clone()),
            limits.http,
            deadline.clone(),
            ctx.events.clone(),
            self.metrics.clone(),
        );
        let state = CallState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: Egress::new(plugin.settings.http.clone(), egress),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            plugin: name,
            grants: plugin.grants.clone(),
            events: ctx.events.clone(),
            budget: Budget::new(limits.max_event_bytes),
            deadline,
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
            if let Some(why) = ctx.data().egress.call().stopped() {
                return Err(HttpLimitPassed(why.to_owned()).into());
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
