//! The deployment files (`deploy/`: Dockerfile, Kubernetes manifests, nginx
//! config) checked by tools from PyPI and Debian, not by eye: `deploy/validate.sh`
//! in a venv under `target/deploy-venv/`, with nginx required.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

/// Runs the validation as one test; returns (passed, failed).
pub fn validate(root: &Path, target: &Path) -> Result<(u64, u64)> {
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("deploy/validate.sh")).arg(target.join("deploy-venv")).env("REQUIRE_NGINX", "1");
    eprintln!("+ {cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    let took = started.elapsed().as_secs_f64();
    let name = "deploy/: kubernetes-validate --strict, hadolint, yamllint, cross-file checks, nginx -t";
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        let summary = stdout.lines().filter(|l| l.starts_with("ok")).count();
        println!("interop {name} ... ok ({took:.1} s) {summary} checks passed");
        Ok((1, 0))
    } else {
        println!("interop {name} ... FAILED ({took:.1} s)\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        Ok((0, 1))
    }
}
