//! The baseline of `cargo xtask bench`: the `disk_usage` tool of
//! `plugins/disk_usage`, compiled natively into a plain rmcp server, behind the
//! same JWT verification as moat (`moat::auth::Verifier`), with the streamable
//! HTTP options moat uses (both protocol eras: 2025-11-25 sessions over SSE,
//! stateless 2026-07-28). What moat costs on top of this is the sandbox, the
//! plugin runtime and moat's own checks.
//!
//! Its command line is the part of moat's that the benchmark drives, so the
//! benchmark starts it exactly as it starts moat (`common::Server::start`):
//!
//! ```text
//! native_baseline serve --dev --listen 127.0.0.1:0 [--root DIR]
//! native_baseline token --dev [--ttl 1h] [--scope S] [--sub SUB]
//! ```
//!
//! `--dev` verifies tokens with the dev key in `.moat/` of the working
//! directory, exactly as `moat serve --dev` does (ES256, issuer and audience
//! `moat-dev`, 30 s leeway, verified tokens cached); `token --dev` mints them as
//! `moat token --dev` does. The tool measures `--root` (default: the working
//! directory) as `/`, as the benchmark's sidecar grants moat's plugin its temp
//! directory as `/`. The server prints `moat: serving MCP at http://ADDR/mcp`,
//! the line the benchmark waits for, and serves `GET /healthz` as moat does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::{Parser, Subcommand};
use moat::auth::{AuthError, DevKey, Verifier};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Where `--dev` keeps its key, relative to the working directory (as moat).
const DEV_DIR: &str = ".moat";
/// moat's default `server.max_body_bytes`.
const MAX_BODY_BYTES: usize = 1 << 20;
/// The scope moat requires of a read-only tool whose sidecar names none
/// (`moat::policy::READ_SCOPE`).
const READ_SCOPE: &str = "tools:read";

const TOOL: &str = "disk_usage";
const TITLE: &str = "Disk usage";
/// The doc comment of the plugin's `#[tool]` function, which the SDK sends as
/// the description.
const DESCRIPTION: &str = "Reports total, used and free space of the filesystem holding a path, in GiB and in bytes.";

// The plugin's argument and result types, field for field. Doc comments (`///`)
// become schema descriptions, so these carry exactly the plugin's, and only
// where the plugin has them; the rest of the commentary uses `//`.

#[derive(Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Args {
    /// A path inside the granted directory (default: `/`).
    path: Option<String>,
}

/// Sizes in GiB (one decimal) and exact bytes; free is what unprivileged users can still write.
#[derive(Serialize, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Usage {
    path: String,
    total_gb: f64,
    used_gb: f64,
    free_gb: f64,
    total_bytes: u64,
    used_bytes: u64,
    free_bytes: u64,
}

// The SDK's `volume_stats` errors, with their Display.
enum StatsError {
    NotGranted(String),
    NotFound(String),
    Io(String),
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsError::NotGranted(m) => write!(f, "not granted: {m}"),
            StatsError::NotFound(m) => write!(f, "not found: {m}"),
            StatsError::Io(m) => write!(f, "{m}"),
        }
    }
}

#[derive(Parser)]
#[command(name = "native_baseline", about = "disk_usage as a native rmcp server: the baseline of `cargo xtask bench`")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve disk_usage over streamable HTTP at /mcp, with bearer auth.
    Serve(ServeArgs),
    /// Mint a token signed by the dev key (.moat/ in the working directory).
    Token {
        /// Required: only dev tokens can be minted.
        #[arg(long)]
        dev: bool,
        /// Space-separated scopes.
        #[arg(long, default_value = moat::auth::DEV_SCOPES)]
        scope: String,
        /// Subject (who the token names).
        #[arg(long, default_value = "dev")]
        sub: String,
        /// Lifetime: 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// The directory disk_usage sees as `/`.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Verify tokens against the dev key kept in .moat/ (required: the
    /// benchmark's setup; loopback only).
    #[arg(long)]
    dev: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing();
    // As moat's main: a multi-thread runtime, sized by the CPUs it may use.
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => rt.block_on(serve(args)),
        Command::Token { dev, scope, sub, ttl } => {
            if !dev {
                bail!("only dev tokens can be minted: pass --dev");
            }
            let ttl = moat::auth::parse_ttl(&ttl).map_err(anyhow::Error::msg)?;
            let key = DevKey::load_or_create(Path::new(DEV_DIR))?;
            println!("{}", key.mint(&sub, &scope, ttl).map_err(anyhow::Error::msg)?);
            Ok(())
        }
    }
}

/// moat's logging: `MOAT_LOG`, else warnings and errors, on stderr.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// The verifier `moat serve --dev` builds: ES256 tokens signed by the dev key,
/// issuer and audience `moat-dev`, 30 s leeway, verified tokens cached.
fn dev_verifier(args: &ServeArgs) -> Result<Verifier> {
    if !args.dev {
        bail!("pass --dev: the baseline verifies tokens as `moat serve --dev` does, with the dev key in {DEV_DIR}/");
    }
    if !args.listen.ip().is_loopback() {
        bail!("--dev listens on loopback addresses only (got {})", args.listen);
    }
    Ok(DevKey::load_or_create(Path::new(DEV_DIR))?.verifier()?)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let root = std::fs::canonicalize(&args.root).with_context(|| format!("--root {}", args.root.display()))?;
    if !root.is_dir() {
        bail!("--root {} is not a directory", args.root.display());
    }
    let verifier = Arc::new(dev_verifier(&args)?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;

    // moat's StreamableHttpServerConfig (host/src/http.rs), option for option.
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if !addr.ip().is_unspecified() {
        hosts.push(addr.ip().to_string());
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_json_response(true)
        .with_sse_retry(None)
        .with_cancellation_token(CancellationToken::new());
    let shared = Arc::new(Shared::new(root.clone()));
    let mcp = StreamableHttpService::new(
        move || Ok(NativeServer { shared: shared.clone() }),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp: Router = Router::new()
        .nest_service("/mcp", mcp)
        .route_layer(middleware::from_fn_with_state(verifier.clone(), authenticate));
    let app: Router = Router::new().route("/healthz", get(|| async { "ok\n" })).merge(mcp);

    println!("moat: serving MCP at http://{addr}/mcp (native baseline: {TOOL} over {}, no sandbox)", root.display());

    use axum::serve::ListenerExt as _;
    // As moat: Nagle's algorithm would hold back small SSE frames for ~40 ms.
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    axum::serve(listener, app).await.context("server error")?;
    Ok(())
}

fn jsonrpc_error(status: StatusCode, code: i32, message: impl Into<String>) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": Value::Null, "error": {"code": code, "message": message.into()}});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// What the handler needs of the verified caller: whether its token grants
/// the scope moat requires of a read-only tool whose sidecar names none.
#[derive(Clone, Copy)]
struct MayRead(bool);

/// moat's bearer check: one `Authorization: Bearer` header, verified (and
/// cached) by `moat::auth::Verifier`; what the handler needs of the caller goes
/// into the request's extensions, where the handler finds it. 401 otherwise.
async fn authenticate(State(verifier): State<Arc<Verifier>>, mut req: Request, next: Next) -> Response {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let (first, second) = (values.next(), values.next());
    let token = first
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim);
    let result = match (token, second) {
        (_, Some(_)) => Err(AuthError::Invalid("more than one Authorization header".into())),
        (None, None) if first.is_some() => Err(AuthError::Invalid("the Authorization scheme must be Bearer".into())),
        (None, None) => Err(AuthError::Missing),
        (Some(t), None) => verifier.verify(t).await,
    };
    match result {
        Ok(caller) => {
            let may_read = caller.scopes.iter().any(|s| s == READ_SCOPE);
            req.extensions_mut().insert(MayRead(may_read));
            next.run(req).await
        }
        Err(e) => {
            let challenge = if matches!(e, AuthError::Missing) { "Bearer" } else { "Bearer error=\"invalid_token\"" };
            let mut response = jsonrpc_error(StatusCode::UNAUTHORIZED, -32001, e.to_string());
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            response
        }
    }
}

/// What every request shares: the tool's definition, built once (rmcp asks for
/// it on every call, to check the standard headers), and the root granted as
/// `/`, as a sidecar grants it to moat's plugin (resolved once).
struct Shared {
    tool: Tool,
    root: moat::config::DirGrant,
}

impl Shared {
    fn new(root: PathBuf) -> Self {
        // As moat's `convert::tool` makes it from what the plugin declares.
        let tool = Tool::new(TOOL, DESCRIPTION, schema_of::<Args>())
            .with_annotations(
                ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false),
            )
            .with_title(TITLE)
            .with_raw_output_schema(schema_of::<Usage>().into());
        let root = moat::config::DirGrant::new(&root, "/", moat::config::DirMode::Ro).expect("--root is a directory");
        Shared { tool, root }
    }
}

/// The JSON Schema of `T` as the SDK makes it (`moat_sdk::__private::schema_of`):
/// draft 2020-12, the root `title` (the Rust type name) removed.
fn schema_of<T: rmcp::schemars::JsonSchema>() -> JsonObject {
    let settings = rmcp::schemars::generate::SchemaSettings::draft2020_12();
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(map) = &mut value {
        map.remove("title");
    }
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// The plugin's function, natively: `volume_stats` of `path`, then the same
/// arithmetic.
fn disk_usage(root: &moat::config::DirGrant, args: Args) -> Result<Usage, StatsError> {
    let path = args.path.unwrap_or_else(|| "/".into());
    let s = volume_stats(root, &path)?;
    let (total_bytes, used_bytes, free_bytes) = (s.total_bytes, s.total_bytes - s.free_bytes, s.available_bytes);
    let gb = |b: u64| (b as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0;
    let (total_gb, used_gb, free_gb) = (gb(total_bytes), gb(used_bytes), gb(free_bytes));
    Ok(Usage { path, total_gb, used_gb, free_gb, total_bytes, used_bytes, free_bytes })
}

struct VolumeStats {
    total_bytes: u64,
    free_bytes: u64,
    available_bytes: u64,
}

/// What moat's `volume_stats` host function does for a plugin granted `root` as
/// `/`: resolve `guest` beneath the root (no escape by `..` or links), then
/// `fstatvfs` the handle.
fn volume_stats(root: &moat::config::DirGrant, guest: &str) -> Result<VolumeStats, StatsError> {
    let fd = open_beneath(root, guest)?;
    let s = rustix::fs::fstatvfs(&fd).map_err(|e| StatsError::Io(format!("{guest}: {e}")))?;
    Ok(VolumeStats {
        total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        free_bytes: s.f_bfree.saturating_mul(s.f_frsize),
        available_bytes: s.f_bavail.saturating_mul(s.f_frsize),
    })
}

/// The path beneath the one grant of `root` as `/`, opened by moat's own
/// `open_granted` (what the plugin's `volume-stats` call runs).
fn open_beneath(root: &moat::config::DirGrant, guest: &str) -> Result<rustix::fd::OwnedFd, StatsError> {
    use moat::runtime::VolumeStatsError as E;
    moat::runtime::open_granted(std::slice::from_ref(root), guest).map_err(|e| match e {
        E::NotGranted(m) => StatsError::NotGranted(m),
        E::NotFound(m) => StatsError::NotFound(m),
        E::Io(m) => StatsError::Io(m),
    })
}

/// The handler rmcp calls: made once per session (2025-11-25) or per request
/// (2026-07-28), as moat's.
#[derive(Clone)]
struct NativeServer {
    shared: Arc<Shared>,
}

/// Whether the request's token may use the tool (see [`authenticate`]).
fn may_read(cx: &RequestContext<RoleServer>) -> bool {
    cx.extensions.get::<http::request::Parts>().and_then(|p| p.extensions.get::<MayRead>()).is_some_and(|m| m.0)
}

impl ServerHandler for NativeServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("moat-native-baseline", env!("CARGO_PKG_VERSION")))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == TOOL).then(|| self.shared.tool.clone())
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = if may_read(&cx) { vec![self.shared.tool.clone()] } else { Vec::new() };
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        r: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if r.name != TOOL {
            return Err(ErrorData::invalid_params(format!("unknown tool `{}`", r.name), None));
        }
        if !may_read(&cx) {
            return Err(ErrorData::invalid_request(format!("insufficient scope: `{TOOL}` needs {READ_SCOPE}"), None));
        }
        let args: Args = serde_json::from_value(Value::Object(r.arguments.unwrap_or_default()))
            .map_err(|e| ErrorData::invalid_params(format!("invalid arguments: {e}"), None))?;
        match disk_usage(&self.shared.root, args) {
            // As moat returns a `Json<T>` result: the object as structured
            // content and, for clients without structured output, as JSON text.
            Ok(usage) => {
                let value = serde_json::to_value(&usage)
                    .map_err(|e| ErrorData::internal_error(format!("cannot serialize the result: {e}"), None))?;
                Ok(CallToolResult::structured(value).into())
            }
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into()),
        }
    }
}
