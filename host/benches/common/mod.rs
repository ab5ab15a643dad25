//! What the HTTP and reload benchmarks share: built components, CPU pinning,
//! process CPU time, and a release `moat serve --dev` pinned to CPU 0.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn wasm(name: &str) -> PathBuf {
    let dir = std::env::var_os("MOAT_TEST_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release"));
    dir.join(format!("{name}.wasm"))
}

/// The release `moat` binary (or `MOAT_BIN`).
pub fn moat_bin() -> String {
    std::env::var("MOAT_BIN").unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/moat").display().to_string()
    })
}

/// Pins the calling thread (and threads it starts later) to one CPU.
pub fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// User + system CPU time of a process.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// Resident memory (KiB) and open file descriptors other than sockets (client
/// connections come and go) of a process.
pub fn rss_and_fds(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| !t.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0);
    (rss, fds)
}

/// A release `moat serve --dev` on CPU 0 serving disk_usage (granted its temp
/// dir as `/`), stopped by its PID when dropped.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    /// `http://ADDR` of the admin listener, when started with one.
    pub admin: Option<String>,
}

impl Server {
    /// Pinned to CPU 0. `profile`: run under `perf record` (MOAT_BENCH_PERF).
    /// `extra`: more `serve` arguments.
    pub fn start(moat: &str, profile: bool, extra: &[&str]) -> Server {
        Self::start_on("0", moat, profile, extra)
    }

    /// On the CPUs listed (taskset syntax, e.g. `0` or `0,1`).
    pub fn start_on(cpus: &str, moat: &str, profile: bool, extra: &[&str]) -> Server {
        Self::start_prepared(cpus, moat, profile, extra, |_| {})
    }

    /// Like [`Self::start_on`], after `prepare` has had the server's folder
    /// (where `moat.toml` would go; the plugins are in `plugins/`).
    pub fn start_prepared(
        cpus: &str,
        moat: &str,
        profile: bool,
        extra: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::copy(wasm("disk_usage"), plugins.join("disk_usage.wasm")).expect("disk_usage.wasm built");
        std::fs::write(
            plugins.join("disk_usage.toml"),
            format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", dir.path().display()),
        )
        .unwrap();
        prepare(dir.path());
        let mut child = Command::new(if profile { "perf" } else { "taskset" })
            .args(if profile { &["record", "-g", "-o", "/tmp/moat.perf", "--", "taskset"][..] } else { &[][..] })
            .args(["-c", cpus, moat, "serve", "--dev", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("moat serve starts (taskset from util-linux)");
        let pid = child.id();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("moat: serving MCP at ").map(|r| r.split_whitespace().next().unwrap().to_owned())
            })
            .expect("server URL");
        let admin = if extra.contains(&"--admin-listen") {
            lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.strip_prefix("moat: admin (/metrics, /readyz?verbose) at ").map(|r| r.trim().to_owned())
            })
        } else {
            None
        };
        std::thread::spawn(move || for _ in lines {});
        let token =
            Command::new(moat).args(["token", "--dev", "--ttl", "1h"]).current_dir(dir.path()).output().unwrap();
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        Server { child, pid, url, token, dir, admin }
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Stops the server; under a profiler, SIGINT first so it writes its data.
    pub fn stop(mut self, profile: bool) {
        signal(self.pid, rustix::process::Signal::INT);
        std::thread::sleep(Duration::from_millis(if profile { 3000 } else { 100 }));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `bytes` beside `dst` under a hidden name, then renames it into place.
pub fn drop_in(dst: &Path, bytes: &[u8]) {
    let tmp = dst.with_file_name(format!(".{}.tmp", dst.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

/// Sends `signal` to the process `pid` (a child this bench started).
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Debian's `docker-registry` on a free loopback port, killed when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut child = Command::new("docker-registry")
            .args(["serve", &dir.path().join("config.yml").to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry (Debian's package) starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                let at = l.find("listening on ")? + "listening on ".len();
                l[at..].split(['"', ' ']).next().map(str::to_owned)
            })
            .expect("docker-registry says where it listens");
        std::thread::spawn(move || for _ in lines {});
        Registry { child, addr, _dir: dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
