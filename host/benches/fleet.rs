//! `cargo xtask bench-fleet`: a fleet on one machine, in one run.
//!
//! 1. calls/s of 2026-07-28 `tools/call` (disk_usage) through nginx (the
//!    shipped `deploy/nginx/moat.conf`) in front of 1 and of 3 release
//!    replicas sharing Redis, at concurrency 16, alternating, each replica
//!    pinned to a CPU of its own where the machine has enough (it says when
//!    it has not); the same load straight at one replica is the baseline.
//! 2. what a fleet-wide rate limit costs per call: one replica without a
//!    limit, one with the limit counted by its own limiter, one with it
//!    counted in Redis, alternating at concurrency 1: p50 latency and server
//!    CPU per call of each.

mod common;

#[path = "../../tests/support/loopback.rs"]
mod loopback;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const RUN: Duration = Duration::from_secs(4);
const ROUNDS: usize = 3;

/// A release `moat serve --dev` in `dir` (shared by the fleet's replicas).
struct Replica {
    _proc: loopback::Proc,
    pid: u32,
    addr: String,
}

impl Replica {
    fn start(moat: &str, dir: &Path, config: &str, cpus: &str) -> Replica {
        let mut child = Command::new("taskset")
            .args(["-c", cpus, moat, "serve", "--dev", "--config", config, "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env("XDG_CACHE_HOME", dir.join("cache"))
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
        std::thread::spawn(move || for _ in lines {});
        let addr = url.trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
        Replica { _proc: loopback::Proc(child), pid, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// Stateless calls of `tool` at `conc` for [`RUN`]: (calls/s, p50 ms).
fn load(rt: &tokio::runtime::Runtime, url: &str, token: &str, tool: &str, conc: usize) -> (f64, f64, usize) {
    let started = Instant::now();
    let until = started + RUN;
    let mut lat: Vec<Duration> = rt.block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..conc)
            .map(|i| {
                let (client, url, token, tool) = (client.clone(), url.to_owned(), token.to_owned(), tool.to_owned());
                tokio::spawn(async move {
                    let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                        "name": tool, "arguments": {"path": "/"}, "_meta": {
                            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities": {}}}})
                    .to_string();
                    let mut lat = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        let r = client
                            .post(&url)
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .header("accept", "application/json, text/event-stream")
                            .header("mcp-protocol-version", "2026-07-28")
                            .header("mcp-method", "tools/call")
                            .header("mcp-name", &tool)
                            .body(body.clone())
                            .send()
                            .await
                            .expect("sent");
                        assert_eq!(r.status(), 200, "a call failed");
                        let text = r.text().await.unwrap();
                        assert!(text.contains("total_bytes"), "{text}");
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let wall = started.elapsed();
    lat.sort();
    let n = lat.len().max(1);
    (n as f64 / wall.as_secs_f64(), lat[(n - 1) / 2].as_secs_f64() * 1e3, n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn prepare(dir: &Path, redis: &str, limited: bool) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(common::wasm("disk_usage"), plugins.join("disk_usage.wasm")).expect("disk_usage.wasm built");
    let limit =
        if limited { "[tools.disk_usage]\nrate_limit = { per_minute = 4000000000, burst = 1000000 }\n" } else { "" };
    std::fs::write(
        plugins.join("disk_usage.toml"),
        format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n{limit}", dir.display()),
    )
    .unwrap();
    std::fs::write(dir.join("fleet.toml"), format!("[fleet]\nredis_url = \"{redis}\"\n")).unwrap();
    std::fs::write(dir.join("alone.toml"), "").unwrap();
}

fn dev_token(moat: &str, dir: &Path) -> String {
    let out = Command::new(moat).args(["token", "--dev", "--ttl", "1h"]).current_dir(dir).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn main() {
    let moat = common::moat_bin();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let root = tempfile::tempdir().unwrap();
    let redis = loopback::RedisServer::start(root.path());
    println!("machine: {cores} CPUs; the load generator, nginx and Redis share them with the replicas");

    // 1. Throughput through nginx, 1 and 3 replicas.
    let fleet_dir = root.path().join("fleet");
    prepare(&fleet_dir, &redis.url(), false);
    let cpu_of = |i: usize| (i % cores).to_string();
    let replicas: Vec<Replica> = (0..3).map(|i| Replica::start(&moat, &fleet_dir, "fleet.toml", &cpu_of(i))).collect();
    if cores < 4 {
        println!(
            "note: {cores} CPUs cannot give 3 replicas a CPU each: replicas pinned to CPUs {}; expect the 3-replica \
             figure to measure contention, not scale-out",
            (0..3).map(cpu_of).collect::<Vec<_>>().join(", ")
        );
    }
    let token = dev_token(&moat, &fleet_dir);
    let one_dir = root.path().join("nginx-1");
    let three_dir = root.path().join("nginx-3");
    std::fs::create_dir_all(&one_dir).unwrap();
    std::fs::create_dir_all(&three_dir).unwrap();
    let addrs: Vec<&str> = replicas.iter().map(|r| r.addr.as_str()).collect();
    let nginx_one = loopback::Nginx::start(&one_dir, &addrs[..1]);
    let nginx_three = loopback::Nginx::start(&three_dir, &addrs);
    let (mut direct, mut one, mut three) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.push(load(&rt, &replicas[0].url(), &token, "disk_usage", 16).0);
        one.push(load(&rt, &nginx_one.url, &token, "disk_usage", 16).0);
        three.push(load(&rt, &nginx_three.url, &token, "disk_usage", 16).0);
    }
    let (direct, one, three) = (median(direct), median(one), median(three));
    println!("\n== calls/s, 2026-07-28 tools/call disk_usage, concurrency 16, median of {ROUNDS} × {RUN:?}");
    println!("{:<40} {:>10} {:>8}", "case", "calls/s", "ratio");
    println!("{:<40} {:>10.0} {:>8}", "one replica, no proxy (baseline)", direct, "1.00");
    println!("{:<40} {:>10.0} {:>8.2}", "nginx → 1 replica", one, one / direct);
    println!("{:<40} {:>10.0} {:>8.2}", "nginx → 3 replicas (round-robin)", three, three / direct);
    println!("3 replicas / 1 replica through nginx: {:.2}", three / one);
    drop((nginx_one, nginx_three, replicas));

    // 2. The rate limiter's cost per call, concurrency 1, each server on CPU 0.
    let cases = [
        ("no rate limit", "alone.toml", false),
        ("limit, this replica's limiter", "alone.toml", true),
        ("limit, fleet-wide in Redis", "fleet.toml", true),
    ];
    let servers: Vec<(Replica, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, config, limited))| {
            let dir = root.path().join(format!("limit-{i}"));
            prepare(&dir, &redis.url(), *limited);
            let r = Replica::start(&moat, &dir, config, "0");
            let t = dev_token(&moat, &dir);
            (r, t)
        })
        .collect();
    let mut rows: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (r, t)) in servers.iter().enumerate() {
            let cpu0 = common::cpu_time(r.pid);
            let (_, p50, n) = load(&rt, &r.url(), t, "disk_usage", 1);
            let cpu = common::cpu_time(r.pid) - cpu0;
            rows[i].0.push(p50 * 1e3);
            rows[i].1.push(cpu.as_secs_f64() * 1e6 / n as f64);
        }
    }
    println!("\n== rate limiter cost per call, concurrency 1, median of {ROUNDS} × {RUN:?}");
    println!("{:<36} {:>10} {:>14}", "case", "p50 µs", "server CPU µs");
    let base = median(rows[0].0.clone());
    for ((name, _, _), (lat, cpu)) in cases.iter().zip(rows) {
        let (lat, cpu) = (median(lat), median(cpu));
        println!("{name:<36} {lat:>10.0} {cpu:>14.0}   (+{:.0} µs)", lat - base);
    }
    let keys = redis.cli(&["DBSIZE"]);
    println!("Redis keys after the run: {keys}");
}
