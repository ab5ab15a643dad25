//! `cargo xtask bench`: authenticated `tools/call` of disk_usage against a real
//! `moat serve --dev` (release), the server pinned to CPU 0 and this load
//! generator to CPU 1, at concurrency 1, 16 and 64, in both protocol eras.
//! Reports calls/s, p50/p99 latency and server CPU time per call (from
//! /proc/PID/stat), beside a baseline in the same run: `GET /healthz` (HTTP
//! stack only: no auth, no MCP, no sandbox). Then every case again against a
//! native rmcp server (`host/examples/native_baseline.rs`: the same disk_usage
//! logic and JWT verifier, no sandbox), alternating with moat, with moat /
//! native ratios.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const RUN: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Health,
    Stateless,
    /// Stateless, with a token never seen before on every request.
    FreshToken,
    Session,
    /// Stateless `http_get` of the upstream's `/hello`: one outbound GET per call.
    HttpGet,
    /// The same GET, made by this load generator directly (keep-alive).
    NativeGet,
    /// The same, on a new connection each time (as moat's egress does).
    NativeGetFresh,
}

struct Target {
    url: String,
    token: String,
    /// Signs fresh tokens (the server's dev key).
    key: moat::auth::DevKey,
    /// `http://ADDR` of the loopback upstream, for the outbound HTTP cases.
    upstream: String,
}

async fn session(client: &reqwest::Client, t: &Target) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    let r = client
        .post(&t.url)
        .bearer_auth(&t.token)
        .header("Accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .expect("initialize");
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = r.bytes().await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let _ = client
        .post(&t.url)
        .bearer_auth(&t.token)
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &id)
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&note)
        .send()
        .await;
    id
}

async fn worker(t: Arc<Target>, mode: Mode, until: Instant) -> Vec<Duration> {
    let mut client = reqwest::Client::builder().tcp_nodelay(true);
    if mode == Mode::NativeGetFresh {
        client = client.pool_max_idle_per_host(0);
    }
    let client = client.build().unwrap();
    let base = t.url.trim_end_matches("/mcp").to_owned();
    let sid = if mode == Mode::Session { Some(session(&client, &t).await) } else { None };
    let mut lat = Vec::new();
    let mut id = 1u64;
    while Instant::now() < until {
        let started = Instant::now();
        let ok = match mode {
            Mode::Health => client.get(format!("{base}/healthz")).send().await.map(|r| r.status().is_success()),
            Mode::NativeGet | Mode::NativeGetFresh => match client.get(format!("{}/hello", t.upstream)).send().await {
                Ok(r) => r.text().await.map(|t| t == HELLO),
                Err(e) => Err(e),
            },
            Mode::Stateless | Mode::FreshToken | Mode::Session | Mode::HttpGet => {
                id += 1;
                let fresh;
                let token = if mode == Mode::FreshToken {
                    fresh = t.key.mint(&format!("load-{id}"), "tools:read", Duration::from_secs(600)).unwrap();
                    &fresh
                } else {
                    &t.token
                };
                let (tool, arguments, expect) = if mode == Mode::HttpGet {
                    ("http_get", json!({"url": format!("{}/hello", t.upstream)}), HELLO)
                } else {
                    ("disk_usage", json!({"path": "/"}), "total_bytes")
                };
                let mut params = json!({"name": tool, "arguments": arguments});
                let mut req = client
                    .post(&t.url)
                    .bearer_auth(token)
                    .header("Accept", "application/json, text/event-stream")
                    .header("Content-Type", "application/json");
                if let Some(sid) = &sid {
                    req = req.header("Mcp-Session-Id", sid).header("MCP-Protocol-Version", "2025-11-25");
                } else {
                    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientCapabilities": {}});
                    req = req
                        .header("MCP-Protocol-Version", "2026-07-28")
                        .header("Mcp-Method", "tools/call")
                        .header("Mcp-Name", tool);
                }
                let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
                match req.body(body.to_string()).send().await {
                    Ok(r) => r.text().await.map(|t| t.contains(expect)),
                    Err(e) => Err(e),
                }
            }
        };
        assert!(ok.unwrap_or(false), "a call failed");
        lat.push(started.elapsed());
    }
    lat
}

/// One measured case: calls/s, p50 and p99 latency (ms), server CPU per call (µs).
fn measure(rt: &tokio::runtime::Runtime, pid: u32, target: &Arc<Target>, mode: Mode, conc: usize) -> [f64; 4] {
    let cpu0 = common::cpu_time(pid);
    let started = Instant::now();
    let until = started + RUN;
    let mut lat: Vec<Duration> = rt.block_on(async {
        let tasks: Vec<_> = (0..conc).map(|_| tokio::spawn(worker(target.clone(), mode, until))).collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let wall = started.elapsed();
    let cpu = common::cpu_time(pid) - cpu0;
    lat.sort();
    let n = lat.len().max(1);
    let pct = |p: f64| lat[((n as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    [n as f64 / wall.as_secs_f64(), pct(0.5), pct(0.99), cpu.as_secs_f64() * 1e6 / n as f64]
}

fn target_of(server: &common::Server) -> Arc<Target> {
    let key = moat::auth::DevKey::load_or_create(&server.dir.path().join(".moat")).unwrap();
    Arc::new(Target { url: server.url.clone(), token: server.token.clone(), key, upstream: String::new() })
}

const CASES: [(&str, Mode); 4] = [
    ("baseline GET /healthz", Mode::Health),
    ("tools/call 2026-07-28", Mode::Stateless),
    ("tools/call 2026, fresh token each", Mode::FreshToken),
    ("tools/call 2025-11-25", Mode::Session),
];

fn main() {
    let moat = common::moat_bin();
    let profile = std::env::var("MOAT_BENCH_PERF").is_ok();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    common::pin(1);
    // `cargo xtask bench --against REV`: the same cases against another build,
    // alternating, in this run.
    // `MOAT_BENCH_ONLY=egress`: the outbound HTTP cases alone.
    if std::env::var("MOAT_BENCH_ONLY").is_ok_and(|o| o == "egress") {
        return egress_cost(&rt, &moat);
    }
    if let Ok(other) = std::env::var("MOAT_BENCH_AGAINST") {
        println!("this build: {moat}\nagainst:    {other}");
        let cases: Vec<_> = CASES.into_iter().filter(|(_, m)| *m != Mode::FreshToken).collect();
        return compare(&rt, [("old", other.as_str()), ("new", moat.as_str())], &cases, &[1, 16]);
    }
    let native = native_bin();
    let server = common::Server::start(&moat, profile, &[]);
    let target = target_of(&server);
    println!("{:<40} {:>10} {:>10} {:>10} {:>14}", "case", "calls/s", "p50 ms", "p99 ms", "server CPU/call");
    let mut rows: Vec<Value> = Vec::new();
    for (name, mode) in CASES {
        for conc in [1usize, 16, 64] {
            let [rate, p50, p99, per_call] = measure(&rt, server.pid, &target, mode, conc);
            let case = format!("{name} c={conc}");
            println!("{case:<40} {rate:>10.0} {p50:>10.2} {p99:>10.2} {per_call:>11.0} µs");
            rows.push(json!({"case": case, "calls_per_s": rate, "server_cpu_us_per_call": per_call}));
        }
    }
    auth_cost(&rt, &target.key, &rows);
    server.stop(profile);
    egress_cost(&rt, &moat);
    println!("\nagainst a native rmcp server: {native}");
    compare(&rt, [("native", native.as_str()), ("moat", moat.as_str())], &CASES, &[16]);
}

/// The native baseline (`cargo build --release --example native_baseline`), or
/// `MOAT_NATIVE_BIN`: it takes moat's `serve --dev` and `token --dev` arguments,
/// so [`common::Server`] starts it as it starts moat.
fn native_bin() -> String {
    let bin = std::env::var("MOAT_NATIVE_BIN").unwrap_or_else(|_| {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/release/examples/native_baseline")
            .display()
            .to_string()
    });
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} is missing: cargo build --release -p moat --example native_baseline (cargo xtask bench does)"
    );
    bin
}

/// Server `b` against server `a`: each case run on both in turn, `a` then `b`,
/// `MOAT_BENCH_ROUNDS` times (default 3), each server alone on CPU 0; the ratio
/// is b / a of the medians.
fn compare(rt: &tokio::runtime::Runtime, servers: [(&str, &str); 2], cases: &[(&str, Mode)], concs: &[usize]) {
    let rounds: usize = std::env::var("MOAT_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let [(a, _), (b, _)] = servers;
    println!("{rounds} rounds, medians; ratios are {b} / {a}");
    println!(
        "{:<36} {:>10} {:>10} {:>7} {:>15} {:>15} {:>7}",
        "case",
        format!("{a} /s"),
        format!("{b} /s"),
        "ratio",
        format!("{a} CPU/call"),
        format!("{b} CPU/call"),
        "ratio"
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for &(name, mode) in cases {
        for &conc in concs {
            let mut runs: [Vec<[f64; 2]>; 2] = [Vec::new(), Vec::new()];
            for _round in 0..rounds {
                for (i, (_, bin)) in servers.into_iter().enumerate() {
                    let server = common::Server::start(bin, false, &[]);
                    let target = target_of(&server);
                    let [rate, _, _, cpu] = measure(rt, server.pid, &target, mode, conc);
                    runs[i].push([rate, cpu]);
                    server.stop(false);
                }
            }
            let [o, n] =
                runs.map(|r| [median(r.iter().map(|x| x[0]).collect()), median(r.iter().map(|x| x[1]).collect())]);
            println!(
                "{:<36} {:>10.0} {:>10.0} {:>7.3} {:>12.1} µs {:>12.1} µs {:>7.3}",
                format!("{name} c={conc}"),
                o[0],
                n[0],
                n[0] / o[0],
                o[1],
                n[1],
                n[1] / o[1]
            );
        }
    }
}

/// What authentication adds to a call, measured in-process against the same
/// verifier the server runs: a reused token (cache hit) and a fresh one (ES256
/// signature check), beside the server CPU per call of the stateless case.
fn auth_cost(rt: &tokio::runtime::Runtime, key: &moat::auth::DevKey, rows: &[Value]) {
    let verifier = key.verifier().unwrap();
    let reused = key.mint("bench", "tools:read", Duration::from_secs(600)).unwrap();
    let n = 200_000;
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            verifier.verify(&reused).await.unwrap();
        }
    });
    let cached = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let fresh: Vec<String> =
        (0..2000).map(|i| key.mint(&format!("f{i}"), "tools:read", Duration::from_secs(600)).unwrap()).collect();
    let started = Instant::now();
    rt.block_on(async {
        for t in &fresh {
            verifier.verify(t).await.unwrap();
        }
    });
    let full = started.elapsed().as_secs_f64() * 1e6 / fresh.len() as f64;
    let per_call = rows
        .iter()
        .find(|r| r["case"] == "tools/call 2026-07-28 c=16")
        .and_then(|r| r["server_cpu_us_per_call"].as_f64())
        .unwrap_or(f64::NAN);
    println!(
        "auth, reused token: {cached:.2} µs per call = {:.1}% of the {per_call:.0} µs server CPU per call (2026-07-28 c=16)",
        cached / per_call * 100.0
    );
    println!("auth, fresh token (ES256 verify): {full:.1} µs per call");
}

const HELLO: &str = "hello from upstream";

/// What an outbound request from a plugin costs: `http_get` of a loopback
/// upstream through moat, beside disk_usage through moat (the same call
/// without the request) and the same GET made natively by this process, on a
/// kept-alive connection and on a new one each time (moat's egress opens one
/// per request). The added cost per call is (http_get - disk_usage) - native
/// GET, in latency at c=1 and in server CPU per call.
fn egress_cost(rt: &tokio::runtime::Runtime, moat: &str) {
    let upstream = rt.block_on(async {
        let app = axum::Router::new().route("/hello", axum::routing::get(|| async { HELLO }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    });
    let server = common::Server::start(moat, false, &[]);
    std::fs::write(server.plugins().join("http_get.toml"), format!("[grants]\nhttp = [\"{upstream}\"]\n")).unwrap();
    common::drop_in(&server.plugins().join("http_get.wasm"), &std::fs::read(common::wasm("http_get")).unwrap());
    let mut target = target_of(&server);
    Arc::get_mut(&mut target).unwrap().upstream = upstream;
    // Wait for the plugin to load.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.block_on(async {
        let once = worker(target.clone(), Mode::HttpGet, Instant::now());
        tokio::task::spawn(once).await.is_err()
    }) {
        assert!(Instant::now() < deadline, "http_get did not load");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("\noutbound HTTP: one GET of a loopback upstream per call (the upstream runs in this process, on CPU 1)");
    println!("{:<44} {:>10} {:>10} {:>10} {:>14}", "case", "calls/s", "p50 ms", "p99 ms", "server CPU/call");
    for conc in [1usize, 16] {
        let mut got = Vec::new();
        for (name, mode) in [
            ("native GET, kept-alive connection", Mode::NativeGet),
            ("native GET, new connection", Mode::NativeGetFresh),
            ("tools/call disk_usage", Mode::Stateless),
            ("tools/call http_get", Mode::HttpGet),
        ] {
            let [rate, p50, p99, cpu] = measure(rt, server.pid, &target, mode, conc);
            got.push([p50, cpu]);
            let cpu = if matches!(mode, Mode::NativeGet | Mode::NativeGetFresh) {
                "-".to_owned()
            } else {
                format!("{cpu:.0} µs")
            };
            println!("{:<44} {rate:>10.0} {p50:>10.3} {p99:>10.3} {cpu:>14}", format!("{name} c={conc}"));
        }
        let egress = (got[3][0] - got[2][0]) * 1e3;
        println!(
            "c={conc}: the GET adds {egress:.0} µs (p50) to a call: {:.0} µs over a native GET on a kept-alive connection, {:.0} µs over one on a new connection; {:.0} µs of server CPU per call",
            egress - got[0][0] * 1e3,
            egress - got[1][0] * 1e3,
            got[3][1] - got[2][1]
        );
    }
    server.stop(false);
}
