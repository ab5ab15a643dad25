//! Shared helpers: where the built components are, one shared runtime, and the
//! `moat` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use moat::config::{DirGrant, DirMode, Limits, PluginSettings};
use moat::runtime::{LoadedPlugin, Runtime, RuntimeOptions};

/// The directory of built `.wasm` files. Missing files fail the test with the
/// command that builds them: a test is never skipped silently.
pub fn wasm(name: &str) -> PathBuf {
    let dir = std::env::var_os("MOAT_TEST_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)", path.display());
    path
}

/// One runtime for the whole test binary (each engine reserves a pool of memory).
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<(Runtime, tempfile::TempDir)> = OnceLock::new();
    &RT.get_or_init(|| {
        let cache = tempfile::tempdir().expect("temp dir");
        let rt = Runtime::new(RuntimeOptions { cache_dir: Some(cache.path().join("cache")), ..Default::default() })
            .expect("runtime");
        (rt, cache)
    })
    .0
}

pub fn limits(f: impl FnOnce(&mut Limits)) -> PluginSettings {
    let mut l = Limits::default();
    f(&mut l);
    PluginSettings::with_limits(l)
}

pub fn grant(host: &Path, guest: &str, mode: DirMode) -> DirGrant {
    DirGrant::new(host, guest, mode).expect("valid grant")
}

pub async fn load(name: &str, settings: PluginSettings) -> LoadedPlugin {
    runtime().load(&wasm(name), settings).await.unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// The `moat` binary, with its component cache in a private temp directory.
pub fn moat(cache_home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
    c.env("XDG_CACHE_HOME", cache_home).env_remove("MOAT_LOG");
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// statvfs of a host path: (total, free, available) bytes.
pub fn statvfs(path: &Path) -> (u64, u64, u64) {
    let s = rustix::fs::statvfs(path).expect("statvfs of a test folder");
    let f = s.f_frsize;
    (s.f_blocks * f, s.f_bfree * f, s.f_bavail * f)
}

/// A child process stopped, by its own PID, when this goes out of scope (also
/// when a test fails half-way), before the folders it serves are removed.
pub struct Stopped(pub std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
