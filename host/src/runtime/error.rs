//! Why a plugin could not be loaded ([`LoadError`]) or a call did not return a
//! result ([`CallError`]), and how a wasmtime error from a call is turned into
//! what the caller is told.

use std::path::PathBuf;

use wasmtime::Trap;

use super::bindings;
use super::deadline::DeadlineExceeded;
use super::egress::HttpLimitPassed;
use super::host::{BadAnswer, CappedPipe, InputRequired, MemoryLimitExceeded, MissingCapability};
use crate::config::Limits;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("not a moat plugin: {0}")]
    WrongWorld(String),
    #[error(
        "imports {0}, which moat does not provide (plugins get WASI files, clocks, random and outbound HTTP, and moat's log, progress and volume-stats)"
    )]
    UnsupportedImport(String),
    #[error("{0}")]
    Metadata(String),
    #[error("credential in plugin metadata: {0}")]
    Credential(String),
    /// The component needs more than one plugin instance may hold.
    #[error("{0}")]
    Resources(String),
    /// A background task of the load (compiling the component, checking its
    /// catalogue) panicked or was cancelled: a fault of the host, not of the plugin.
    #[error("the background task {task} panicked or was cancelled: {reason}")]
    Task { task: &'static str, reason: String },
}

/// Why a call did not return a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No tool, resource or prompt has this name.
    #[error("{0}")]
    NotFound(String),
    /// The arguments do not match the input schema (checked before the plugin runs)
    /// or the plugin rejected them.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and reported an error: a tool result with `isError`.
    #[error("{0}")]
    Failed(String),
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    MemoryLimit(String),
    /// The call passed one of its outbound HTTP caps (requests, bytes).
    #[error("{0}")]
    HttpLimit(String),
    #[error("output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: u64 },
    /// The plugin crashed (trap or panic).
    #[error("plugin crashed: {0}")]
    Crashed(String),
    /// The plugin returned something malformed.
    #[error("plugin returned an invalid result: {0}")]
    BadOutput(String),
    /// The plugin asked the client something not yet answered; the MCP layer
    /// turns this into an input-required result.
    #[error("the tool needs input from the client")]
    InputRequired,
    /// The plugin asked something the client did not declare (MCP -32021).
    #[error("the client did not declare the `{0}` capability this tool needs")]
    MissingCapability(&'static str),
    /// The plugin already runs as many calls as it may (`max_concurrency`).
    #[error("{0}")]
    Busy(String),
    /// moat itself could not run the call.
    #[error("cannot run the plugin: {0}")]
    Host(String),
}

impl From<bindings::v0_1::moat::plugin::types::CallError> for CallError {
    fn from(e: bindings::v0_1::moat::plugin::types::CallError) -> Self {
        use bindings::v0_1::moat::plugin::types::CallError as W;
        match e {
            W::Failed(m) => CallError::Failed(m),
            W::InvalidArguments(m) => CallError::InvalidArguments(m),
            W::NotFound(m) => CallError::NotFound(m),
        }
    }
}

/// Turns a wasmtime error from a call into what the caller is told.
pub(super) fn classify(e: wasmtime::Error, limits: Limits, stderr: &CappedPipe) -> CallError {
    if e.downcast_ref::<InputRequired>().is_some() {
        return CallError::InputRequired;
    }
    if let Some(m) = e.downcast_ref::<BadAnswer>() {
        return CallError::InvalidArguments(m.0.clone());
    }
    if let Some(m) = e.downcast_ref::<MissingCapability>() {
        return CallError::MissingCapability(m.0);
    }
    if let Some(d) = e.downcast_ref::<DeadlineExceeded>() {
        return CallError::Timeout(d.0);
    }
    if let Some(m) = e.downcast_ref::<HttpLimitPassed>() {
        return CallError::HttpLimit(m.0.clone());
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimit(m.to_string());
    }
    let panic = panic_message(&stderr.contents());
    if let Some(trap) = e.downcast_ref::<Trap>() {
        let mut msg = match trap {
            Trap::StackOverflow => "stack overflow".to_owned(),
            // Rust plugins keep their stack at the start of linear memory, so a
            // runaway recursion that exhausts it ends here.
            Trap::MemoryOutOfBounds if panic.is_none() => {
                "out of bounds memory access (a stack overflow, or a bad pointer)".to_owned()
            }
            Trap::UnreachableCodeReached if panic.is_some() => "panicked".to_owned(),
            Trap::Interrupt => return CallError::Timeout(limits.timeout_ms),
            other => other.to_string(),
        };
        if let Some(p) = panic {
            msg = format!("{msg}: {p}");
        }
        if matches!(trap, Trap::UnreachableCodeReached) && msg.contains("memory allocation") {
            return CallError::MemoryLimit(format!(
                "memory limit of {} MiB exceeded: {msg}",
                limits.memory_bytes >> 20
            ));
        }
        return CallError::Crashed(msg);
    }
    CallError::Crashed(format!("{e:#}"))
}

/// The message of a Rust panic printed to stderr, if any.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("panicked at ")?;
    let rest = &text[start..];
    // "panicked at src/lib.rs:1:2:\nmessage\nnote: ..."
    let mut lines = rest.lines();
    let location = lines.next()?.trim_end_matches(':').trim_start_matches("panicked at ");
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    let message = message.join(" ");
    Some(if message.is_empty() { location.to_owned() } else { format!("{message} ({location})") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        let err = b"\nthread '<unnamed>' panicked at src/lib.rs:10:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(err).unwrap(), "boom (src/lib.rs:10:5)");
        assert_eq!(panic_message(b"nothing"), None);
    }
}
