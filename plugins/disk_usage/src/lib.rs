use moat_sdk::{Json, prompt, resource, tool, volume_stats};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// A path inside the granted directory.
    #[serde(default = "root")]
    path: String,
}
fn root() -> String {
    "/".into()
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Usage {
    path: String,
    total_gb: f64,
    used_gb: f64,
    free_gb: f64,
    total_bytes: u64,
    used_bytes: u64,
    free_bytes: u64,
}

/// Reports total, used and free space (GiB, one decimal, plus exact bytes) of the filesystem holding a path.
#[tool(read_only, idempotent, title = "Disk usage")]
fn disk_usage(args: Args) -> Result<Json<Usage>, moat_sdk::VolumeStatsError> {
    let s = volume_stats(&args.path)?;
    let gb = |b: u64| (b as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0;
    let (used, free) = (s.total_bytes - s.free_bytes, s.available_bytes);
    Ok(Json(Usage {
        path: args.path,
        total_gb: gb(s.total_bytes),
        used_gb: gb(used),
        free_gb: gb(free),
        total_bytes: s.total_bytes,
        used_bytes: used,
        free_bytes: free,
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
    format!(
        "Check {} for disk pressure. Summarise the risk in 3 lines.",
        args.host
    )
}

moat_sdk::plugin!(DiskUsage {
    tools: [disk_usage],
    resources: [limits],
    prompts: [triage]
});
