//! `cargo xtask bench-reload`: hot reload of disk_usage in a release
//! `moat serve --dev`, on both CPUs and then pinned to CPU 0 (this client is
//! pinned to CPU 1).
//!
//! 1. Reload latency: the time from a new `disk_usage.wasm` settling in the
//!    plugins folder (the rename into place returns) to the end of the first call
//!    answered by it, polled every millisecond. Two builds whose output differs
//!    (`disk_usage` and `disk_usage_next`, which adds `used_percent`) alternate.
//!    Cached: both are in the artifact cache. Cold: each drop carries a unique
//!    custom section, so its hash is new and it is compiled.
//!    Then the same on a server kept busy by 16 workers.
//! 2. Throughput at concurrency 16 without reloads, then with a reload every
//!    200 ms (cached, then cold), in the same run; every call must succeed and
//!    come from one of the two builds.
//! 3. From a registry (Debian's `docker-registry` on loopback): the time from
//!    `moat push --sign-key` returning (a signed tag moved) to the end of the
//!    first call answered by the new build, once with `POST /reload` sent at
//!    once and once waiting for the source's poll (`poll_s = 1`), beside the
//!    folder's drop on the same server as the baseline; and `moat pull` (tag →
//!    digest → signature → layer by digest, checked) against a plain GET of the
//!    same layer.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const RELOADS: usize = 24;
const RELOADS_UNDER_LOAD: usize = 10;
const RUN: Duration = Duration::from_secs(5);

/// `bytes` with a custom section named `moat-bench` holding `n` appended: the
/// same component, a different hash.
fn marked(bytes: &[u8], n: u64) -> Vec<u8> {
    fn leb(mut v: usize, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            out.push(if v == 0 { b } else { b | 0x80 });
            if v == 0 {
                break;
            }
        }
    }
    let name = b"moat-bench";
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name);
    body.extend_from_slice(&n.to_le_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    /// Calls disk_usage; `Some(true)` if the next build answered, `Some(false)`
    /// for the base build, `None` for a failed call.
    async fn call(&self) -> Option<bool> {
        let params = json!({"name": "disk_usage", "arguments": {"path": "/"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}});
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        let r = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "disk_usage")
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        text.contains("total_bytes").then(|| text.contains("used_percent"))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Drops alternating builds and times each until it serves; returns ms, sorted.
async fn latencies(
    client: &Client,
    target: &std::path::Path,
    builds: &[Vec<u8>; 2],
    cold: bool,
    seq: &AtomicU64,
) -> Vec<f64> {
    let mut out = Vec::new();
    // Two unmeasured drops leave the server on the base build with both compiled.
    for i in 0..RELOADS + 2 {
        let next = i % 2 == 0;
        let bytes = &builds[usize::from(!next)];
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let bytes = if cold { marked(bytes, n) } else { bytes.clone() };
        common::drop_in(target, &bytes);
        let settled = Instant::now();
        // Poll every millisecond: back-to-back polling would take half the
        // server's CPU away from the compile it is timing.
        loop {
            if client.call().await == Some(next) {
                break;
            }
            assert!(settled.elapsed() < Duration::from_secs(30), "reload {i} never served");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i >= 2 {
            out.push(settled.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out.sort_by(f64::total_cmp);
    out
}

/// Calls/s at concurrency 16 for [`RUN`], reloading every 200 ms if `reload` says how.
async fn throughput(
    client: Arc<Client>,
    target: &std::path::Path,
    builds: &[Vec<u8>; 2],
    reload: Option<bool>,
    seq: &AtomicU64,
) -> (f64, f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, stop, failed) = (client.clone(), stop.clone(), failed.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if client.call().await.is_none() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                lat
            })
        })
        .collect();
    let mut reloads = 0;
    while started.elapsed() < RUN {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(cold) = reload {
            let bytes = &builds[reloads % 2];
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let bytes = if cold { marked(bytes, n) } else { bytes.clone() };
            common::drop_in(target, &bytes);
            reloads += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let wall = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    (lat.len() as f64 / wall, percentile(&lat, 0.99), failed.load(Ordering::Relaxed))
}

/// Reload latency while 16 workers keep the server busy: one drop at a time,
/// timed until a worker's call (started after the drop) is answered by it.
async fn latencies_under_load(
    client: Arc<Client>,
    target: &std::path::Path,
    builds: &[Vec<u8>; 2],
    cold: bool,
    seq: &AtomicU64,
) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    // (the build wanted, the drop time, when a worker first saw it)
    type Watch = Option<(bool, Instant, Option<Instant>)>;
    let watch: Arc<std::sync::Mutex<Watch>> = Arc::default();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, stop, watch) = (client.clone(), stop.clone(), watch.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let got = client.call().await;
                    assert!(got.is_some(), "a call failed during a reload");
                    if let Some((want, dropped, seen @ None)) = &mut *watch.lock().unwrap()
                        && got == Some(*want)
                        && started > *dropped
                    {
                        *seen = Some(Instant::now());
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = Vec::new();
    // Two unmeasured drops leave both builds compiled, as in `latencies`.
    for i in 0..RELOADS_UNDER_LOAD + 2 {
        let next = i % 2 == 0;
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let bytes = &builds[usize::from(!next)];
        let bytes = if cold { marked(bytes, n) } else { bytes.clone() };
        common::drop_in(target, &bytes);
        let dropped = Instant::now();
        *watch.lock().unwrap() = Some((next, dropped, None));
        let seen = loop {
            if let Some((_, _, Some(seen))) = *watch.lock().unwrap() {
                break seen;
            }
            assert!(dropped.elapsed() < Duration::from_secs(60), "reload {i} never served under load");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if i >= 2 {
            out.push((seen - dropped).as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    out.sort_by(f64::total_cmp);
    out
}

/// One row of the latency table from sorted milliseconds.
fn latency_row(case: &str, sorted: &[f64]) {
    let p = |q| percentile(sorted, q);
    println!("{case:<40} {:>9.1} {:>9.1} {:>9.1} {:>9.1}", p(0.5), p(0.9), p(0.99), sorted[sorted.len() - 1]);
}

/// Pushes alternating signed builds to `reference` and times each until it
/// serves (after `POST /reload` to `admin` if given); returns ms, sorted.
async fn registry_latencies(client: &Client, work: &Path, reference: &str, admin: Option<&str>) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..RELOADS + 2 {
        let next = i % 2 == 0;
        let file = if next { "next.wasm" } else { "base.wasm" };
        let pushed = std::process::Command::new(common::moat_bin())
            .args(["push", file, reference, "--sign-key", "release.key"])
            .current_dir(work)
            .env("XDG_CACHE_HOME", work.join("cache"))
            .output()
            .unwrap();
        assert!(pushed.status.success(), "moat push: {}", String::from_utf8_lossy(&pushed.stderr));
        let moved = Instant::now();
        if let Some(admin) = admin {
            let r = reqwest::Client::new().post(format!("{admin}/reload")).send().await.unwrap();
            assert!(r.status().is_success());
        }
        loop {
            if client.call().await == Some(next) {
                break;
            }
            assert!(moved.elapsed() < Duration::from_secs(30), "registry reload {i} never served");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i >= 2 {
            out.push(moved.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out.sort_by(f64::total_cmp);
    out
}

/// Section 3: reloads from a registry, and pulls, each beside its baseline.
fn registry(rt: &tokio::runtime::Runtime, builds: &[Vec<u8>; 2], seq: &AtomicU64) {
    let registry = common::Registry::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("next.wasm"), &builds[0]).unwrap();
    std::fs::write(w.join("base.wasm"), &builds[1]).unwrap();
    let moat = |args: &[&str]| {
        let o = std::process::Command::new(common::moat_bin())
            .args(args)
            .current_dir(w)
            .env("XDG_CACHE_HOME", w.join("cache"))
            .output()
            .unwrap();
        assert!(o.status.success(), "moat {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    moat(&["keygen", "--out", "release"]);
    let reference = format!("{}/bench/disk_usage:1", registry.addr);
    moat(&["push", "base.wasm", &reference, "--sign-key", "release.key"]);
    let pubkey = w.join("release.pub");
    let server = common::Server::start_prepared(
        "0",
        &common::moat_bin(),
        false,
        &["--config", "moat.toml", "--admin-listen", "127.0.0.1:0"],
        |dir| {
            std::fs::rename(dir.join("plugins/disk_usage.toml"), dir.join("disk_usage.toml")).unwrap();
            std::fs::write(
                dir.join("moat.toml"),
                format!(
                    "[[plugins.oci]]\nref = \"{reference}\"\nname = \"oci_disk_usage\"\nverify_keys = [\"{}\"]\npoll_s = 1\nsidecar = \"disk_usage.toml\"\n",
                    pubkey.display()
                ),
            )
            .unwrap();
            // The registry's build replaces the folder's (the same tool).
            std::fs::remove_file(dir.join("plugins/disk_usage.wasm")).unwrap();
        },
    );
    let oci_client = client(&server);
    let admin = server.admin.clone().expect("admin listener");
    let p50s = rt.block_on(async {
        let client = &oci_client;
        let started = Instant::now();
        while client.call().await != Some(false) {
            assert!(started.elapsed() < Duration::from_secs(60), "the registry's plugin never served");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let by_admin = registry_latencies(client, w, &reference, Some(&admin)).await;
        let by_poll = registry_latencies(client, w, &reference, None).await;
        println!("\nreload from a registry, signed tag moved → first call served by the new build ({RELOADS} each, server on CPU 0)");
        println!("{:<40} {:>9} {:>9} {:>9} {:>9}", "case", "p50 ms", "p90 ms", "p99 ms", "max ms");
        latency_row("registry, POST /reload", &by_admin);
        latency_row("registry, poll_s = 1", &by_poll);
        (by_admin[by_admin.len() / 2], by_poll[by_poll.len() / 2])
    });
    server.stop(false);
    // The baseline, in the same run: a folder drop on a server like it.
    let folder = common::Server::start(&common::moat_bin(), false, &[]);
    let (target, folder_client) = (folder.plugins().join("disk_usage.wasm"), client(&folder));
    let f = rt.block_on(latencies(&folder_client, &target, builds, false, seq));
    folder.stop(false);
    latency_row("folder drop (baseline), artifact cached", &f);
    println!("registry POST /reload p50 / folder drop p50: {:.1}×", p50s.0 / f[f.len() / 2]);
    println!("registry poll_s = 1 p50 / folder drop p50: {:.1}×", p50s.1 / f[f.len() / 2]);

    // Pull + verify vs a plain GET of the same layer.
    let mut pulls = Vec::new();
    let mut gets = Vec::new();
    let manifest: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{}/v2/bench/disk_usage/manifests/1", registry.addr))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        let t = Instant::now();
        moat(&["pull", &reference, "--verify-key", "release.pub", "--out", "pulled.wasm"]);
        pulls.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let o = std::process::Command::new("curl")
            .args(["-sSf", "-o", "plain.wasm", &format!("http://{}/v2/bench/disk_usage/blobs/{layer}", registry.addr)])
            .current_dir(w)
            .status()
            .expect("curl");
        assert!(o.success());
        gets.push(t.elapsed().as_secs_f64() * 1e3);
    }
    pulls.sort_by(f64::total_cmp);
    gets.sort_by(f64::total_cmp);
    println!("\npull of disk_usage ({} KiB), whole process, 20 each", builds[1].len() / 1024);
    println!("{:<40} {:>9} {:>9} {:>9} {:>9}", "case", "p50 ms", "p90 ms", "p99 ms", "max ms");
    latency_row("moat pull (tag, signature, layer, checks)", &pulls);
    latency_row("curl of the layer alone (baseline)", &gets);
    println!("moat pull p50 / curl p50: {:.1}×", pulls[pulls.len() / 2] / gets[gets.len() / 2]);
}

fn client(server: &common::Server) -> Arc<Client> {
    Arc::new(Client {
        http: reqwest::Client::builder().tcp_nodelay(true).build().unwrap(),
        url: server.url.clone(),
        token: server.token.clone(),
    })
}

fn main() {
    let builds =
        [std::fs::read(common::wasm("disk_usage_next")).unwrap(), std::fs::read(common::wasm("disk_usage")).unwrap()];
    common::pin(1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let seq = AtomicU64::new(0);
    println!("reload latency, file settled → first call served by the new build ({RELOADS} reloads each)");
    println!("{:<40} {:>9} {:>9} {:>9} {:>9}", "case", "p50 ms", "p90 ms", "p99 ms", "max ms");
    // Both CPUs (compilation is parallel), then pinned to CPU 0 like the HTTP bench.
    for (cpus, on) in [("0,1", "2 cores"), ("0", "server on 1 core")] {
        let server = common::Server::start_on(cpus, &common::moat_bin(), false, &[]);
        let (target, client) = (server.plugins().join("disk_usage.wasm"), client(&server));
        rt.block_on(async {
            for (name, cold) in [("artifact cached", false), ("cold compile", true)] {
                latency_row(&format!("{name}, {on}"), &latencies(&client, &target, &builds, cold, &seq).await);
            }
        });
        server.stop(false);
    }

    let server = common::Server::start(&common::moat_bin(), false, &[]);
    let (target, client) = (server.plugins().join("disk_usage.wasm"), client(&server));
    rt.block_on(async {
        for (name, cold) in [("artifact cached", false), ("cold compile", true)] {
            let l = latencies_under_load(client.clone(), &target, &builds, cold, &seq).await;
            latency_row(&format!("{name}, 1 core, under c=16 load"), &l);
        }
    });
    let (seq0, (rss0, fds0)) = (seq.load(Ordering::Relaxed), common::rss_and_fds(server.pid));
    rt.block_on(async {
        println!("\nthroughput at concurrency 16, {} s each, server on CPU 0", RUN.as_secs());
        println!("{:<40} {:>9} {:>9} {:>9} {:>9}", "case", "calls/s", "vs base", "p99 ms", "failed");
        let mut base = 0.0;
        for (name, reload) in [
            ("no reloads", None),
            ("reload every 200 ms, cached", Some(false)),
            ("reload every 200 ms, cold", Some(true)),
        ] {
            let (rate, p99, failed) = throughput(client.clone(), &target, &builds, reload, &seq).await;
            if reload.is_none() {
                base = rate;
            }
            println!("{name:<40} {rate:>9.0} {:>8.0}% {p99:>9.2} {failed:>9}", rate / base * 100.0);
            assert_eq!(failed, 0, "{name}: calls failed");
        }
    });
    let (rss1, fds1) = common::rss_and_fds(server.pid);
    println!(
        "\nthat server after {} reloads: resident {} → {} MiB, open files (not sockets) {fds0} → {fds1}",
        seq.load(Ordering::Relaxed) - seq0,
        rss0 / 1024,
        rss1 / 1024
    );
    server.stop(false);
    registry(&rt, &builds, &seq);
}
