//! `cleanup`: removes old files under a granted read-write directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use moat_sdk::{Json, LogLevel, log, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// Directory to clean, a path inside a directory granted read-write.
    path: String,
    /// Only files last modified more than this many days ago are removed.
    #[schemars(range(min = 0))]
    older_than_days: u32,
    /// When true (the default), only report what would be removed.
    #[serde(default = "yes")]
    dry_run: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Report {
    /// Files removed (or, in a dry run, that would be removed).
    removed: Vec<String>,
    /// Bytes freed (or that would be freed).
    freed_bytes: u64,
    dry_run: bool,
}

/// Removes regular files older than `older_than_days` under `path` (recursively; symbolic links are never followed or removed). With `dry_run` (the default) it only reports what it would remove.
#[tool(destructive, title = "Clean up old files")]
fn cleanup(args: Args) -> Result<Json<Report>, String> {
    let age = Duration::from_secs(u64::from(args.older_than_days) * 86_400);
    let cutoff = SystemTime::now().checked_sub(age).ok_or("older_than_days is too large")?;
    let mut report = Report { removed: Vec::new(), freed_bytes: 0, dry_run: args.dry_run };
    let root = PathBuf::from(&args.path);
    let meta = fs::symlink_metadata(&root).map_err(|e| format!("{}: {e}", args.path))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", args.path));
    }
    walk(&root, cutoff, &mut report)?;
    report.removed.sort();
    let verb = if args.dry_run { "would remove" } else { "removed" };
    log(
        LogLevel::Info,
        &format!("{verb} {} files ({} bytes) under {}", report.removed.len(), report.freed_bytes, args.path),
    );
    Ok(Json(report))
}

fn walk(dir: &Path, cutoff: SystemTime, report: &mut Report) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        // symlink_metadata: a link is neither followed nor counted as a file.
        let meta = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            walk(&path, cutoff, report)?;
        } else if meta.is_file() {
            let modified = meta.modified().map_err(|e| format!("{}: {e}", path.display()))?;
            if modified < cutoff {
                if !report.dry_run {
                    fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                }
                report.freed_bytes += meta.len();
                report.removed.push(path.display().to_string());
            }
        }
    }
    Ok(())
}

moat_sdk::plugin!(Cleanup { tools: [cleanup] });
