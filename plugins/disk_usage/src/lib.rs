//! `disk_usage`: how full is the filesystem holding a path?

use moat_sdk::{Json, VolumeStatsError, prompt, resource, tool, volume_stats};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// A path inside the granted directory (default: `/`).
    path: Option<String>,
}

/// Sizes in GiB (one decimal) and exact bytes; free is what unprivileged users can still write.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Usage {
    path: String,
    total_gb: f64,
    used_gb: f64,
    free_gb: f64,
    total_bytes: u64,
    used_bytes: u64,
    free_bytes: u64,
    /// Share of the space in use, in percent (one decimal).
    #[cfg(feature = "next")]
    used_percent: f64,
}

/// Reports total, used and free space of the filesystem holding a path, in GiB and in bytes.
#[tool(read_only, idempotent, title = "Disk usage")]
fn disk_usage(args: Args) -> Result<Json<Usage>, VolumeStatsError> {
    let path = args.path.unwrap_or_else(|| "/".into());
    let s = volume_stats(&path)?;
    let (total_bytes, used_bytes, free_bytes) = (s.total_bytes, s.total_bytes - s.free_bytes, s.available_bytes);
    let gb = |b: u64| (b as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0;
    let (total_gb, used_gb, free_gb) = (gb(total_bytes), gb(used_bytes), gb(free_bytes));
    Ok(Json(Usage {
        path,
        total_gb,
        used_gb,
        free_gb,
        total_bytes,
        used_bytes,
        free_bytes,
        #[cfg(feature = "next")]
        used_percent: (used_bytes as f64 * 1000.0 / total_bytes.max(1) as f64).round() / 10.0,
    }))
}

/// Disk pressure thresholds used by the triage prompt, in percent of space used.
#[resource(uri = "config://limits", mime_type = "application/json")]
fn limits() -> String {
    r#"{"warn_used_percent": 80, "critical_used_percent": 90}"#.into()
}

#[derive(Deserialize, JsonSchema)]
struct Host {
    /// The host to check.
    host: String,
}

/// Asks the model to assess disk pressure on a host.
#[prompt]
fn triage(args: Host) -> String {
    format!("Check {} for disk pressure. Summarise the risk in 3 lines.", args.host)
}

moat_sdk::plugin!(DiskUsage { tools: [disk_usage], resources: [limits], prompts: [triage] });
