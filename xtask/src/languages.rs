//! Plugins written in Python and TypeScript, built with `moat build` (which
//! installs its pinned toolchains under `target/toolchains`) into the same
//! folder as the Rust plugins.
//!
//! A plugin folder under `plugins/` or `tests/plugins/` without a `Cargo.toml`
//! holds `app.py` or `app.ts`; it builds to `<folder>.wasm`. A Python folder with
//! a `next/` folder also builds `<folder>_next.wasm` with `next/` searched first
//! (the hot-reload tests tell the two builds apart). A build is skipped when
//! nothing it reads changed since the last one (a stamp of their SHA-256 beside
//! the output).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// One component to build.
struct Job {
    source: PathBuf,
    out: PathBuf,
    paths: Vec<PathBuf>,
    /// Everything the output depends on besides the moat binary's code.
    inputs: Vec<PathBuf>,
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') || name == "node_modules" || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn jobs(root: &Path, wasm: &Path) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for parent in ["plugins", "tests/plugins"] {
        for entry in std::fs::read_dir(root.join(parent))? {
            let dir = entry?.path();
            if !dir.is_dir() || dir.join("Cargo.toml").exists() {
                continue;
            }
            let name = dir.file_name().and_then(|n| n.to_str()).context("plugin folder name")?.to_owned();
            let (source, sdk) = if dir.join("app.py").is_file() {
                (dir.join("app.py"), "sdk/python/moat")
            } else if dir.join("app.ts").is_file() {
                (dir.join("app.ts"), "sdk/js")
            } else {
                continue;
            };
            let mut inputs = Vec::new();
            files_under(&dir, &mut inputs)?;
            files_under(&root.join(sdk), &mut inputs)?;
            inputs.push(root.join("wit/v0.1.2/plugin.wit"));
            inputs.push(root.join("host/src/toolchain.rs"));
            inputs.sort();
            let next = dir.join("next");
            if sdk.starts_with("sdk/python") && next.is_dir() {
                jobs.push(Job {
                    source: source.clone(),
                    out: wasm.join(format!("{name}_next.wasm")),
                    paths: vec![next],
                    inputs: inputs.clone(),
                });
            }
            jobs.push(Job { source, out: wasm.join(format!("{name}.wasm")), paths: Vec::new(), inputs });
        }
    }
    jobs.sort_by(|a, b| a.out.cmp(&b.out));
    Ok(jobs)
}

fn stamp(job: &Job) -> Result<String> {
    let mut h = Sha256::new();
    for path in &job.inputs {
        h.update(path.to_string_lossy().as_bytes());
        h.update(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    for p in &job.paths {
        h.update(p.to_string_lossy().as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Builds every Python and TypeScript plugin with `moat`, then compiles them
/// into the artifact cache under `cache_home`.
pub fn build(root: &Path, wasm: &Path, moat: &Path, target: &Path, cache_home: &Path) -> Result<Vec<PathBuf>> {
    let mut built = Vec::new();
    for job in jobs(root, wasm)? {
        let stamp_file = job.out.with_extension("wasm.inputs");
        let want = stamp(&job)?;
        let fresh = job.out.is_file() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s.trim() == want);
        if !fresh {
            let mut cmd = Command::new(moat);
            cmd.arg("build").arg(&job.source).arg("--out").arg(&job.out).arg("--no-check");
            for p in &job.paths {
                cmd.arg("--path").arg(p);
            }
            cmd.env("MOAT_TOOLCHAIN_DIR", target.join("toolchains")).env("XDG_CACHE_HOME", cache_home);
            crate::run(&mut cmd)?;
            std::fs::write(&stamp_file, &want)?;
        }
        built.push(job.out);
    }
    // Compiled once into the cache the tests' servers share: a cache hit for
    // every build already compiled.
    if !built.is_empty() {
        crate::run(Command::new(moat).arg("compile").args(&built).env("XDG_CACHE_HOME", cache_home))?;
    }
    Ok(built)
}
