//! `moat serve`: load the plugins, then serve them over HTTP (with auth) or stdio.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use moat::auth::{DEV_SCOPES, DevKey, Verifier};
use moat::config::Config;
use moat::fleet::Fleet;
use moat::fleet::keys::StateKeys;
use moat::http::{self, Authorization, DevAuthority, HttpOptions};
use moat::mcp::{Mcp, MoatServer, Shared, Transport};
use moat::metrics::Metrics;
use moat::oci::source::{OnChange, Prepared, Sources};
use moat::policy::RateLimits;
use moat::registry::Loader;
use moat::runtime::EgressMetrics;
use moat::watch::{self, Reloads, Trigger, Writer};
use rmcp::ServiceExt as _;
use tokio_util::sync::CancellationToken;

/// How long a first start waits for registry sources with nothing stored.
const FIRST_PULL_LIMIT: Duration = Duration::from_secs(60);

/// Longest a fleet replica holds back list_changed for the others to catch up.
const SETTLE_LIMIT: Duration = Duration::from_secs(3);

/// Where `--dev` keeps its key, relative to the working directory.
pub const DEV_DIR: &str = ".moat";

pub struct Args {
    pub config: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub plugins: Option<PathBuf>,
    pub admin_listen: Option<SocketAddr>,
    pub dev: bool,
    pub stdio: bool,
    pub no_watch: bool,
}

pub async fn run(args: Args) -> Result<ExitCode> {
    // Claim SIGHUP first: its default action would end the process during a
    // long first load.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let config = Config::load(args.config.as_deref())?;
    let dir = args.plugins.clone().unwrap_or_else(|| config.plugins.dir.clone());
    let metrics = Arc::new(Metrics::default());
    let runtime = Arc::new(super::runtime(&config.plugins, Some(metrics.clone() as Arc<dyn EgressMetrics>))?);
    // Fleet mode: Redis (contacted on first use) and the shared state keys.
    let fleet = if args.stdio { None } else { Fleet::connect(&config.fleet, http::SESSION_IDLE)?.map(Arc::new) };
    let rate_limits = match &fleet {
        Some(f) => RateLimits::fleet_wide(f.limits()),
        None => RateLimits::default(),
    };
    let keys = Arc::new(match &config.fleet.state_key_file {
        Some(path) => StateKeys::from_file(path, moat::mcp::STATE_TTL)?,
        None => StateKeys::random(),
    });
    let state = Shared::with_limits(runtime.clone(), metrics, rate_limits);
    let writer = Writer { runtime, metrics: state.metrics.clone(), state: state.clone() };
    // Registry sources: keys, credentials and sidecars read now (a bad one
    // stops the start), and the versions verified from the store serve first.
    let oci = if config.plugins.oci.is_empty() {
        None
    } else {
        Some(moat::oci::source::prepare(&config.plugins.oci, &config.plugins.oci_store, config.plugins.defaults)?)
    };
    let loader = Loader::new(&dir, config.plugins.defaults)
        .with_extra(oci.as_ref().map(|o| o.loader_entries()).unwrap_or_default());
    let shutdown = CancellationToken::new();
    let watching = config.plugins.watch && !args.no_watch;

    if args.stdio {
        // stdio is the operator's own pipe: every caller is the local principal.
        start_reloads(&state, &writer, loader, oci, watching, &shutdown, hangup).await?;
        let service = MoatServer::new(Mcp::new(state, Transport::Local)).serve(rmcp::transport::stdio()).await?;
        service.waiting().await?;
        shutdown.cancel();
        return Ok(ExitCode::SUCCESS);
    }

    let listen = args.listen.unwrap_or(config.server.listen);
    let admin_listen = args.admin_listen.or(config.server.admin_listen);
    let (verifier, authorization) = if args.dev {
        if let Some(auth) = &config.auth {
            bail!(
                "--dev verifies tokens with its own key, but the configuration names the identity provider {}; drop --dev or the [auth] section",
                auth.issuer
            );
        }
        if !listen.ip().is_loopback() || admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
            bail!(
                "--dev listens on loopback addresses only (got {listen}); configure [auth] to serve beyond this machine"
            );
        }
        let key = DevKey::load_or_create(Path::new(DEV_DIR))?;
        (key.verifier()?, Authorization::Dev(DevAuthority::new(key)))
    } else {
        let Some(auth) = &config.auth else {
            bail!(
                "refusing to serve without authentication: add an [auth] section to the configuration, or use --dev (local development) or --stdio"
            );
        };
        let mut v = Verifier::new(&auth.issuer, &auth.audience, &auth.algorithms, auth.leeway_s)?;
        for f in &auth.keys.public_key_files {
            v.add_pem_file(f)?;
        }
        if let Some(uri) = &auth.keys.jwks_uri {
            v = v.with_jwks(uri).await;
        }
        (v, Authorization::Servers(auth.authorization_servers.clone()))
    };
    let dev = match &authorization {
        Authorization::Dev(authority) => Some(authority.clone()),
        Authorization::Servers(_) => None,
    };
    // Listen at once; `/readyz` answers 503 until the first load is done.
    let listener = http::bind(listen).await?;
    let admin = match admin_listen {
        Some(a) => Some(http::bind(a).await?),
        None => None,
    };
    let addr = listener.local_addr()?;
    let admin_addr = admin.as_ref().map(|a| a.local_addr()).transpose()?;
    let options = HttpOptions {
        public_url: config.server.public_url.clone(),
        allowed_origins: config.server.allowed_origins.clone(),
        max_body_bytes: usize::try_from(config.server.max_body_bytes).unwrap_or(usize::MAX),
        authorization,
        listen: Some(addr),
        sessions: fleet.as_ref().map(|f| f.sessions.clone()),
    };
    keys.spawn_refresh(shutdown.clone());
    let verifier = Arc::new(verifier);
    verifier.spawn_refresh();
    let mcp = Mcp::with_keys(state.clone(), Transport::Http, keys);
    let streams = CancellationToken::new();
    let app = http::app(mcp.clone(), verifier, options, streams.clone());
    let server = tokio::spawn(http::serve(mcp, app, listener, streams, shutdown.clone()));
    println!(
        "moat: listening on http://{addr}; loading plugins from {} (/readyz answers 503 until done)",
        dir.display()
    );
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let (reloads, sources) = start_reloads(&state, &writer, loader, oci, watching, &shutdown, hangup).await?;
    if let Some(f) = &fleet {
        f.replicas.name(format!("{}:{}", host_name(), addr.port()));
        let served_state = state.clone();
        f.replicas.spawn_publisher(move || http::served(&served_state), state.served(), shutdown.clone());
        // Listeners hear of a swap once the other replicas serve the same
        // versions (or after SETTLE_LIMIT), so a client that lists again on
        // list_changed sees the new list on whichever replica answers.
        let (replicas, weak) = (f.replicas.clone(), Arc::downgrade(&state));
        state.settle_before_telling(Arc::new(move || {
            let (replicas, weak) = (replicas.clone(), weak.clone());
            Box::pin(async move {
                if let Some(state) = weak.upgrade() {
                    let (digest, _) = http::served(&state);
                    replicas.settled(&digest, SETTLE_LIMIT).await;
                }
            })
        }));
        println!("moat: fleet replica {} (Redis keys under `{}:`)", f.replicas.me(), config.fleet.redis_prefix);
    }
    if let Some(listener) = admin {
        let app = http::admin_app(state.clone(), reloads, sources, fleet.clone());
        tokio::spawn(http::serve_admin(listener, app, shutdown.clone()));
    }
    let (loaded, first_tool) = {
        let snapshot = state.snapshot();
        // The ready command calls a tool that needs no arguments.
        let first_tool = snapshot
            .registry
            .tools()
            .find(|t| t.item.input_schema.get("required").and_then(|r| r.as_array()).is_none_or(|r| r.is_empty()))
            .map(|t| t.item.name.clone());
        (snapshot.registry.plugins().len(), first_tool)
    };
    let url = format!("http://{addr}/mcp");
    println!("moat: serving MCP at {url} ({loaded} plugins from {})", dir.display());
    if let Some(a) = admin_addr {
        println!("moat: admin (/metrics, /readyz?verbose) at http://{a}");
    }
    if let Some(authority) = &dev {
        println!(
            "moat: OAuth clients can sign in with no token: this server is its own development authorization server"
        );
        let token =
            authority.key().mint("dev", DEV_SCOPES, Duration::from_secs(24 * 3600)).map_err(anyhow::Error::msg)?;
        println!("moat: dev token (every scope, 24h; mint more with `moat token --dev`):\n{token}");
        if let Some(tool) = &first_tool {
            println!("moat: try it:\n{}", ready_command(&url, &token, tool));
        }
    }
    server.await.context("the HTTP server task failed")??;
    Ok(ExitCode::SUCCESS)
}

/// The first load (plugins load concurrently), then the reload task and
/// `SIGHUP`; the server counts as ready from here on.
async fn start_reloads(
    state: &Shared,
    writer: &Writer,
    mut loader: Loader,
    oci: Option<Prepared>,
    watching: bool,
    shutdown: &CancellationToken,
    hangup: tokio::signal::unix::Signal,
) -> Result<(Reloads, Sources)> {
    // A source with no verified version stored is checked before the first
    // load, so a first start serves what the registry has.
    let mut starting = oci.map(|p| Sources::prepare_start(p, writer.runtime.clone())).transpose()?;
    if let Some(s) = &mut starting {
        s.first_pulls(FIRST_PULL_LIMIT).await;
    }
    watch::reload(writer, &mut loader, Trigger::Start).await?;
    let reloads = watch::spawn(writer.clone(), loader, watching, shutdown.clone())?;
    state.set_ready();
    let sources = match starting {
        None => Sources::default(),
        Some(starting) => {
            let r = reloads.clone();
            let on_change: OnChange = Arc::new(move || {
                let r = r.clone();
                Box::pin(async move {
                    let _ = r.rescan(Trigger::Registry).await;
                })
            });
            starting.start(on_change, shutdown.clone())
        }
    };
    tokio::spawn(reload_on_hangup(hangup, reloads.clone(), sources.clone()));
    Ok((reloads, sources))
}

/// This machine's name (a Kubernetes pod's name), for the fleet's view.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "moat".into())
}

/// A curl command that calls `tool` with no arguments (2026-07-28, stateless).
fn ready_command(url: &str, token: &str, tool: &str) -> String {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        }}
    });
    format!(
        "curl -sS {url} -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \
         -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
         -H 'Mcp-Method: tools/call' -H 'Mcp-Name: {tool}' -d '{body}'"
    )
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing calls in flight");
    shutdown.cancel();
}

/// `SIGHUP`: rescan the plugins directory.
async fn reload_on_hangup(mut hangup: tokio::signal::unix::Signal, reloads: Reloads, sources: Sources) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: rescanning the plugins directory and checking the registry sources");
        sources.nudge();
        reloads.nudge(Trigger::Signal);
    }
}

/// `moat reload`: ask a running server to rescan, through its admin listener
/// (and print what happened) or by `SIGHUP` to its PID.
pub async fn reload(admin: Option<String>, config: Option<&Path>, pid: Option<i32>) -> Result<ExitCode> {
    if let Some(pid) = pid {
        let target = rustix::process::Pid::from_raw(pid).with_context(|| format!("`{pid}` is not a process ID"))?;
        rustix::process::kill_process(target, rustix::process::Signal::HUP)
            .with_context(|| format!("cannot signal process {pid}"))?;
        println!("moat: sent SIGHUP to {pid}; the server rescans its plugins directory");
        return Ok(ExitCode::SUCCESS);
    }
    let admin = match admin {
        Some(a) => a,
        None => Config::load(config)?.server.admin_listen.map(|a| a.to_string()).context(
            "moat reload needs the server's admin listener (--admin ADDR, or [server] admin_listen in --config) or its PID (--pid)",
        )?,
    };
    let base = if admin.contains("://") { admin } else { format!("http://{admin}") };
    let url = format!("{}/reload", base.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let report: serde_json::Value =
        response.json().await.with_context(|| format!("{url} answered {status} without a JSON report"))?;
    if !status.is_success() {
        bail!("{url} answered {status}: {}", report["error"].as_str().unwrap_or("no reason given"));
    }
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    for l in list("loaded") {
        let verb = if l["replaced"].as_bool() == Some(true) { "replaced" } else { "loaded" };
        println!(
            "{verb:<8} {}  ({}, sha256 {}, {} ms)",
            l["file"].as_str().unwrap_or_default(),
            l["how"].as_str().unwrap_or_default(),
            &l["sha256"].as_str().unwrap_or_default().get(..12).unwrap_or_default(),
            l["took_ms"].as_f64().unwrap_or_default().round()
        );
    }
    for name in list("removed") {
        println!("removed  {}", name.as_str().unwrap_or_default());
    }
    let failures = list("failures");
    for f in &failures {
        let serving = match f["serving"].as_str() {
            Some(h) => format!(" (the previous version, sha256 {}, keeps serving)", h.get(..12).unwrap_or(h)),
            None => String::new(),
        };
        println!(
            "error    {}: {}{serving}",
            f["file"].as_str().unwrap_or_default(),
            f["error"].as_str().unwrap_or_default()
        );
    }
    println!("moat: {} plugins serving, {} failed", report["serving"], failures.len());
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
