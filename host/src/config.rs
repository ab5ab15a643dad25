//! `moat.toml` and plugin sidecars: parsed raw, then validated into types that
//! cannot hold an invalid setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;

use crate::egress::{HeaderGrant, HttpGrant, HttpPolicy};

/// A configuration or sidecar file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
}

/// Default cap on a registry source's component layer, in MiB (Python
/// components are ~20 MiB).
pub const DEFAULT_OCI_MAX_COMPONENT_MB: u64 = 128;

/// The largest memory cap a plugin may be given, in MiB.
pub const MAX_MEMORY_MB: u64 = 4096;

/// Limits applied to every call of a plugin, and to what it may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPU deadline of one call (time spent waiting for a person's answer excluded).
    pub timeout_ms: u64,
    /// Wall-clock ceiling of one call, waits for answers included.
    pub max_wall_ms: u64,
    /// Bytes of one result (every content item counted as encoded, plus structured content).
    pub max_output_bytes: u64,
    /// Bytes of one call's arguments, as JSON.
    pub max_argument_bytes: u64,
    /// Bytes of everything else one call sends: log and progress messages, questions.
    pub max_event_bytes: u64,
    /// Calls of this plugin running at once; more wait briefly, then get "busy".
    pub max_concurrency: u32,
    /// Per-subject rate limit of each tool without one of its own; none: unlimited.
    pub rate_limit: Option<RateLimit>,
    pub catalogue: CatalogueLimits,
    pub http: HttpLimits,
}

/// What one call may do over outbound HTTP (granted origins only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Requests one call may send.
    pub max_requests: u32,
    /// Bytes of response bodies one call may read, all requests together.
    pub max_response_bytes: u64,
    /// Bytes of request bodies one call may send, all requests together.
    pub max_request_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { max_requests: 64, max_response_bytes: 8 << 20, max_request_bytes: 1 << 20 }
    }
}

/// What one plugin may declare: counted and sized at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueLimits {
    pub max_tools: u32,
    pub max_resources: u32,
    pub max_prompts: u32,
    /// Bytes of one description (titles and names have fixed, smaller caps).
    pub max_description_bytes: u32,
    /// Bytes of one input or output schema, as JSON.
    pub max_schema_bytes: u32,
    /// Deadline of the catalogue read at load, independent of `timeout_ms`.
    pub catalogue_timeout_ms: u64,
}

impl Default for CatalogueLimits {
    fn default() -> Self {
        CatalogueLimits {
            max_tools: 256,
            max_resources: 1024,
            max_prompts: 256,
            max_description_bytes: 8 << 10,
            max_schema_bytes: 64 << 10,
            catalogue_timeout_ms: 2000,
        }
    }
}

/// The most calls of one plugin that may run at once (`max_concurrency`).
pub const MAX_CONCURRENCY: u32 = 64;

/// The shape of the instance pool, shared by every plugin: how many instances
/// may be alive at once and what each one may hold. The pool reserves room for
/// the most in every slot, so no component can run it dry for the others; a
/// component that needs more than one slot holds is refused at load. Set in
/// `[plugins.defaults]` only (`pool_instances`, `max_core_instances`,
/// `max_memories`, `max_tables`, `max_table_elements`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Component instances alive at once, every plugin together.
    pub instances: u32,
    /// Core module instances one component instance may hold (a Python
    /// component has 14, a Rust one 2 to 4).
    pub core_instances: u32,
    /// Linear memories one component instance may hold.
    pub memories: u32,
    /// Tables one component instance may hold.
    pub tables: u32,
    /// Elements of one table (a JavaScript engine's function table is large).
    pub table_elements: u32,
}

impl PoolLimits {
    /// Calls that may run at once, every plugin together: the instances less a
    /// sixteenth (at least one) kept for catalogue reads at load.
    pub fn calls(&self) -> u32 {
        self.instances - (self.instances / 16).max(1)
    }
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits { instances: 256, core_instances: 32, memories: 4, tables: 8, table_elements: 100_000 }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout_ms: 5000,
            max_wall_ms: 300_000,
            max_output_bytes: 1 << 20,
            max_argument_bytes: 256 << 10,
            max_event_bytes: 1 << 20,
            max_concurrency: 16,
            rate_limit: None,
            catalogue: CatalogueLimits::default(),
            http: HttpLimits::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<u64>,
    timeout_ms: Option<u64>,
    max_wall_ms: Option<u64>,
    max_output_bytes: Option<u64>,
    max_argument_bytes: Option<u64>,
    max_event_bytes: Option<u64>,
    max_concurrency: Option<u32>,
    rate_limit: Option<RateLimit>,
    max_tools: Option<u32>,
    max_resources: Option<u32>,
    max_prompts: Option<u32>,
    max_description_bytes: Option<u32>,
    max_schema_bytes: Option<u32>,
    catalogue_timeout_ms: Option<u64>,
    max_http_requests: Option<u32>,
    max_http_response_bytes: Option<u64>,
    max_http_request_bytes: Option<u64>,
    pool_instances: Option<u32>,
    max_core_instances: Option<u32>,
    max_memories: Option<u32>,
    max_tables: Option<u32>,
    max_table_elements: Option<u32>,
}

impl RawLimits {
    /// The pool's shape from `[plugins.defaults]`.
    fn pool(&self, path: &Path) -> Result<PoolLimits, ConfigError> {
        let mut pool = PoolLimits::default();
        for (key, raw, slot, lo, hi) in [
            ("pool_instances", self.pool_instances, &mut pool.instances, 2, 10_000),
            ("max_core_instances", self.max_core_instances, &mut pool.core_instances, 1, 1_000),
            ("max_memories", self.max_memories, &mut pool.memories, 1, 100),
            ("max_tables", self.max_tables, &mut pool.tables, 1, 1_000),
            ("max_table_elements", self.max_table_elements, &mut pool.table_elements, 1, 10_000_000),
        ] {
            if let Some(v) = raw {
                if !(lo..=hi).contains(&v) {
                    return Err(ConfigError::Invalid {
                        path: path.to_owned(),
                        message: format!("{key} = {v}: must be between {lo} and {hi}"),
                    });
                }
                *slot = v;
            }
        }
        Ok(pool)
    }

    /// The first pool key set here, if any (a sidecar may not set them).
    fn pool_key(&self) -> Option<&'static str> {
        [
            ("pool_instances", self.pool_instances.is_some()),
            ("max_core_instances", self.max_core_instances.is_some()),
            ("max_memories", self.max_memories.is_some()),
            ("max_tables", self.max_tables.is_some()),
            ("max_table_elements", self.max_table_elements.is_some()),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
    }

    fn apply(&self, base: Limits, path: &Path) -> Result<Limits, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_owned(), message };
        let in_range = |key: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(invalid(format!("{key} = {v}: must be between {lo} and {hi}")))
            }
        };
        let mut limits = base;
        if let Some(mb) = self.memory_mb {
            limits.memory_bytes = in_range("memory_mb", mb, 1, MAX_MEMORY_MB)? << 20;
        }
        if let Some(ms) = self.timeout_ms {
            limits.timeout_ms = in_range("timeout_ms", ms, 1, 3_600_000)?;
        }
        if let Some(ms) = self.max_wall_ms {
            limits.max_wall_ms = in_range("max_wall_ms", ms, 1, 24 * 3_600_000)?;
        }
        if let Some(b) = self.max_output_bytes {
            limits.max_output_bytes = in_range("max_output_bytes", b, 1, 1 << 30)?;
        }
        if let Some(b) = self.max_argument_bytes {
            limits.max_argument_bytes = in_range("max_argument_bytes", b, 2, 64 << 20)?;
        }
        if let Some(b) = self.max_event_bytes {
            limits.max_event_bytes = in_range("max_event_bytes", b, 0, 1 << 30)?;
        }
        if let Some(n) = self.max_concurrency {
            limits.max_concurrency = in_range("max_concurrency", n.into(), 1, MAX_CONCURRENCY.into())? as u32;
        }
        let c = &mut limits.catalogue;
        for (key, raw, slot, hi) in [
            ("max_tools", self.max_tools, &mut c.max_tools, 10_000),
            ("max_resources", self.max_resources, &mut c.max_resources, 100_000),
            ("max_prompts", self.max_prompts, &mut c.max_prompts, 10_000),
            ("max_description_bytes", self.max_description_bytes, &mut c.max_description_bytes, 1 << 20),
            ("max_schema_bytes", self.max_schema_bytes, &mut c.max_schema_bytes, 4 << 20),
        ] {
            if let Some(v) = raw {
                *slot = in_range(key, v.into(), 0, hi)? as u32;
            }
        }
        if let Some(ms) = self.catalogue_timeout_ms {
            c.catalogue_timeout_ms = in_range("catalogue_timeout_ms", ms, 1, 600_000)?;
        }
        if let Some(n) = self.max_http_requests {
            limits.http.max_requests = in_range("max_http_requests", n.into(), 0, 100_000)? as u32;
        }
        if let Some(b) = self.max_http_response_bytes {
            limits.http.max_response_bytes = in_range("max_http_response_bytes", b, 0, 4 << 30)?;
        }
        if let Some(b) = self.max_http_request_bytes {
            limits.http.max_request_bytes = in_range("max_http_request_bytes", b, 0, 4 << 30)?;
        }
        if limits.max_wall_ms < limits.timeout_ms && self.max_wall_ms.is_none() {
            limits.max_wall_ms = limits.timeout_ms;
        }
        if limits.max_wall_ms < limits.timeout_ms {
            return Err(invalid(format!(
                "max_wall_ms = {} is below timeout_ms = {}: the wall-clock ceiling must be at least the deadline",
                limits.max_wall_ms, limits.timeout_ms
            )));
        }
        if let Some(rl) = self.rate_limit {
            limits.rate_limit = Some(rl);
        }
        Ok(limits)
    }
}

/// Access mode of a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirMode {
    Ro,
    Rw,
}

impl DirMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DirMode::Ro => "read-only",
            DirMode::Rw => "read-write",
        }
    }
}

/// A host directory the operator lets a plugin see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Canonical host path (symbolic links resolved).
    pub host: PathBuf,
    /// Absolute, normalized path inside the sandbox.
    pub guest: String,
    pub mode: DirMode,
}

impl DirGrant {
    /// Validates a grant: the host directory must exist; the guest path must be
    /// absolute and free of `.`/`..`.
    pub fn new(host: &Path, guest: &str, mode: DirMode) -> Result<Self, String> {
        let canonical =
            std::fs::canonicalize(host).map_err(|e| format!("granted directory {}: {e}", host.display()))?;
        if !canonical.is_dir() {
            return Err(format!("granted path {} is not a directory", host.display()));
        }
        let guest = normalize_guest(guest)
            .ok_or_else(|| format!("guest path `{guest}` must be absolute, without `.` or `..`"))?;
        Ok(DirGrant { host: canonical, guest, mode })
    }

    /// Parses `HOST[:GUEST][:ro|rw]` as given to `moat call --dir`.
    pub fn parse_cli(spec: &str) -> Result<Self, String> {
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mode = match parts.last() {
            Some(&"ro") if parts.len() > 1 => {
                parts.pop();
                DirMode::Ro
            }
            Some(&"rw") if parts.len() > 1 => {
                parts.pop();
                DirMode::Rw
            }
            _ => DirMode::Ro,
        };
        let (host, guest) = match parts.as_slice() {
            [host] => (*host, *host),
            [host, guest] => (*host, *guest),
            _ => return Err(format!("--dir `{spec}`: expected HOST[:GUEST][:ro|rw]")),
        };
        if host.is_empty() {
            return Err(format!("--dir `{spec}`: the host path is empty"));
        }
        DirGrant::new(Path::new(host), guest, mode)
    }
}

/// `/a/b/` → `/a/b`; relative paths and `.`/`..` components are refused.
fn normalize_guest(guest: &str) -> Option<String> {
    if !guest.starts_with('/') {
        return None;
    }
    let mut out = String::new();
    for part in guest.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return None;
        }
        out.push('/');
        out.push_str(part);
    }
    Some(if out.is_empty() { "/".into() } else { out })
}

/// Per-token-subject rate limit of a tool (both numbers at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

/// An OAuth scope token (RFC 6749 §3.3: one or more printable ASCII
/// characters other than space, `"` and `\\`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Scope(String);

impl Scope {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
            Ok(Scope(s))
        } else {
            Err(format!("`{}` is not a scope (printable ASCII, no spaces, quotes or backslashes)", s.escape_debug()))
        }
    }
}

/// What the operator says about one tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    /// All of these scopes are needed to list and call the tool.
    pub scopes: Option<Vec<Scope>>,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirGrant {
    host: PathBuf,
    guest: Option<String>,
    mode: Option<DirMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    dirs: Vec<RawDirGrant>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    http_headers: Vec<RawHeaderGrant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderGrant {
    origin: String,
    header: String,
    value_env: String,
    #[serde(default)]
    value_prefix: String,
}

/// Refuses what cannot be an environment variable's name.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!("`{}` is not an environment variable name", name.escape_debug()));
    }
    Ok(())
}

/// Who may list and read a plugin's resources, or list and get its prompts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentPolicy {
    /// All of these scopes are needed (default: `tools:read`).
    pub scopes: Option<Vec<Scope>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSidecar {
    #[serde(default)]
    grants: RawGrants,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    tools: BTreeMap<String, ToolPolicy>,
    #[serde(default)]
    resources: ContentPolicy,
    #[serde(default)]
    prompts: ContentPolicy,
}

/// Everything the operator grants one plugin: its sidecar, validated. The default
/// (no sidecar) grants nothing: compute only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSettings {
    pub dirs: Vec<DirGrant>,
    /// Names of host environment variables passed in (values read per call).
    pub env: Vec<String>,
    /// Outbound HTTP: the origins granted and the secret headers added at the egress.
    pub http: Arc<HttpPolicy>,
    pub limits: Limits,
    pub tools: BTreeMap<String, ToolPolicy>,
    pub resources: ContentPolicy,
    pub prompts: ContentPolicy,
}

impl PluginSettings {
    /// Settings with no grants and the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        PluginSettings { limits, ..Default::default() }
    }

    /// Parses the sidecar `text` read from `path`; relative host paths in it
    /// are relative to the sidecar's directory.
    pub fn parse_sidecar(text: &str, path: &Path, defaults: Limits) -> Result<Self, ConfigError> {
        let raw: RawSidecar =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let invalid = |message: String| ConfigError::Invalid { path: path.to_owned(), message };
        if let Some(key) = raw.limits.pool_key() {
            return Err(invalid(format!(
                "[limits] {key}: the instance pool is shared by every plugin; set it in moat.toml [plugins.defaults]"
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut dirs = Vec::new();
        for d in &raw.grants.dirs {
            let host = if d.host.is_absolute() { d.host.clone() } else { base.join(&d.host) };
            let guest = d.guest.clone().unwrap_or_else(|| "/data".into());
            let grant = DirGrant::new(&host, &guest, d.mode.unwrap_or(DirMode::Ro)).map_err(invalid)?;
            if dirs.iter().any(|g: &DirGrant| g.guest == grant.guest) {
                return Err(invalid(format!("guest path {} is granted twice", grant.guest)));
            }
            dirs.push(grant);
        }
        for name in &raw.grants.env {
            check_env_name(name).map_err(invalid)?;
        }
        let mut http = HttpPolicy::default();
        for text in &raw.grants.http {
            http.grants.push(text.parse::<HttpGrant>().map_err(|e| invalid(format!("[grants] http: {e}")))?);
        }
        for h in &raw.grants.http_headers {
            check_env_name(&h.value_env).map_err(|e| invalid(format!("http_headers value_env: {e}")))?;
            let grant = HeaderGrant::new(&h.origin, &h.header, &h.value_env, &h.value_prefix).map_err(invalid)?;
            if http.check_origin(&grant.origin).is_err() {
                return Err(invalid(format!(
                    "http_headers origin `{}` is not granted in [grants] http: a secret goes only where requests may go",
                    h.origin
                )));
            }
            if raw.grants.env.contains(&grant.value_env) {
                return Err(invalid(format!(
                    "{} is both passed to the plugin ([grants] env) and a secret header's value_env; the plugin must never read a secret",
                    grant.value_env
                )));
            }
            http.headers.push(grant);
        }
        Ok(PluginSettings {
            dirs,
            env: raw.grants.env,
            http: Arc::new(http),
            limits: raw.limits.apply(defaults, path)?,
            tools: raw.tools,
            resources: raw.resources,
            prompts: raw.prompts,
        })
    }
}

/// The permissions a plugin's author asks for (a sidecar shipped beside the
/// component, e.g. as an OCI artifact's permissions layer). Only read, never
/// granted: host paths in it mean nothing here, so directories are compared by
/// their guest path and mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedGrants {
    /// (guest path, mode).
    pub dirs: Vec<(String, DirMode)>,
    pub env: Vec<String>,
    pub http: Vec<String>,
    /// (origin, header name).
    pub http_headers: Vec<(String, String)>,
    pub memory_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl RequestedGrants {
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawSidecar = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut out = RequestedGrants::default();
        for d in raw.grants.dirs {
            let guest = d.guest.unwrap_or_else(|| "/data".into());
            let guest = normalize_guest(&guest)
                .ok_or_else(|| format!("guest path `{}` is not absolute", guest.escape_debug()))?;
            out.dirs.push((guest, d.mode.unwrap_or(DirMode::Ro)));
        }
        for text in &raw.grants.http {
            out.http.push(text.parse::<HttpGrant>().map_err(|e| format!("[grants] http: {e}"))?.to_string());
        }
        out.env = raw.grants.env;
        out.http_headers =
            raw.grants.http_headers.into_iter().map(|h| (h.origin, h.header.to_ascii_lowercase())).collect();
        out.memory_mb = raw.limits.memory_mb;
        out.timeout_ms = raw.limits.timeout_ms;
        Ok(out)
    }

    /// What is asked for and not granted by `granted`, one line each.
    pub fn not_granted(&self, granted: &PluginSettings) -> Vec<String> {
        let mut out = Vec::new();
        for (guest, mode) in &self.dirs {
            match granted.dirs.iter().find(|g| &g.guest == guest) {
                None => out.push(format!("directory {guest} ({})", mode.as_str())),
                Some(g) if *mode == DirMode::Rw && g.mode == DirMode::Ro => {
                    out.push(format!("directory {guest} read-write (granted read-only)"))
                }
                Some(_) => {}
            }
        }
        for name in self.env.iter().filter(|n| !granted.env.contains(n)) {
            out.push(format!("environment variable {name}"));
        }
        for h in self.http.iter().filter(|h| !granted.http.grants.iter().any(|g| g.text == **h)) {
            out.push(format!("outbound HTTP to {h}"));
        }
        for (origin, header) in &self.http_headers {
            let given = granted.http.headers.iter().any(|g| {
                g.header.as_str() == header
                    && origin
                        .parse::<HttpGrant>()
                        .is_ok_and(|o| o.text == g.origin.to_string() || origin == &g.origin.to_string())
            });
            if !given {
                out.push(format!("secret header {header} for {origin}"));
            }
        }
        if let Some(mb) = self.memory_mb.filter(|mb| mb << 20 > granted.limits.memory_bytes) {
            out.push(format!("memory_mb = {mb} (granted {})", granted.limits.memory_bytes >> 20));
        }
        if let Some(ms) = self.timeout_ms.filter(|ms| *ms > granted.limits.timeout_ms) {
            out.push(format!("timeout_ms = {ms} (granted {})", granted.limits.timeout_ms));
        }
        out
    }

    /// What is granted and was not asked for, one line each.
    pub fn not_requested(&self, granted: &PluginSettings) -> Vec<String> {
        let mut out = Vec::new();
        for g in granted.dirs.iter().filter(|g| !self.dirs.iter().any(|(guest, _)| guest == &g.guest)) {
            out.push(format!("directory {} ({})", g.guest, g.mode.as_str()));
        }
        for name in granted.env.iter().filter(|n| !self.env.contains(n)) {
            out.push(format!("environment variable {name}"));
        }
        for g in granted.http.grants.iter().filter(|g| !self.http.contains(&g.text)) {
            out.push(format!("outbound HTTP to {}", g.text));
        }
        out
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    max_body_bytes: Option<u64>,
    admin_listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    issuer: Option<String>,
    audience: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    public_key_files: Vec<PathBuf>,
    #[serde(default)]
    algorithms: Vec<String>,
    leeway_s: Option<u64>,
    #[serde(default)]
    authorization_servers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    dir: Option<PathBuf>,
    watch: Option<bool>,
    cache_dir: Option<PathBuf>,
    oci_store: Option<PathBuf>,
    #[serde(default)]
    defaults: RawLimits,
    #[serde(default)]
    oci: Vec<RawOci>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOci {
    #[serde(rename = "ref")]
    reference: String,
    name: Option<String>,
    #[serde(default)]
    verify_keys: Vec<PathBuf>,
    #[serde(default)]
    insecure_unsigned: bool,
    poll_s: Option<u64>,
    sidecar: Option<PathBuf>,
    auth_file: Option<PathBuf>,
    username_env: Option<String>,
    password_env: Option<String>,
    max_size_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    auth: Option<RawAuth>,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default)]
    fleet: RawFleet,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    redis_url: Option<String>,
    redis_password_env: Option<String>,
    redis_prefix: Option<String>,
    redis_timeout_ms: Option<u64>,
    state_key_file: Option<PathBuf>,
    replica_name: Option<String>,
}

/// `[fleet]`: what the replicas of one fleet share. Everything is optional:
/// without it a process is a fleet of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// `redis://host:port[/db]` or `unix:///path/to/redis.sock`, never with a
    /// password in it (that comes from `redis_password_env`).
    pub redis_url: Option<String>,
    /// The environment variable holding Redis's password.
    pub redis_password_env: Option<String>,
    /// Prepended to every Redis key: several fleets may share one Redis.
    pub redis_prefix: String,
    /// How long a Redis request may take before the replica decides alone.
    pub redis_timeout_ms: u64,
    /// The request-state keys every replica shares (one base64 key per
    /// line; the first seals). Without it each process makes its own.
    pub state_key_file: Option<PathBuf>,
    /// This replica's name in the fleet's view (default: host name and port).
    pub replica_name: Option<String>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            redis_url: None,
            redis_password_env: None,
            redis_prefix: "moat".into(),
            redis_timeout_ms: 100,
            state_key_file: None,
            replica_name: None,
        }
    }
}

/// Checks `[fleet]`.
fn fleet(raw: RawFleet, rel: &dyn Fn(PathBuf) -> PathBuf) -> Result<FleetConfig, String> {
    if let Some(u) = &raw.redis_url {
        let url = url::Url::parse(u).map_err(|e| format!("fleet.redis_url: {e}"))?;
        match url.scheme() {
            "redis" | "unix" | "redis+unix" => {}
            "rediss" => {
                return Err("fleet.redis_url: TLS to Redis (rediss://) is not built in; reach Redis over a private network or a local TLS tunnel".into());
            }
            other => {
                return Err(format!(
                    "fleet.redis_url: `{}` is not a Redis URL scheme (redis://, unix://)",
                    crate::text::shown(other)
                ));
            }
        }
        if url.password().is_some() || url.query_pairs().any(|(k, _)| k == "pass" || k == "password") {
            return Err("fleet.redis_url must not hold a password; name the environment variable that does in fleet.redis_password_env".into());
        }
    }
    if let Some(v) = &raw.redis_password_env {
        check_env_name(v).map_err(|e| format!("fleet.redis_password_env: {e}"))?;
    }
    let prefix = raw.redis_prefix.unwrap_or_else(|| "moat".into());
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "fleet.redis_prefix `{}`: 1 to 64 letters, digits, `-`, `_` or `.`",
            crate::text::shown(&prefix)
        ));
    }
    let timeout = raw.redis_timeout_ms.unwrap_or(100);
    if !(1..=10_000).contains(&timeout) {
        return Err(format!("fleet.redis_timeout_ms must be 1 to 10000, not {timeout}"));
    }
    if let Some(n) = &raw.replica_name
        && (n.is_empty() || n.len() > 128 || n.chars().any(char::is_control))
    {
        return Err("fleet.replica_name: 1 to 128 printable characters".into());
    }
    Ok(FleetConfig {
        redis_url: raw.redis_url,
        redis_password_env: raw.redis_password_env,
        redis_prefix: prefix,
        redis_timeout_ms: timeout,
        state_key_file: raw.state_key_file.map(rel),
        replica_name: raw.replica_name,
    })
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: u64,
    pub admin_listen: Option<SocketAddr>,
}

/// `[auth]`: where tokens come from and how they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub issuer: String,
    /// The `aud` every token must carry (default: `server.public_url`).
    pub audience: String,
    pub keys: KeySource,
    /// Public-key algorithms only (at least one).
    pub algorithms: Vec<Algorithm>,
    pub leeway_s: u64,
    /// What the protected-resource metadata names (default: the issuer).
    pub authorization_servers: Vec<String>,
}

/// Where verification keys come from: at least one of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySource {
    pub jwks_uri: Option<String>,
    pub public_key_files: Vec<PathBuf>,
}

/// `[plugins]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    pub dir: PathBuf,
    pub watch: bool,
    /// Where compiled components are cached; `None` picks the user cache dir.
    pub cache_dir: Option<PathBuf>,
    pub defaults: Limits,
    /// The instance pool every plugin shares (`[plugins.defaults]`).
    pub pool: PoolLimits,
    /// Plugins pulled from OCI registries (`[[plugins.oci]]`).
    pub oci: Vec<OciSourceConfig>,
    /// Where verified artifacts are kept (default `.moat/oci` beside the
    /// configuration file).
    pub oci_store: PathBuf,
}

/// Registry credentials: where they come from (the values are read at start,
/// never kept in configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    Anonymous,
    /// A docker-style `config.json`.
    File(PathBuf),
    /// Environment variables holding the username and the password or token.
    Env {
        username: String,
        password: String,
    },
}

/// One `[[plugins.oci]]` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSourceConfig {
    /// As written: `registry/repository:tag` or `...@sha256:<digest>`.
    pub reference: String,
    /// The plugin's name (default: the repository's last part).
    pub name: String,
    /// Public keys any of which must have signed the digest; empty only with
    /// `insecure_unsigned`.
    pub verify_keys: Vec<PathBuf>,
    pub insecure_unsigned: bool,
    /// How often a tag is checked.
    pub poll_s: u64,
    /// The operator's grants for it.
    pub sidecar: Option<PathBuf>,
    pub auth: RegistryAuth,
    /// Cap on the component layer.
    pub max_size_mb: u64,
}

/// A validated `moat.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: Option<AuthConfig>,
    pub plugins: PluginsConfig,
    pub fleet: FleetConfig,
}

/// Keys that `MOAT_<SECTION>_<KEY>` environment variables may override.
const ENV_KEYS: &[(&str, &str)] = &[
    ("server", "listen"),
    ("server", "public_url"),
    ("server", "allowed_origins"),
    ("server", "max_body_bytes"),
    ("server", "admin_listen"),
    ("auth", "issuer"),
    ("auth", "audience"),
    ("auth", "jwks_uri"),
    ("auth", "public_key_files"),
    ("auth", "algorithms"),
    ("auth", "leeway_s"),
    ("auth", "authorization_servers"),
    ("plugins", "dir"),
    ("plugins", "watch"),
    ("plugins", "cache_dir"),
    ("plugins", "oci_store"),
    ("fleet", "redis_url"),
    ("fleet", "redis_password_env"),
    ("fleet", "redis_prefix"),
    ("fleet", "redis_timeout_ms"),
    ("fleet", "state_key_file"),
    ("fleet", "replica_name"),
];

impl Config {
    /// `[plugins]` with every default (no configuration file, no overrides).
    pub fn default_plugins() -> PluginsConfig {
        PluginsConfig {
            dir: PathBuf::from("plugins"),
            watch: true,
            cache_dir: None,
            defaults: Limits::default(),
            pool: PoolLimits::default(),
            oci: Vec::new(),
            oci_store: PathBuf::from(".moat/oci"),
        }
    }

    /// Reads `path` (or nothing, for all defaults) and applies `MOAT_*` overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.to_owned(), source })?,
                p.to_owned(),
            ),
            None => (String::new(), PathBuf::from("<defaults>")),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::parse(&text, &origin, &env)
    }

    /// Parses `text` with overrides taken from `env` (name, value) pairs.
    pub fn parse(text: &str, origin: &Path, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse { path: origin.to_owned(), message };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        for (section, key) in ENV_KEYS {
            let name = format!("MOAT_{}_{}", section.to_uppercase(), key.to_uppercase());
            let Some((_, value)) = env.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            // A value is read as TOML (numbers, booleans, arrays) and else as a string.
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            let sec = table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
            let toml::Value::Table(sec) = sec else {
                return Err(ConfigError::Env { name, message: format!("[{section}] is not a table") });
            };
            sec.insert(key.to_string(), parsed);
        }
        let raw: RawConfig =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        Self::validate(raw, origin)
    }

    fn validate(raw: RawConfig, origin: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: origin.to_owned(), message };
        let base = origin.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let rel = |p: PathBuf| {
            if p.is_absolute() || origin == Path::new("<defaults>") { p } else { base.join(p) }
        };

        let server = ServerConfig {
            listen: raw.server.listen.unwrap_or_else(|| "127.0.0.1:8000".parse().expect("valid address")),
            public_url: raw.server.public_url,
            allowed_origins: raw.server.allowed_origins,
            max_body_bytes: raw.server.max_body_bytes.unwrap_or(1 << 20),
            admin_listen: raw.server.admin_listen,
        };
        if server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes must be positive".into()));
        }
        let auth = match raw.auth {
            None => None,
            Some(a) => {
                let issuer = a.issuer.ok_or_else(|| invalid("[auth] needs `issuer`".into()))?;
                if issuer == crate::auth::DEV_ISSUER {
                    return Err(invalid(format!(
                        "auth.issuer `{issuer}` is the dev issuer; production tokens must come from a real identity provider"
                    )));
                }
                if a.jwks_uri.is_none() && a.public_key_files.is_empty() {
                    return Err(invalid("[auth] needs `jwks_uri` or `public_key_files`".into()));
                }
                let audience = a.audience.or_else(|| server.public_url.clone()).ok_or_else(|| {
                    invalid("[auth] needs `audience` (or set server.public_url, which it defaults to)".into())
                })?;
                let names = if a.algorithms.is_empty() { vec!["RS256".into(), "ES256".into()] } else { a.algorithms };
                let algorithms = names
                    .iter()
                    .map(|name| match name.parse::<Algorithm>() {
                        Ok(alg) if alg.family() != AlgorithmFamily::Hmac => Ok(alg),
                        _ => Err(invalid(format!(
                            "auth.algorithms: `{name}` is not allowed; use asymmetric ones: {}",
                            ALLOWED_ALGORITHMS.join(", ")
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let authorization_servers =
                    if a.authorization_servers.is_empty() { vec![issuer.clone()] } else { a.authorization_servers };
                Some(AuthConfig {
                    audience,
                    issuer,
                    keys: KeySource {
                        jwks_uri: a.jwks_uri,
                        public_key_files: a.public_key_files.into_iter().map(rel).collect(),
                    },
                    algorithms,
                    leeway_s: a.leeway_s.unwrap_or(30),
                    authorization_servers,
                })
            }
        };
        let plugins = PluginsConfig {
            dir: rel(raw.plugins.dir.unwrap_or_else(|| PathBuf::from("plugins"))),
            watch: raw.plugins.watch.unwrap_or(true),
            cache_dir: raw.plugins.cache_dir.map(rel),
            defaults: raw.plugins.defaults.apply(Limits::default(), origin)?,
            pool: raw.plugins.defaults.pool(origin)?,
            oci: raw
                .plugins
                .oci
                .into_iter()
                .map(|o| oci_source(o, &rel))
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?,
            oci_store: rel(raw.plugins.oci_store.unwrap_or_else(|| PathBuf::from(".moat/oci"))),
        };
        for (i, o) in plugins.oci.iter().enumerate() {
            if plugins.oci[..i].iter().any(|p| p.name == o.name) {
                return Err(invalid(format!(
                    "[[plugins.oci]] {} and another source are both named `{}`; set `name` on one",
                    o.reference, o.name
                )));
            }
        }
        if plugins.dir.components().any(|c| matches!(c, Component::Prefix(_))) {
            return Err(invalid("plugins.dir is not a usable path".into()));
        }
        let fleet = fleet(raw.fleet, &rel).map_err(invalid)?;
        Ok(Config { server, auth, plugins, fleet })
    }
}

/// Validates one `[[plugins.oci]]` table (the reference's grammar is checked
/// where it is parsed, when the source starts).
fn oci_source(o: RawOci, rel: &dyn Fn(PathBuf) -> PathBuf) -> Result<OciSourceConfig, String> {
    let at = |m: &str| format!("[[plugins.oci]] {}: {m}", crate::text::shown(&o.reference));
    if o.reference.is_empty() {
        return Err("[[plugins.oci]] needs `ref`".into());
    }
    if o.verify_keys.is_empty() && !o.insecure_unsigned {
        return Err(at(
            "needs `verify_keys` (the public keys its signatures must verify with); unsigned plugins are refused unless `insecure_unsigned = true`",
        ));
    }
    if !o.verify_keys.is_empty() && o.insecure_unsigned {
        return Err(at("has both `verify_keys` and `insecure_unsigned = true`; keep one"));
    }
    let repository = o.reference.split('@').next().unwrap_or_default();
    let last = repository.rsplit('/').next().unwrap_or_default();
    let last = match last.rfind(':') {
        Some(i) => &last[..i],
        None => last,
    };
    let name = o.name.unwrap_or_else(|| last.to_owned());
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) || name.len() > 128 {
        return Err(at(&format!("`{}` cannot be a plugin name", crate::text::shown(&name))));
    }
    let poll_s = o.poll_s.unwrap_or(60);
    if poll_s == 0 {
        return Err(at("poll_s must be at least 1"));
    }
    let auth = match (o.auth_file, o.username_env, o.password_env) {
        (None, None, None) => RegistryAuth::Anonymous,
        (Some(f), None, None) => RegistryAuth::File(rel(f)),
        (None, Some(username), Some(password)) => {
            check_env_name(&username).map_err(|e| at(&e))?;
            check_env_name(&password).map_err(|e| at(&e))?;
            RegistryAuth::Env { username, password }
        }
        _ => return Err(at("credentials come from `auth_file`, or from both `username_env` and `password_env`")),
    };
    let max_size_mb = o.max_size_mb.unwrap_or(DEFAULT_OCI_MAX_COMPONENT_MB);
    if max_size_mb == 0 || max_size_mb > 1024 {
        return Err(at("max_size_mb must be between 1 and 1024"));
    }
    Ok(OciSourceConfig {
        reference: o.reference,
        name,
        verify_keys: o.verify_keys.into_iter().map(rel).collect(),
        insecure_unsigned: o.insecure_unsigned,
        poll_s,
        sidecar: o.sidecar.map(rel),
        auth,
        max_size_mb,
    })
}

/// Signature algorithms a token may use: asymmetric only.
pub const ALLOWED_ALGORITHMS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fleet_keys_are_checked_and_overridable() {
        let at = Path::new("/etc/moat/moat.toml");
        let c = Config::parse("", at, &[]).unwrap();
        assert_eq!(c.fleet, FleetConfig::default(), "no [fleet]: a fleet of one");
        let c = Config::parse(
            "[fleet]\nredis_url = \"redis://10.0.0.5:6379/2\"\nstate_key_file = \"state.key\"\n",
            at,
            &env(&[("MOAT_FLEET_REDIS_URL", "unix:///run/redis.sock"), ("MOAT_FLEET_REDIS_TIMEOUT_MS", "250")]),
        )
        .unwrap();
        assert_eq!(c.fleet.redis_url.as_deref(), Some("unix:///run/redis.sock"), "the variable wins");
        assert_eq!(c.fleet.redis_timeout_ms, 250);
        assert_eq!(c.fleet.state_key_file, Some(PathBuf::from("/etc/moat/state.key")), "relative to moat.toml");
        for (text, wanted) in [
            ("redis_url = \"redis://:hunter2@redis:6379\"", "must not hold a password"),
            ("redis_url = \"unix:///run/redis.sock?pass=hunter2\"", "must not hold a password"),
            ("redis_url = \"rediss://redis:6380\"", "TLS"),
            ("redis_url = \"http://redis\"", "not a Redis URL scheme"),
            ("redis_prefix = \"a b\"", "redis_prefix"),
            ("redis_timeout_ms = 0", "redis_timeout_ms"),
            ("redis_password_env = \"\"", "redis_password_env"),
            ("replica = \"x\"", "unknown field"),
        ] {
            let e = Config::parse(&format!("[fleet]\n{text}\n"), at, &[]).unwrap_err().to_string();
            assert!(e.contains(wanted), "{text}: {e}");
            assert!(!e.contains("hunter2"), "the password is not repeated: {e}");
        }
    }

    #[test]
    fn defaults_and_env_overrides() {
        let c = Config::parse("", Path::new("<defaults>"), &[]).unwrap();
        assert_eq!(c.plugins.defaults, Limits::default());
        assert!(c.auth.is_none());
        let c = Config::parse(
            "[plugins]\ndir = \"p\"\n[plugins.defaults]\nmemory_mb = 32\n",
            Path::new("/etc/moat/moat.toml"),
            &env(&[("MOAT_PLUGINS_WATCH", "false"), ("MOAT_SERVER_LISTEN", "127.0.0.1:0")]),
        )
        .unwrap();
        assert_eq!(c.plugins.dir, PathBuf::from("/etc/moat/p"));
        assert!(!c.plugins.watch);
        assert_eq!(c.plugins.defaults.memory_bytes, 32 << 20);
        assert_eq!(c.server.listen.port(), 0);
    }

    #[test]
    fn bad_config_names_the_problem() {
        let e = Config::parse("[plugins]\ndri = 1\n", Path::new("m.toml"), &[]).unwrap_err();
        assert!(e.to_string().contains("dri"), "{e}");
        let e = Config::parse(
            "[auth]\nissuer = \"x\"\njwks_uri = \"y\"\naudience = \"a\"\nalgorithms = [\"HS256\"]\n",
            Path::new("m.toml"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("HS256"), "{e}");
        let e = Config::parse("[auth]\nissuer = \"x\"\njwks_uri = \"y\"\n", Path::new("m.toml"), &[]).unwrap_err();
        assert!(e.to_string().contains("audience"), "{e}");
        let c = Config::parse(
            "[auth]\nissuer = \"https://idp\"\njwks_uri = \"y\"\naudience = \"a\"\n",
            Path::new("m.toml"),
            &[],
        )
        .unwrap();
        assert_eq!(c.auth.unwrap().authorization_servers, vec!["https://idp".to_owned()]);
        let e = Config::parse("[plugins.defaults]\nmemory_mb = 0\n", Path::new("m.toml"), &[]).unwrap_err();
        assert!(e.to_string().contains("memory_mb"), "{e}");
    }

    #[test]
    fn sidecar_grants_and_policies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let text = format!(
            "[grants]\ndirs = [{{ host = \"{}\", guest = \"/data/\", mode = \"rw\" }}]\nenv = [\"API_KEY\"]\n\
             [limits]\ntimeout_ms = 100\n[tools.x]\nscopes = [\"a\"]\nrate_limit = {{ per_minute = 5, burst = 1 }}\n",
            dir.path().display()
        );
        let s = PluginSettings::parse_sidecar(&text, &path, Limits::default()).unwrap();
        assert_eq!(s.dirs[0].guest, "/data");
        assert_eq!(s.dirs[0].mode, DirMode::Rw);
        assert_eq!(s.env, vec!["API_KEY"]);
        assert_eq!(s.limits.timeout_ms, 100);
        assert_eq!(s.limits.memory_bytes, Limits::default().memory_bytes);
        let (five, one) = (NonZeroU32::new(5).unwrap(), NonZeroU32::MIN);
        assert_eq!(s.tools["x"].rate_limit, Some(RateLimit { per_minute: five, burst: one }));
        for bad in [
            "[tools.x]\nrate_limit = { per_minute = 0, burst = 1 }",
            "[tools.x]\nscopes = [\"a b\"]",
            "[prompts]\nscopes = [\"\"]",
        ] {
            let e = PluginSettings::parse_sidecar(bad, &path, Limits::default()).unwrap_err();
            assert!(e.to_string().contains("rate_limit") || e.to_string().contains("scope"), "{bad}: {e}");
        }

        let e =
            PluginSettings::parse_sidecar("[grants]\ndirs = [{ host = \"/nonexistent/x\" }]", &path, Limits::default())
                .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x"), "{e}");
        let e = PluginSettings::parse_sidecar("[grant]\n", &path, Limits::default()).unwrap_err();
        assert!(e.to_string().contains("grant"), "{e}");
    }

    #[test]
    fn cli_dir_specs() {
        let g = DirGrant::parse_cli("/:/:ro").unwrap();
        assert_eq!((g.host.as_path(), g.guest.as_str(), g.mode), (Path::new("/"), "/", DirMode::Ro));
        let tmp = tempfile::tempdir().unwrap();
        let spec = format!("{}:/work:rw", tmp.path().display());
        let g = DirGrant::parse_cli(&spec).unwrap();
        assert_eq!((g.guest.as_str(), g.mode), ("/work", DirMode::Rw));
        assert!(DirGrant::parse_cli(&format!("{}:rel", tmp.path().display())).is_err());
        assert!(DirGrant::parse_cli(&format!("{}:/a/../b", tmp.path().display())).is_err());
    }
}
