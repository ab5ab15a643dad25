//! `cargo xtask demo | test | bench | bench-reload | bench-runtime | build-plugins`: everything a fresh
//! clone needs, installed and run from one place.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod debian;
mod deploy;
mod interop;
mod languages;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args.split_first().map(|(c, r)| (c.as_str(), r)).unwrap_or(("help", &[]));
    match cmd {
        "build-plugins" => build_plugins().map(|_| ()),
        "test" => test(rest),
        "demo" => demo(),
        "bench-runtime" => bench_runtime(),
        "bench" => bench_http(rest),
        "bench-reload" => bench_reload(),
        "bench-fleet" => bench_fleet(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo            build everything and start a dev server (prints a token and a command)\n  \
                 test [ARGS]     build plugins, run every test, then the interop suite (ARGS go to cargo test)\n  \
                 bench           HTTP load on a release server: calls/s, p50/p99, CPU per call, and\n                  \
                 ratios to a native rmcp server with the same tool; `bench --against REV` runs\n                  \
                 the cases on this build and on revision REV instead, with ratios\n  \
                 bench-reload    hot reload: latency to the first call on a new build (from the folder and\n                  \
                 from a registry), calls/s while reloading, pull + verify vs a plain GET\n  \
                 bench-fleet     calls/s through nginx in front of 1 and 3 replicas sharing Redis, and the\n                  \
                 cost of a fleet-wide rate limit per call\n  \
                 bench-runtime   per-call and load-time benchmarks of the plugin runtime\n  \
                 build-plugins   build first-party and test plugins for {WASM_TARGET}"
            );
            if cmd == "help" { Ok(()) } else { bail!("unknown command `{cmd}`") }
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The directory holding the built `.wasm` files.
fn wasm_dir() -> PathBuf {
    target_dir().join(WASM_TARGET).join("release")
}

/// Adds the wasm target through rustup when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == WASM_TARGET) => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", WASM_TARGET])),
        Err(e) => bail!("rustup is needed to add the {WASM_TARGET} target: {e}"),
    }
}

/// Package names of the crates under `dir` (one crate per subdirectory).
fn crates_in(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let name = text
            .lines()
            .skip_while(|l| l.trim() != "[package]")
            .find_map(|l| l.trim().strip_prefix("name = ").map(|n| n.trim_matches('"').to_owned()))
            .with_context(|| format!("no package name in {}", manifest.display()))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Where the tests' servers keep compiled components (`XDG_CACHE_HOME`), shared
/// so that a Python or TypeScript component is compiled once, not per server.
fn test_cache_home() -> PathBuf {
    target_dir().join("moat-cache-home")
}

/// The `moat` binary as the tests build it (the same features, so `cargo test`
/// after it compiles nothing again).
fn host_binary() -> Result<PathBuf> {
    run(cargo().args(["test", "--workspace", "--exclude", "xtask", "--no-run"]))?;
    Ok(target_dir().join("debug/moat"))
}

/// Builds every first-party and test plugin once; returns the output directory.
fn build_plugins() -> Result<PathBuf> {
    check_prerequisites()?;
    ensure_wasm_target()?;
    let mut crates = crates_in(&root().join("plugins"))?;
    crates.extend(crates_in(&root().join("tests/plugins"))?);
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", WASM_TARGET]);
    for c in &crates {
        cmd.args(["-p", c]);
    }
    run(&mut cmd)?;
    let dir = wasm_dir();
    for c in &crates {
        let file = dir.join(format!("{c}.wasm"));
        if !file.is_file() {
            bail!("expected {} after the build", file.display());
        }
    }
    // Python and TypeScript plugins: `moat build`, so the host comes first.
    let moat = host_binary()?;
    let others = languages::build(&root(), &dir, &moat, &target_dir(), &test_cache_home())?;
    eprintln!("plugins built in {} ({} Rust, {} Python or TypeScript)", dir.display(), crates.len(), others.len());
    // The first-party plugins alone, in a folder `moat serve` can load as is.
    let served = target_dir().join("plugins");
    std::fs::create_dir_all(&served)?;
    for c in crates_in(&root().join("plugins"))? {
        std::fs::copy(dir.join(format!("{c}.wasm")), served.join(format!("{c}.wasm")))?;
    }
    for file in others.iter().filter(|f| f.starts_with(&dir) && is_first_party(f)) {
        std::fs::copy(file, served.join(file.file_name().expect("a file name")))?;
    }
    eprintln!("first-party plugins ready to serve: moat serve --dev --plugins {}", served.display());
    Ok(dir)
}

/// A component built from a folder under `plugins/`.
fn is_first_party(file: &Path) -> bool {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    root().join("plugins").join(stem).is_dir()
}

/// What building the plugins and `cargo xtask test` need beyond Rust, checked before the long build so
/// a missing tool is named at once with the command that installs it.
fn check_prerequisites() -> Result<()> {
    let works = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    if !works(Command::new("npm").arg("--version")) {
        missing.push("npm (Node.js), for the TypeScript plugins, the conformance suite and the TypeScript MCP SDK: apt-get install npm");
    }
    if !works(Command::new("python3").args(["-m", "venv", "--help"]))
        || !works(Command::new("python3").args(["-m", "pip", "--version"]))
    {
        missing.push("python3 with pip and venv, for the Python plugins and the Python MCP SDK: apt-get install python3 python3-pip python3-venv");
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!("building the plugins needs:\n  {}", missing.join("\n  "))
}

fn test(extra: &[String]) -> Result<()> {
    use std::io::{BufRead, BufReader};
    debian::ensure()?;
    let wasm = build_plugins()?;
    // The third-party clients are installed first: the fleet tests drive the
    // Python SDK from `cargo test`.
    let target = target_dir();
    let tools = interop::install(&target)?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--exclude", "xtask"])
        .env("MOAT_TEST_WASM_DIR", &wasm)
        .env("MOAT_TEST_PYTHON", &tools.python)
        .env("MOAT_TEST_CACHE_HOME", test_cache_home())
        .env("MOAT_TOOLCHAIN_DIR", target_dir().join("toolchains"))
        .args(extra);
    eprintln!("+ {cmd:?}");
    // Pass the output through, adding up every test binary's result line so the
    // run closes on one total rather than on the last (often empty) binary.
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().context("cannot run cargo test")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(word)
                    })
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
            ignored += count(" ignored");
        }
    }
    let status = child.wait()?;
    // Third-party clients and the conformance suite against a real server,
    // then the deployment files against their schemas.
    let interop = interop::run(&root(), &tools, &target.join("debug/moat"), &wasm)
        .and_then(|(p, f)| deploy::validate(&root(), &target).map(|(dp, df)| (p + dp, f + df)));
    match interop {
        Ok((p, f)) => {
            passed += p;
            failed += f;
        }
        Err(e) => {
            println!("interop ... FAILED: {e:#}");
            failed += 1;
        }
    }
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    if failed > 0 {
        bail!("{failed} interop tests failed");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

fn demo() -> Result<()> {
    let wasm = build_plugins()?;
    let here = std::env::current_dir()?;
    let plugins = root().join("target/demo/plugins");
    std::fs::create_dir_all(&plugins)?;
    for p in ["disk_usage", "cleanup"] {
        std::fs::copy(wasm.join(format!("{p}.wasm")), plugins.join(format!("{p}.wasm")))?;
    }
    // disk_usage sees this directory as `/`, read-only.
    std::fs::write(
        plugins.join("disk_usage.toml"),
        format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", here.display()),
    )?;
    eprintln!("\nStarting `moat serve --dev` with disk_usage and cleanup (Ctrl-C stops it).");
    eprintln!(
        "Mint more tokens from {} with: {} token --dev\n",
        here.display(),
        root().join("target/debug/moat").display()
    );
    run(Command::new(root().join("target/debug/moat"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(&plugins)
        .current_dir(&here))
}

/// Load against a release `moat serve`: both eras, concurrency 1/16/64, then
/// the same cases against the native baseline (`--example native_baseline`),
/// alternating, with ratios. With `--against REV`, the same cases against a
/// release build of that revision (built in a git worktree under `target/`)
/// instead, alternating, with ratios.
fn bench_http(args: &[String]) -> Result<()> {
    let wasm = build_plugins()?;
    let against = match args {
        [] => None,
        [flag, rev] if flag == "--against" => Some(build_revision(rev)?),
        _ => bail!("usage: cargo xtask bench [--against REV]"),
    };
    run(cargo().args(["build", "--release", "-p", "moat", "--bin", "moat"]))?;
    // Apart from the binary: an example brings in dev-dependencies, whose
    // features would otherwise change the `moat` under test.
    run(cargo().args(["build", "--release", "-p", "moat", "--example", "native_baseline"]))?;
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "moat", "--bench", "http"]).env("MOAT_TEST_WASM_DIR", &wasm);
    if let Some(bin) = against {
        cmd.env("MOAT_BENCH_AGAINST", bin);
    }
    run(&mut cmd)
}

/// A release `moat` built from git revision `rev`; returns the binary's path.
/// The worktree shares this checkout's target directory, so only what differs
/// is compiled; the binary is copied out before this build overwrites it.
fn build_revision(rev: &str) -> Result<PathBuf> {
    let out = Command::new("git").args(["rev-parse", "--short", rev]).current_dir(root()).output()?;
    if !out.status.success() {
        bail!("unknown git revision `{rev}`");
    }
    let short = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let base = root().join("target/bench-against");
    let tree = base.join(&short);
    if !tree.exists() {
        std::fs::create_dir_all(&base)?;
        run(Command::new("git").args(["worktree", "add", "--detach"]).arg(&tree).arg(&short).current_dir(root()))?;
    }
    let target = target_dir();
    run(Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "-p", "moat", "--bin", "moat"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&tree))?;
    let bin = base.join(format!("moat-{short}"));
    std::fs::copy(target.join("release/moat"), &bin)?;
    Ok(bin)
}

fn bench_reload() -> Result<()> {
    // Its last section reloads from a real registry.
    debian::ensure()?;
    let wasm = build_plugins()?;
    run(cargo().args(["build", "--release", "-p", "moat", "--bin", "moat"]))?;
    run(cargo().args(["bench", "-p", "moat", "--bench", "reload"]).env("MOAT_TEST_WASM_DIR", &wasm))
}

fn bench_fleet() -> Result<()> {
    // nginx and Redis from Debian, as the fleet tests use them.
    debian::ensure()?;
    let wasm = build_plugins()?;
    run(cargo().args(["build", "--release", "-p", "moat", "--bin", "moat"]))?;
    run(cargo().args(["bench", "-p", "moat", "--bench", "fleet"]).env("MOAT_TEST_WASM_DIR", &wasm))
}

fn bench_runtime() -> Result<()> {
    let wasm = build_plugins()?;
    run(cargo().args(["bench", "-p", "moat", "--bench", "runtime"]).env("MOAT_TEST_WASM_DIR", &wasm))
}
