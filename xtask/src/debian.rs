//! Debian packages the tests run (a real OCI registry; Python's `cryptography`
//! for the cosign-compatibility test), installed with apt-get at pinned
//! versions when missing. CI runs as root on Debian 12; elsewhere the missing
//! package is named with the command that installs it.

use std::process::Command;

use anyhow::{Result, bail};

/// (package, version): what the tests were written against.
pub const PACKAGES: &[(&str, &str)] =
    &[("docker-registry", "2.8.2+ds1-1"), ("python3-cryptography", "38.0.4-3+deb12u1")];

/// The installed version of `package`, if any.
fn installed(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status} ${Version}", package]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("install ok installed ").map(str::to_owned)
}

/// Installs every package of [`PACKAGES`] that is missing (at its pinned
/// version); a package already installed at another version is left alone
/// (a Debian security update keeps its major version).
pub fn ensure() -> Result<()> {
    let missing: Vec<String> =
        PACKAGES.iter().filter(|(p, _)| installed(p).is_none()).map(|(p, v)| format!("{p}={v}")).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        bail!("the tests need Debian packages: sudo apt-get install {}", missing.join(" "));
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    eprintln!("+ apt-get install {}", missing.join(" "));
    if install() {
        return Ok(());
    }
    // A fresh machine may have no package lists yet.
    super::run(Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !install() {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}
