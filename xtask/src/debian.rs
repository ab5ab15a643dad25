//! Debian packages the tests run (a real OCI registry; Python's `cryptography`
//! for the cosign-compatibility test; nginx and Redis for the fleet tests),
//! installed with apt-get at pinned versions when missing. CI runs as root on
//! Debian 12; elsewhere the missing package is named with the command that
//! installs it. Debian's security archive keeps only the newest update of a
//! package: when the pinned one is gone, the newest update of the same
//! upstream release (`1.22.1-9+deb12u…`) is installed instead, and named.

use std::process::Command;

use anyhow::{Result, bail};

/// (package, version): what the tests were written against.
pub const PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "2.8.2+ds1-1"),
    ("python3-cryptography", "38.0.4-3+deb12u1"),
    ("nginx", "1.22.1-9+deb12u11"),
    ("redis-server", "5:7.0.15-1~deb12u10"),
];

/// The installed version of `package`, if any.
fn installed(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status} ${Version}", package]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("install ok installed ").map(str::to_owned)
}

/// The version apt-get would install of `package`.
fn candidate(package: &str) -> Option<String> {
    let out = Command::new("apt-cache").args(["policy", package]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find_map(|l| l.trim().strip_prefix("Candidate: "))?.trim().to_owned();
    (line != "(none)").then_some(line)
}

/// Installs every package of [`PACKAGES`] that is missing (at its pinned
/// version); a package already installed at another version is left alone
/// (a Debian security update keeps its major version).
pub fn ensure() -> Result<()> {
    let wanted: Vec<(&str, &str)> = PACKAGES.iter().copied().filter(|(p, _)| installed(p).is_none()).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = wanted.iter().map(|(p, v)| format!("{p}={v}")).collect();
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
    // A fresh machine may have no package lists yet, or stale ones.
    super::run(Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"))?;
    if install() {
        return Ok(());
    }
    // The pinned security update may have been superseded: take the newest
    // update of the same upstream release.
    let mut again = Vec::new();
    for (package, version) in &wanted {
        let release = version.split("+deb").next().unwrap_or(version).split("~deb").next().unwrap_or(version);
        match candidate(package).filter(|c| c.starts_with(release)) {
            Some(c) => {
                if c != *version {
                    eprintln!("note: {package}={version} is gone from Debian's archive; installing {c} (same release)");
                }
                again.push(format!("{package}={c}"));
            }
            None => bail!("apt-get has no {package} of release {release} (pinned {version})"),
        }
    }
    eprintln!("+ apt-get install {}", again.join(" "));
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&again)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!("apt-get install {} failed", again.join(" "));
    }
    Ok(())
}
