//! `moat build`: a Python or TypeScript plugin into a component.
//!
//! The toolchains are pinned (componentize-py for Python, jco for TypeScript
//! and JavaScript) and installed on first use from PyPI and npm into a folder of
//! their own (`$MOAT_TOOLCHAIN_DIR`, else the user cache), each into a temporary
//! folder renamed into place, so an interrupted install never looks finished.
//! The WIT and the language SDKs are compiled into this binary, so a build uses
//! exactly the world this host serves. The component is written beside its
//! destination and renamed over it: a watched plugins folder never sees half a
//! file.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::Digest as _;

/// componentize-py, from PyPI.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// jco, from npm.
pub const JCO: &str = "1.35.0";

/// The world every plugin targets.
const WIT: &str = include_str!("../../wit/v0.1.2/plugin.wit");
const WORLD: &str = "plugin";

/// The Python SDK: the `moat` package, bundled into each component.
const PYTHON_SDK: &[(&str, &str)] = &[
    ("moat/__init__.py", include_str!("../../sdk/python/moat/__init__.py")),
    ("moat/_schema.py", include_str!("../../sdk/python/moat/_schema.py")),
    ("moat/_world.py", include_str!("../../sdk/python/moat/_world.py")),
];

/// The TypeScript SDK: the `moat` module, bundled into each component
/// (`src/testing.ts`, the native stand-in host, stays out).
const JS_SDK: &[(&str, &str)] = &[
    ("package.json", include_str!("../../sdk/js/package.json")),
    ("bundle.config.mjs", include_str!("../../sdk/js/bundle.config.mjs")),
    ("src/index.ts", include_str!("../../sdk/js/src/index.ts")),
    ("src/schema.ts", include_str!("../../sdk/js/src/schema.ts")),
    ("src/registry.ts", include_str!("../../sdk/js/src/registry.ts")),
    ("src/host.ts", include_str!("../../sdk/js/src/host.ts")),
    ("src/content.ts", include_str!("../../sdk/js/src/content.ts")),
    ("src/errors.ts", include_str!("../../sdk/js/src/errors.ts")),
    ("src/uri-template.ts", include_str!("../../sdk/js/src/uri-template.ts")),
    ("src/random.ts", include_str!("../../sdk/js/src/random.ts")),
];

/// jco's install: `package.json` and its lock, so every dependency is pinned.
const JS_TOOLCHAIN_PACKAGE: &str = include_str!("../../sdk/js/toolchain/package.json");
const JS_TOOLCHAIN_LOCK: &str = include_str!("../../sdk/js/toolchain/package-lock.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    Python,
    TypeScript,
}

impl Language {
    fn of(source: &Path) -> Result<Self> {
        match source.extension().and_then(|e| e.to_str()) {
            Some("py") => Ok(Language::Python),
            Some("ts" | "js" | "mjs" | "mts") => Ok(Language::TypeScript),
            _ => bail!(
                "{}: moat build takes a Python module (.py) or a TypeScript or JavaScript module (.ts, .js); Rust plugins build with `cargo build --release --target wasm32-wasip2`",
                source.display()
            ),
        }
    }
}

/// What `moat build` was asked.
pub struct Build {
    pub source: PathBuf,
    pub out: PathBuf,
    /// Python only: more module folders, searched before the source's own.
    pub paths: Vec<PathBuf>,
}

/// Where toolchains are installed: `$MOAT_TOOLCHAIN_DIR`, else
/// `$XDG_CACHE_HOME/moat/toolchains`, else `~/.cache/moat/toolchains`.
fn toolchain_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("MOAT_TOOLCHAIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let base = moat::runtime::cache::user_cache()
        .context("no folder for toolchains: set MOAT_TOOLCHAIN_DIR, XDG_CACHE_HOME or HOME")?;
    Ok(base.join("toolchains"))
}

/// Runs `cmd`, failing with its output when it fails.
fn run(what: &str, cmd: &mut Command) -> Result<()> {
    // The toolchains are Rust programs: their own backtraces would bury the
    // author's error.
    cmd.env("RUST_BACKTRACE", "0").env("RUST_LIB_BACKTRACE", "0");
    let out = cmd.output().with_context(|| format!("cannot run {what} ({:?})", cmd.get_program()))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        bail!("{what} failed ({}):\n{}", out.status, text.trim_end());
    }
    Ok(())
}

/// Installs into `home` unless it is there: `install` fills a temporary folder
/// beside it, which is renamed into place only when complete.
fn install_once(home: &Path, what: &str, install: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if home.is_dir() {
        return Ok(());
    }
    let parent = home.parent().expect("toolchain folders have a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = tempfile::Builder::new().prefix(".installing-").tempdir_in(parent)?;
    eprintln!("installing {what} into {} (once)", home.display());
    install(tmp.path())?;
    match std::fs::rename(tmp.path(), home) {
        Ok(()) => Ok(()),
        // Another build installed it meanwhile.
        Err(_) if home.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot move the install to {}", home.display())),
    }
}

/// componentize-py, installed: the folder holding its package.
fn componentize_py() -> Result<PathBuf> {
    let home = toolchain_dir()?.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    install_once(&home, &format!("componentize-py {COMPONENTIZE_PY}"), |dir| {
        run(
            "pip install componentize-py",
            Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", "--target"])
                .arg(dir)
                .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
        )
    })?;
    Ok(home)
}

/// jco (and TypeScript, for type checks), installed from the lock: the folder
/// holding their `node_modules`.
pub fn jco() -> Result<PathBuf> {
    // Named by the lock too: a changed lock is a new install beside the old.
    let lock = hex::encode(&sha2::Sha256::digest(JS_TOOLCHAIN_LOCK.as_bytes())[..4]);
    let home = toolchain_dir()?.join(format!("jco-{JCO}-{lock}"));
    install_once(&home, &format!("jco {JCO}"), |dir| {
        std::fs::write(dir.join("package.json"), JS_TOOLCHAIN_PACKAGE)?;
        std::fs::write(dir.join("package-lock.json"), JS_TOOLCHAIN_LOCK)?;
        run(
            "npm ci (jco)",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts"])
                .current_dir(dir),
        )
    })?;
    Ok(home)
}

/// Writes `files` (relative path, text) under `dir`.
fn write_tree(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("files have a parent"))?;
        std::fs::write(&path, text)?;
    }
    Ok(())
}

/// A Python module name: what `import` accepts.
fn module_name(source: &Path) -> Result<String> {
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let ok = !stem.is_empty()
        && !stem.starts_with(|c: char| c.is_ascii_digit())
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok || stem == "moat" || stem == "moat_entry" {
        bail!("{}: the file name must be a Python module name other than `moat`", source.display());
    }
    Ok(stem.to_owned())
}

/// Builds the component; returns its size in bytes.
pub fn build(b: &Build) -> Result<u64> {
    let language = Language::of(&b.source)?;
    let source = std::fs::canonicalize(&b.source).with_context(|| format!("{} cannot be read", b.source.display()))?;
    if !b.paths.is_empty() && language != Language::Python {
        bail!("--path is for Python module folders; a TypeScript build bundles what the source imports");
    }
    let work = tempfile::Builder::new().prefix("moat-build-").tempdir()?;
    let wit = work.path().join("wit");
    write_tree(&wit, &[("plugin.wit", WIT)])?;
    let out_dir = match b.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    // Built beside the destination, renamed over it when complete.
    let staged = tempfile::Builder::new().prefix(".moat-build-").suffix(".wasm").tempfile_in(&out_dir)?;
    match language {
        Language::Python => {
            let home = componentize_py()?;
            let module = module_name(&source)?;
            let gen_dir = work.path().join("gen");
            let sdk = work.path().join("sdk");
            write_tree(&sdk, PYTHON_SDK)?;
            write_tree(
                &gen_dir,
                &[("moat_entry.py", &format!("import {module}\nfrom moat._world import Tools, Resources, Prompts\n"))],
            )?;
            let app_dir = source.parent().expect("a file has a parent");
            let mut cmd = Command::new("python3");
            cmd.arg("-c")
                .arg("import sys; sys.path.insert(0, sys.argv.pop(1)); from componentize_py import script; sys.exit(script())")
                .arg(&home)
                .arg("-d")
                .arg(&wit)
                .args(["-w", WORLD, "--quiet", "componentize", "-p"])
                .arg(&gen_dir);
            for p in &b.paths {
                cmd.arg("-p").arg(std::fs::canonicalize(p).with_context(|| format!("--path {}", p.display()))?);
            }
            cmd.arg("-p").arg(app_dir).arg("-p").arg(&sdk).arg("-o").arg(staged.path()).arg("moat_entry");
            run("componentize-py", &mut cmd)?;
        }
        Language::TypeScript => {
            let home = jco()?;
            let gen_dir = work.path().join("gen");
            write_tree(&gen_dir.join("node_modules/moat"), JS_SDK)?;
            let entry = gen_dir.join("entry.ts");
            let import = serde_json::to_string(&source.to_string_lossy()).expect("a string serialises");
            std::fs::write(
                &entry,
                format!("import {import};\nexport {{ tools, resources, prompts }} from \"moat\";\n"),
            )?;
            run(
                "jco componentize",
                Command::new(home.join("node_modules/.bin/jco"))
                    .arg("componentize")
                    .arg(&entry)
                    .arg("--wit")
                    .arg(&wit)
                    // QuickJS (a 2 MB component that compiles in seconds) with
                    // its synchronous runtime: the host has no component-model
                    // async. The SDK's bundler config resolves `moat` to its copy.
                    .args(["--world-name", WORLD, "--backend", "qjs", "--backend-qjs-disable-async"])
                    .args(["--bundle-config", "node_modules/moat/bundle.config.mjs", "--out"])
                    .arg(staged.path())
                    .current_dir(&gen_dir),
            )?;
        }
    }
    use std::os::unix::fs::PermissionsExt as _;
    staged.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    let size = std::fs::metadata(staged.path())?.len();
    if size == 0 {
        bail!("the toolchain wrote an empty component");
    }
    staged.persist(&b.out).with_context(|| format!("cannot write {}", b.out.display()))?;
    Ok(size)
}
