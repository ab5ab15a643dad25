//! What the host offers a plugin: logging, progress and filesystem statistics.
//!
//! Inside moat these call the host; natively (in `cargo test`) logs and progress go
//! to [`crate::testing`] and `volume_stats` asks the local filesystem.

use std::fmt;

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

/// Size of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeStats {
    pub total_bytes: u64,
    /// Free, including blocks reserved for the superuser.
    pub free_bytes: u64,
    /// Available to unprivileged users.
    pub available_bytes: u64,
}

/// Why [`volume_stats`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStatsError {
    /// The path is outside every directory the operator granted this plugin.
    NotGranted(String),
    NotFound(String),
    Io(String),
}

impl fmt::Display for VolumeStatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeStatsError::NotGranted(m) => write!(f, "not granted: {m}"),
            VolumeStatsError::NotFound(m) => write!(f, "not found: {m}"),
            VolumeStatsError::Io(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for VolumeStatsError {}

/// The verified caller of this call (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's subject.
    pub subject: String,
    /// The scopes the token grants.
    pub scopes: Vec<String>,
    /// The OAuth client the token was issued to, when the token says.
    pub client_id: Option<String>,
}

/// Who is calling; `None` when moat serves without auth (stdio, `moat call`).
/// Natively, what [`crate::testing::set_caller`] set.
pub fn caller() -> Option<Identity> {
    imp::caller()
}

/// Sends a log message to the host (and on to MCP clients that asked for logs).
pub fn log(level: LogLevel, message: &str) {
    imp::log(level, message)
}

/// Reports progress of the tool call in flight; `progress` should rise with each call.
pub fn progress(progress: f64, total: Option<f64>, message: Option<&str>) {
    imp::progress(progress, total, message)
}

/// Statistics of the filesystem holding `path`, a path inside a granted directory.
pub fn volume_stats(path: &str) -> Result<VolumeStats, VolumeStatsError> {
    imp::volume_stats(path)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::wasm::bindings::moat::plugin::{log as wit_log, progress as wit_progress, volume_stats as wit_stats};

    pub fn caller() -> Option<Identity> {
        crate::wasm::bindings::moat::plugin::caller::identity().map(|i| Identity {
            subject: i.subject,
            scopes: i.scopes,
            client_id: i.client_id,
        })
    }

    pub fn log(level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => wit_log::Level::Debug,
            LogLevel::Info => wit_log::Level::Info,
            LogLevel::Notice => wit_log::Level::Notice,
            LogLevel::Warning => wit_log::Level::Warning,
            LogLevel::Error => wit_log::Level::Error,
        };
        wit_log::log(level, message);
    }

    pub fn progress(progress: f64, total: Option<f64>, message: Option<&str>) {
        wit_progress::report(progress, total, message);
    }

    pub fn volume_stats(path: &str) -> Result<VolumeStats, VolumeStatsError> {
        match wit_stats::stat(path) {
            Ok(s) => Ok(VolumeStats {
                total_bytes: s.total_bytes,
                free_bytes: s.free_bytes,
                available_bytes: s.available_bytes,
            }),
            Err(wit_stats::StatsError::NotGranted(m)) => Err(VolumeStatsError::NotGranted(m)),
            Err(wit_stats::StatsError::NotFound(m)) => Err(VolumeStatsError::NotFound(m)),
            Err(wit_stats::StatsError::Io(m)) => Err(VolumeStatsError::Io(m)),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;

    pub fn caller() -> Option<Identity> {
        crate::testing::caller()
    }

    pub fn log(level: LogLevel, message: &str) {
        crate::testing::record_log(level, message);
    }

    pub fn progress(progress: f64, total: Option<f64>, message: Option<&str>) {
        crate::testing::record_progress(progress, total, message);
    }

    pub fn volume_stats(path: &str) -> Result<VolumeStats, VolumeStatsError> {
        let s = rustix::fs::statvfs(path).map_err(|e| match e {
            rustix::io::Errno::NOENT => VolumeStatsError::NotFound(path.to_owned()),
            e => VolumeStatsError::Io(format!("{path}: {e}")),
        })?;
        let frsize = s.f_frsize;
        Ok(VolumeStats {
            total_bytes: s.f_blocks * frsize,
            free_bytes: s.f_bfree * frsize,
            available_bytes: s.f_bavail * frsize,
        })
    }
}
