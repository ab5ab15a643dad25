//! Call a plugin's tools, resources and prompts natively, in a plain `cargo test`.
//!
//! ```text
//! let out = moat_sdk::testing::call_tool::<DiskUsage>("disk_usage", json!({"path": "/"}))?;
//! ```
//!
//! Host imports work natively too: [`crate::log`] and [`crate::progress`] are
//! recorded (see [`take_logs`]) and [`crate::volume_stats`] reads the local
//! filesystem. There is no sandbox here: run the built `.wasm` with `moat call` for that.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::client::{Answer, Capabilities, ClientError};
use crate::content::{ResourceContents, ToolOutput};
use crate::host::LogLevel;
use crate::plugin::{self, CallError, Plugin, PromptResult};

/// One progress report: progress, total, message.
pub type ProgressReport = (f64, Option<f64>, Option<String>);

thread_local! {
    static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
    static PROGRESS: RefCell<Vec<ProgressReport>> = const { RefCell::new(Vec::new()) };
    static ANSWERS: RefCell<std::collections::VecDeque<Result<Answer, ClientError>>> =
        const { RefCell::new(std::collections::VecDeque::new()) };
}

thread_local! {
    static CALLER: RefCell<Option<crate::host::Identity>> = const { RefCell::new(None) };
}

/// Sets who [`crate::caller`] says is calling, on this thread.
pub fn set_caller(identity: Option<crate::host::Identity>) {
    CALLER.with(|c| *c.borrow_mut() = identity);
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn caller() -> Option<crate::host::Identity> {
    CALLER.with(|c| c.borrow().clone())
}

/// Queues the client's next answer to a question ([`crate::client::ask`] and
/// friends) on this thread; the native client declares every capability. With
/// none queued, a question fails.
pub fn queue_client_answer(answer: Result<Answer, ClientError>) {
    ANSWERS.with(|a| a.borrow_mut().push_back(answer));
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn client_capabilities() -> Capabilities {
    Capabilities { elicitation: true, sampling: true, roots: true }
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn next_client_answer() -> Result<Answer, ClientError> {
    ANSWERS
        .with(|a| a.borrow_mut().pop_front())
        .unwrap_or_else(|| Err(ClientError("no client answer queued (moat_sdk::testing::queue_client_answer)".into())))
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn record_log(level: LogLevel, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn record_progress(progress: f64, total: Option<f64>, message: Option<&str>) {
    PROGRESS.with(|p| p.borrow_mut().push((progress, total, message.map(str::to_owned))));
}

/// The log messages this thread's tool calls sent since the last call, oldest first.
pub fn take_logs() -> Vec<(LogLevel, String)> {
    LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// The progress reports this thread's tool calls sent since the last call.
pub fn take_progress() -> Vec<ProgressReport> {
    PROGRESS.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// Calls a tool with JSON arguments, as the host would (which includes adding
/// the JSON text block to a structured result).
pub fn call_tool<P: Plugin>(name: &str, arguments: Value) -> Result<ToolOutput, CallError> {
    let mut out = plugin::call_tool::<P>(name, &arguments.to_string())?;
    if out.content.is_empty()
        && let Some(s) = &out.structured
    {
        out.content.push(crate::Content::text(s.to_string()));
    }
    Ok(out)
}

/// Calls a tool and decodes its structured result.
pub fn call_structured<P: Plugin, T: DeserializeOwned>(name: &str, arguments: Value) -> Result<T, CallError> {
    let out = call_tool::<P>(name, arguments)?;
    let value =
        out.structured.ok_or_else(|| CallError::Failed(format!("tool `{name}` returned no structured content")))?;
    serde_json::from_value(value).map_err(|e| CallError::Failed(e.to_string()))
}

/// Reads a resource by URI.
pub fn read_resource<P: Plugin>(uri: &str) -> Result<ResourceContents, CallError> {
    plugin::read_resource::<P>(uri)
}

/// Fills in a prompt.
pub fn get_prompt<P: Plugin>(name: &str, arguments: &[(&str, &str)]) -> Result<PromptResult, CallError> {
    let args: Map<String, Value> =
        arguments.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
    plugin::get_prompt::<P>(name, &args)
}

/// The input schema of a tool, as the host would see it.
pub fn input_schema<P: Plugin>(name: &str) -> Option<Value> {
    P::tools().into_iter().find(|t| t.name == name).map(|t| (t.input_schema)())
}

/// The output schema of a tool, if it returns structured content.
pub fn output_schema<P: Plugin>(name: &str) -> Option<Value> {
    P::tools().into_iter().find(|t| t.name == name).and_then(|t| (t.output_schema)())
}
