//! The `moat` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use moat::config::{Config, DirGrant, Limits, PluginSettings, PluginsConfig};
use moat::registry::Registry;
use moat::runtime::{CallContext, CallError, EgressMetrics, LoadedPlugin, Runtime, RuntimeOptions, cache};

mod publish;
mod serve;
mod toolchain;

#[derive(Parser)]
#[command(name = "moat", version, about = "MCP host that runs every tool as a sandboxed WebAssembly component")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over streamable HTTP at /mcp (or over stdio with --stdio).
    Serve {
        /// Configuration file (default: built-in defaults plus MOAT_* variables).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:8000 (port 0 picks a free one).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Plugins directory.
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// Admin listener for /metrics and verbose /readyz (off unless set).
        #[arg(long)]
        admin_listen: Option<std::net::SocketAddr>,
        /// Local development: verify tokens against a dev key kept in .moat/; loopback only.
        #[arg(long, conflicts_with = "stdio")]
        dev: bool,
        /// Serve MCP over stdin/stdout instead of HTTP (local use; no auth).
        #[arg(long)]
        stdio: bool,
        /// Do not watch the plugins directory (SIGHUP and `moat reload` still rescan it).
        #[arg(long)]
        no_watch: bool,
    },
    /// Make a running server rescan its plugins directory now and report what loaded.
    Reload {
        /// The server's admin listener (default: `[server] admin_listen` of the configuration).
        #[arg(long, value_name = "ADDR")]
        admin: Option<String>,
        /// Configuration file, to find the admin listener.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Send SIGHUP to this process instead (no report).
        #[arg(long, conflicts_with = "admin")]
        pid: Option<i32>,
    },
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
    /// Print a plugin's WIT version, tools, resources, prompts and imports.
    Inspect {
        /// The plugin component.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The permissions it requests (default: FILE.requested.toml, as `moat pull` writes, if it exists).
        #[arg(long, value_name = "TOML")]
        requested: Option<PathBuf>,
        /// The operator's sidecar granting them (default: FILE.toml if it exists).
        #[arg(long, value_name = "TOML")]
        sidecar: Option<PathBuf>,
    },
    /// Run one tool of a plugin locally, in the sandbox, without HTTP.
    Call {
        /// The plugin component.
        file: PathBuf,
        /// The tool to call.
        tool: String,
        /// Arguments, a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        /// Grant a directory: HOST[:GUEST][:ro|rw] (read-only unless `rw`).
        #[arg(long = "dir", value_name = "HOST[:GUEST][:ro|rw]")]
        dirs: Vec<String>,
        /// Pass a host environment variable by name.
        #[arg(long = "env", value_name = "NAME")]
        envs: Vec<String>,
        /// Grant outbound HTTP to an origin, e.g. https://api.github.com (the sidecar grammar).
        #[arg(long = "http", value_name = "ORIGIN")]
        http: Vec<String>,
        /// Execution deadline in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Memory cap in MiB.
        #[arg(long)]
        memory_mb: Option<u64>,
    },
    /// Build a Python (.py) or TypeScript (.ts, .js) plugin into a component,
    /// with the pinned toolchain (installed on first use), then load it once:
    /// its catalogue is checked and the compiled component cached.
    Build {
        /// The plugin's module.
        source: PathBuf,
        /// The component to write (default: the module's name with .wasm, beside it).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Python: another folder of modules, searched before the source's own.
        #[arg(long = "path", value_name = "DIR")]
        paths: Vec<PathBuf>,
        /// Skip loading the component after the build.
        #[arg(long)]
        no_check: bool,
    },
    /// Compile components into the artifact cache ahead of time (image builds,
    /// deploy steps), so that a start or a reload finds them compiled.
    Compile {
        /// The plugin components.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Configuration file: its cache directory and pool (default: the user cache).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a signing key pair: PREFIX.key (private, mode 0600) and PREFIX.pub
    /// (ECDSA P-256 PEM; cosign verifies with it too).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Publish a plugin to an OCI registry (CNCF wasm artifact layout). The
    /// sidecar beside it (or --permissions) goes along as the permissions it
    /// requests. Registries on localhost/127.0.0.1 are spoken to over HTTP,
    /// all others over HTTPS. Credentials: MOAT_REGISTRY_USERNAME and
    /// MOAT_REGISTRY_PASSWORD, else ~/.docker/config.json.
    Push {
        /// The plugin component.
        file: PathBuf,
        /// Where: registry/repository:tag.
        reference: String,
        /// Sign the pushed digest with this private key.
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        /// The permissions the plugin requests (a sidecar; default: FILE.toml if it exists).
        #[arg(long, value_name = "TOML")]
        permissions: Option<PathBuf>,
    },
    /// Sign the digest a reference names now (cosign's simple-signing format,
    /// stored under the sha256-<digest>.sig tag).
    Sign {
        /// registry/repository:tag or registry/repository@sha256:<digest>.
        reference: String,
        /// The private key (PEM, as `moat keygen` writes).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Fetch a plugin from a registry, verified: tag → digest → signature →
    /// layer by digest → checked → written.
    Pull {
        /// registry/repository:tag or registry/repository@sha256:<digest>.
        reference: String,
        /// A public key the signature must verify with (repeatable: any one).
        #[arg(long = "verify-key", value_name = "PUB")]
        verify_keys: Vec<PathBuf>,
        /// Accept an unsigned plugin (never do this for code you did not build).
        #[arg(long)]
        insecure_unsigned: bool,
        /// The component file to write.
        #[arg(long, value_name = "FILE.wasm")]
        out: PathBuf,
        /// Refuse a component layer larger than this.
        #[arg(long, default_value_t = moat::oci::DEFAULT_MAX_COMPONENT_MB)]
        max_size_mb: u64,
    },
    /// Validate the configuration and every plugin; exit non-zero naming each bad file.
    Check {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Plugins directory (default: from the configuration, else `plugins`).
        #[arg(long)]
        plugins: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

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

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve { config, listen, plugins, admin_listen, dev, stdio, no_watch } => {
            serve::run(serve::Args { config, listen, plugins, admin_listen, dev, stdio, no_watch }).await
        }
        Command::Reload { admin, config, pid } => serve::reload(admin, config.as_deref(), pid).await,
        Command::Token { dev, scope, sub, ttl } => token(dev, &scope, &sub, &ttl),
        Command::Inspect { file, json, requested, sidecar } => {
            let requested = requested.or_else(|| Some(file.with_extension("requested.toml")).filter(|p| p.exists()));
            let sidecar = sidecar.or_else(|| Some(file.with_extension("toml")).filter(|p| p.exists()));
            inspect(&file, json, requested.as_deref(), sidecar.as_deref()).await
        }
        Command::Call { file, tool, arguments, dirs, envs, http, timeout_ms, memory_mb } => {
            let settings = call_settings(&dirs, envs, &http, timeout_ms, memory_mb)?;
            call(&file, &tool, &arguments, settings).await
        }
        Command::Check { config, plugins } => check(config.as_deref(), plugins).await,
        Command::Build { source, out, paths, no_check } => {
            let out = out.unwrap_or_else(|| source.with_extension("wasm"));
            build(toolchain::Build { source, out, paths }, no_check).await
        }
        Command::Compile { files, config } => compile(&files, config.as_deref()).await,
        Command::Keygen { out } => publish::keygen(&out),
        Command::Push { file, reference, sign_key, permissions } => {
            publish::push(&file, &reference, sign_key.as_deref(), permissions.as_deref()).await
        }
        Command::Sign { reference, key } => publish::sign(&reference, &key).await,
        Command::Pull { reference, verify_keys, insecure_unsigned, out, max_size_mb } => {
            publish::pull(&reference, &verify_keys, insecure_unsigned, &out, max_size_mb).await
        }
    }
}

fn token(dev: bool, scope: &str, sub: &str, ttl: &str) -> Result<ExitCode> {
    if !dev {
        bail!("only dev tokens can be minted: pass --dev (production tokens come from your identity provider)");
    }
    let ttl = moat::auth::parse_ttl(ttl).map_err(anyhow::Error::msg)?;
    let key = moat::auth::DevKey::load_or_create(Path::new(serve::DEV_DIR))?;
    println!("{}", key.mint(sub, scope, ttl).map_err(anyhow::Error::msg)?);
    Ok(ExitCode::SUCCESS)
}

fn runtime(plugins: &PluginsConfig, metrics: Option<Arc<dyn EgressMetrics>>) -> Result<Runtime> {
    let cache_dir = plugins.cache_dir.clone().or_else(cache::default_dir);
    Runtime::new(RuntimeOptions { cache_dir, metrics, pool: plugins.pool }).map_err(anyhow::Error::msg)
}

async fn load_one(runtime: &Runtime, file: &Path, settings: PluginSettings) -> Result<LoadedPlugin> {
    runtime.load(file, settings).await.with_context(|| format!("{} cannot be loaded", file.display()))
}

/// What a plugin requests, what its sidecar grants, and the difference.
fn permissions(requested: Option<&Path>, sidecar: Option<&Path>) -> Result<Option<Value>> {
    let Some(requested_path) = requested else { return Ok(None) };
    let text =
        std::fs::read_to_string(requested_path).with_context(|| format!("cannot read {}", requested_path.display()))?;
    let requested = moat::config::RequestedGrants::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", requested_path.display()))?;
    let granted = match sidecar {
        None => PluginSettings::default(),
        Some(p) => {
            let t = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            PluginSettings::parse_sidecar(&t, p, moat::config::Limits::default())?
        }
    };
    Ok(Some(json!({
        "requested_file": requested_path.display().to_string(),
        "sidecar": sidecar.map(|p| p.display().to_string()),
        "requested": text,
        "not_granted": requested.not_granted(&granted),
        "not_requested": requested.not_requested(&granted),
    })))
}

async fn inspect(file: &Path, as_json: bool, requested: Option<&Path>, sidecar: Option<&Path>) -> Result<ExitCode> {
    let runtime = runtime(&Config::default_plugins(), None)?;
    let plugin = load_one(&runtime, file, PluginSettings::default()).await?;
    let permissions = permissions(requested, sidecar)?;
    let tools: Vec<Value> = plugin
        .tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "title": t.title,
                "description": t.description,
                "inputSchema": t.input_schema,
                "outputSchema": t.output_schema,
                "annotations": t.annotations,
            })
        })
        .collect();
    let report = json!({
        "file": file.display().to_string(),
        "sha256": plugin.hash,
        "wit": format!("moat:plugin@{}", plugin.wit_version),
        "tools": tools,
        "resources": plugin.resources,
        "resourceTemplates": plugin.resource_templates,
        "prompts": plugin.prompts,
        "imports": plugin.imports,
        "permissions": permissions,
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}  moat:plugin@{}  sha256:{}", file.display(), plugin.wit_version, &plugin.hash[..16]);
    println!("\ntools:");
    for t in &plugin.tools {
        let a = t.annotations;
        let flags: Vec<&str> = [
            (a.read_only, "read-only"),
            (a.destructive, "destructive"),
            (a.idempotent, "idempotent"),
            (a.open_world, "open-world"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        println!(
            "  {}{}  [{}]",
            t.name,
            t.title.as_deref().map(|s| format!(" — {s}")).unwrap_or_default(),
            flags.join(", ")
        );
        println!("    {}", t.description);
        println!("    input:  {}", t.input_schema);
        if let Some(o) = &t.output_schema {
            println!("    output: {o}");
        }
    }
    if !plugin.resources.is_empty() || !plugin.resource_templates.is_empty() {
        println!("\nresources:");
        for r in &plugin.resources {
            println!(
                "  {} ({})  {}",
                r.uri,
                r.mime_type.as_deref().unwrap_or("-"),
                r.description.as_deref().unwrap_or("")
            );
        }
        for r in &plugin.resource_templates {
            println!("  {} (template)  {}", r.uri_template, r.description.as_deref().unwrap_or(""));
        }
    }
    if !plugin.prompts.is_empty() {
        println!("\nprompts:");
        for p in &plugin.prompts {
            let args: Vec<String> =
                p.arguments.iter().map(|a| format!("{}{}", a.name, if a.required { "" } else { "?" })).collect();
            println!("  {}({})  {}", p.name, args.join(", "), p.description.as_deref().unwrap_or(""));
        }
    }
    println!("\nimports:");
    for i in &plugin.imports {
        println!("  {i}");
    }
    if let Some(p) = &permissions {
        let list = |k: &str| p[k].as_array().cloned().unwrap_or_default();
        println!("\npermissions requested ({}):", p["requested_file"].as_str().unwrap_or_default());
        for line in p["requested"].as_str().unwrap_or_default().lines() {
            println!("  {line}");
        }
        let granted_by = p["sidecar"].as_str().map(str::to_owned).unwrap_or_else(|| "no sidecar: nothing".into());
        println!("granted by {granted_by}");
        println!("requested but not granted:{}", if list("not_granted").is_empty() { " none" } else { "" });
        for l in list("not_granted") {
            println!("  - {}", l.as_str().unwrap_or_default());
        }
        println!("granted but not requested:{}", if list("not_requested").is_empty() { " none" } else { "" });
        for l in list("not_requested") {
            println!("  + {}", l.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
async fn call(file: &Path, tool: &str, arguments: &str, settings: PluginSettings) -> Result<ExitCode> {
    let arguments: Value = serde_json::from_str(arguments).context("the arguments are not valid JSON")?;
    if !arguments.is_object() {
        bail!("the arguments must be a JSON object");
    }
    let runtime = runtime(&Config::default_plugins(), None)?;
    let plugin = load_one(&runtime, file, settings).await?;
    // The plugin's log messages (and the host's notes, such as why a request
    // was refused) go to stderr as they come.
    let (events, mut rx) = tokio::sync::mpsc::channel(moat::runtime::EVENT_QUEUE);
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if let moat::runtime::types::PluginEvent::Log { level, message } = event {
                eprintln!("{level:?}: {}", message.escape_debug());
            }
        }
    });
    let ctx = CallContext { events: Some(events), ..Default::default() };
    let result = runtime.call_tool(&plugin, tool, &arguments, &ctx).await;
    drop(ctx);
    let _ = printer.await;
    match result {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&moat::mcp::convert::tool_result(out))?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (CallError::InvalidArguments(_) | CallError::NotFound(_))) => bail!("{e}"),
        Err(e) => {
            eprintln!("error: tool `{tool}` failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The grants and limits of `moat call`, from its flags.
fn call_settings(
    dirs: &[String],
    env: Vec<String>,
    http: &[String],
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
) -> Result<PluginSettings> {
    let mut limits = Limits::default();
    if let Some(ms) = timeout_ms {
        limits.timeout_ms = ms;
    }
    if let Some(mb) = memory_mb {
        if mb == 0 || mb > moat::config::MAX_MEMORY_MB {
            bail!("--memory-mb must be between 1 and {}", moat::config::MAX_MEMORY_MB);
        }
        limits.memory_bytes = mb << 20;
    }
    let mut settings = PluginSettings::with_limits(limits);
    for spec in dirs {
        settings.dirs.push(DirGrant::parse_cli(spec).map_err(anyhow::Error::msg)?);
    }
    settings.env = env;
    let mut policy = moat::egress::HttpPolicy::default();
    for origin in http {
        policy.grants.push(origin.parse().map_err(|e| anyhow::anyhow!("--http {e}"))?);
    }
    settings.http = Arc::new(policy);
    Ok(settings)
}

/// What `moat check` points out about a plugin's grants: wildcards that open
/// every host, and secret headers whose variable is not set here.
fn grant_warnings(settings: &PluginSettings) -> Vec<String> {
    let mut out = Vec::new();
    for g in settings.http.grants.iter().filter(|g| g.is_wildcard()) {
        out.push(format!(
            "[grants] http `{g}` lets the plugin reach every public host on that scheme; name the origins it needs"
        ));
    }
    for h in &settings.http.headers {
        if std::env::var_os(&h.value_env).is_none() {
            out.push(format!(
                "the secret header {} for {} comes from ${}, which is not set here: requests there will be refused",
                h.header, h.origin, h.value_env
            ));
        }
    }
    out
}

async fn check(config: Option<&Path>, plugins: Option<PathBuf>) -> Result<ExitCode> {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let dir = plugins.unwrap_or_else(|| config.plugins.dir.clone());
    // Registry sources: their keys, credentials and sidecars (the registry is
    // not contacted).
    match moat::oci::source::specs(&config.plugins.oci, config.plugins.defaults) {
        Ok(specs) => {
            for s in specs {
                println!("ok     [[plugins.oci]] {} ({})", s.reference, s.name);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    // Fleet: the state key file is read, the Redis URL parsed (not contacted).
    if let Some(path) = &config.fleet.state_key_file {
        match moat::fleet::keys::StateKeys::from_file(path, moat::mcp::STATE_TTL) {
            Ok(keys) => println!("ok     [fleet] state_key_file {} (sealing key {})", path.display(), keys.active_id()),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    if config.fleet.redis_url.is_some() {
        match moat::fleet::Redis::connect(&config.fleet) {
            Ok(_) => println!("ok     [fleet] redis_url (not contacted)"),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let runtime = runtime(&config.plugins, None)?;
    let registry = Registry::load_dir(&runtime, &dir, config.plugins.defaults).await?;
    for p in registry.plugins() {
        println!(
            "ok     {}  ({} tools, {} resources, {} prompts)",
            p.path.display(),
            p.tools.len(),
            p.resources.len() + p.resource_templates.len(),
            p.prompts.len()
        );
    }
    for p in registry.plugins() {
        for warning in grant_warnings(&p.settings) {
            println!("warn   {}: {warning}", p.path.display());
        }
    }
    for s in registry.orphan_sidecars() {
        println!("warn   {}: sidecar without a component beside it", s.display());
    }
    for f in registry.failures() {
        println!("error  {}: {}", f.path.display(), f.error);
    }
    if registry.failures().is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} of {} plugins failed to load",
            registry.failures().len(),
            registry.failures().len() + registry.plugins().len()
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn compile(files: &[PathBuf], config: Option<&Path>) -> Result<ExitCode> {
    let config = Config::load(config)?;
    let runtime = runtime(&config.plugins, None)?;
    let Some(dir) = runtime.cache_dir().map(Path::to_owned) else {
        bail!("no usable cache directory: set [plugins] cache_dir, XDG_CACHE_HOME or HOME");
    };
    let mut failed = 0;
    for file in files {
        let started = std::time::Instant::now();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                println!("error  {}: cannot be read: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        match runtime.compile(bytes).await {
            Ok((_, origin, hash)) => {
                let how = origin_label(origin);
                println!(
                    "{how} {}  (sha256 {}, {:.1} s)",
                    file.display(),
                    &hash[..12],
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                println!("error  {}: {e}", file.display());
                failed += 1;
            }
        }
    }
    eprintln!("cache: {}", dir.display());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn build(b: toolchain::Build, no_check: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let size = toolchain::build(&b)?;
    println!("built    {} ({:.1} MB in {:.1} s)", b.out.display(), size as f64 / 1e6, started.elapsed().as_secs_f64());
    if no_check {
        return Ok(ExitCode::SUCCESS);
    }
    let started = std::time::Instant::now();
    let runtime = runtime(&Config::default_plugins(), None)?;
    let plugin = load_one(&runtime, &b.out, PluginSettings::default()).await?;
    let how = origin_label(plugin.origin);
    println!("{how} {} ({:.1} s)", b.out.display(), started.elapsed().as_secs_f64());
    let names = |v: Vec<&str>| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
    println!("tools:     {}", names(plugin.tools.iter().map(|t| t.name.as_str()).collect()));
    println!(
        "resources: {}",
        names(
            plugin
                .resources
                .iter()
                .map(|r| r.uri.as_str())
                .chain(plugin.resource_templates.iter().map(|t| t.uri_template.as_str()))
                .collect()
        )
    );
    println!("prompts:   {}", names(plugin.prompts.iter().map(|p| p.name.as_str()).collect()));
    Ok(ExitCode::SUCCESS)
}

fn origin_label(origin: moat::runtime::Origin) -> &'static str {
    match origin {
        moat::runtime::Origin::Cache => "cached  ",
        moat::runtime::Origin::Compiled => "compiled",
    }
}
