//! Fleet mode with real parts on loopback: Debian's `redis-server` (on a
//! unix socket in a temp folder) and `nginx` (round-robin, the repository's
//! `deploy/nginx/moat.conf`) in front of three `moat serve` replicas that
//! share a plugins folder, a request-state key file and Redis. Clients: the
//! Python `mcp` SDK, the rmcp client, and plain HTTP for the 2026-07-28 era.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::common::{moat, wasm};
use crate::loopback::{Nginx, Proc, RedisServer};
use crate::server::{mint, spawn_serving};

const V2026: &str = "2026-07-28";

/// One `moat serve` of the fleet.
struct Replica {
    proc: Proc,
    /// `127.0.0.1:PORT` of its public listener.
    addr: String,
    admin: String,
}

impl Replica {
    fn start(dir: &Path, n: usize) -> Replica {
        let mut cmd = moat(&dir.join("cache"));
        cmd.args(["serve", "--dev", "--config", "moat.toml", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .current_dir(dir);
        let (child, url, admin) = spawn_serving(cmd, &dir.join(format!("replica{n}.log")), true);
        let admin = admin.expect("an admin listener");
        let addr = url.trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
        Replica { proc: Proc(child), addr, admin }
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin)).await.unwrap().text().await.unwrap()
    }

    async fn readyz(&self) -> Value {
        reqwest::get(format!("{}/readyz?verbose", self.admin)).await.unwrap().json().await.unwrap()
    }
}

/// Redis, three replicas and nginx, in one temp folder.
struct Fleet {
    dir: tempfile::TempDir,
    redis: Option<RedisServer>,
    replicas: Vec<Replica>,
    nginx: Nginx,
    token: String,
}

impl Fleet {
    /// `sidecar` is written as `everything.toml` beside the plugins.
    fn start(sidecar: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        for p in ["disk_usage", "everything"] {
            std::fs::copy(wasm(p), plugins.join(format!("{p}.wasm"))).unwrap();
        }
        std::fs::write(
            plugins.join("disk_usage.toml"),
            format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", plugins.display()),
        )
        .unwrap();
        std::fs::write(plugins.join("everything.toml"), sidecar).unwrap();
        let redis = RedisServer::start(dir.path());
        write_key(dir.path(), &[1]);
        std::fs::write(
            dir.path().join("moat.toml"),
            format!("[fleet]\nredis_url = \"{}\"\nstate_key_file = \"state.key\"\n", redis.url()),
        )
        .unwrap();
        let replicas: Vec<Replica> = (0..3).map(|n| Replica::start(dir.path(), n)).collect();
        let addrs: Vec<&str> = replicas.iter().map(|r| r.addr.as_str()).collect();
        let nginx = Nginx::start(dir.path(), &addrs);
        let token = mint(dir.path(), &[]);
        Fleet { dir, redis: Some(redis), replicas, nginx, token }
    }

    fn redis(&self) -> &RedisServer {
        self.redis.as_ref().expect("redis is running")
    }

    /// Distinct upstreams that served requests of each session (and "-"
    /// for requests with none).
    fn upstreams_by_session(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (session, upstream, _) in self.nginx.requests() {
            map.entry(session).or_default().insert(upstream);
        }
        map
    }

    fn replica_addrs(&self) -> BTreeSet<String> {
        self.replicas.iter().map(|r| r.addr.clone()).collect()
    }
}

/// Writes the state key file: one 32-byte key per fill byte, first seals.
fn write_key(dir: &Path, fills: &[u8]) {
    use base64::Engine as _;
    let lines: String =
        fills.iter().map(|f| format!("{}\n", base64::engine::general_purpose::STANDARD.encode([*f; 32]))).collect();
    let tmp = dir.join(".state.key.tmp");
    std::fs::write(&tmp, lines).unwrap();
    std::fs::rename(tmp, dir.join("state.key")).unwrap();
}

fn python() -> PathBuf {
    let p = std::env::var_os("MOAT_TEST_PYTHON").map(PathBuf::from).expect(
        "MOAT_TEST_PYTHON names a Python with the `mcp` SDK: `cargo xtask test` sets it (target/interop/py/bin/python)",
    );
    assert!(p.exists(), "MOAT_TEST_PYTHON={} does not exist", p.display());
    p
}

fn interop(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop").join(script)
}

fn run_python(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python()).args(args).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A 2026-07-28 request through `url`; returns (status, JSON body).
async fn modern(url: &str, token: &str, method: &str, mut params: Value, caps: Value) -> (u16, Value) {
    params["_meta"] =
        json!({"io.modelcontextprotocol/protocolVersion": V2026, "io.modelcontextprotocol/clientCapabilities": caps});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method);
    if let Some(name) = params["name"].as_str() {
        req = req.header("mcp-name", name);
    }
    let resp = req.body(body.to_string()).send().await.expect("sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .rev()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .unwrap_or(Value::Null)
    });
    (status, value)
}

/// The value of an unlabelled metric line.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_behind_round_robin_acts_as_one_server() {
    let fleet = Fleet::start("");
    let replicas = fleet.replica_addrs();

    // 2025-11-25: the Python SDK's session, each request on the next replica.
    let out = run_python(&[
        interop("python_fleet.py").as_os_str(),
        fleet.nginx.url.as_ref(),
        fleet.token.as_ref(),
        "12".as_ref(),
    ]);
    assert!(out.contains("ok:"), "{out}");
    let by_session = fleet.upstreams_by_session();
    let sessions: Vec<_> = by_session.iter().filter(|(s, _)| s.as_str() != "-").collect();
    assert!(!sessions.is_empty(), "no session requests in the access log");
    for (id, upstreams) in &sessions {
        assert_eq!(*upstreams, &replicas, "session {id} reached every replica");
    }

    // Its GET stream hears list_changed from whichever replica holds it, and
    // a 2026-07-28 listener does too, while the shared folder changes.
    let out = run_python(&[
        interop("python_listen.py").as_os_str(),
        fleet.nginx.url.as_ref(),
        fleet.token.as_ref(),
        fleet.dir.path().join("plugins").as_os_str(),
        wasm("trivial").as_os_str(),
    ]);
    assert!(out.contains("ok:"), "{out}");

    // 2026-07-28: a question asked on one replica, answered on another (the
    // sealed requestState opens everywhere), then the key rotated while a
    // question is open: the old state still opens on every replica.
    let url = &fleet.nginx.url;
    let token = &fleet.token;
    let caps = json!({"elicitation": {}});
    let args = json!({"name": "test_elicitation", "arguments": {"message": "who?"}});
    let mut answered = 0;
    for round in 0..6 {
        if round == 3 {
            write_key(fleet.dir.path(), &[2]);
        }
        let (status, asked) = modern(url, token, "tools/call", args.clone(), caps.clone()).await;
        assert_eq!(status, 200, "{asked}");
        let result = &asked["result"];
        assert_eq!(result["resultType"], "input_required", "{asked}");
        let state = result["requestState"].as_str().expect("a sealed state").to_owned();
        if round == 3 {
            // Every replica reads the new key within its check interval.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let mut retry = args.clone();
        retry["requestState"] = json!(state);
        retry["inputResponses"] =
            json!({"user_info": {"action": "accept", "content": {"username": "u", "email": "u@example.com"}}});
        let (status, done) = modern(url, token, "tools/call", retry, caps.clone()).await;
        assert_eq!(status, 200, "{done}");
        let text = done["result"]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("u@example.com"), "round {round}: {done}");
        answered += 1;
    }
    assert_eq!(answered, 6);
    let stateless = fleet.upstreams_by_session().remove("-").unwrap_or_default();
    assert_eq!(stateless, replicas, "2026-07-28 requests reached every replica");

    // A state sealed with a key no replica holds is refused everywhere.
    let mut forged = args.clone();
    forged["requestState"] = json!("rs2.bogus.bogus");
    forged["inputResponses"] = json!({"user_info": {"action": "decline"}});
    let (_, refused) = modern(url, token, "tools/call", forged, caps.clone()).await;
    assert!(refused["error"]["code"].is_i64(), "{refused}");

    // Every replica serves the same versions, and says so.
    let view = fleet.replicas[0].readyz().await;
    let digests: BTreeSet<String> = view["fleet"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(view["fleet"]["replicas"].as_array().unwrap().len(), 3, "{view}");
    assert_eq!(digests.len(), 1, "{view}");
    assert_eq!(view["fleet"]["in_step"], true, "{view}");
    let m = fleet.replicas[1].metrics().await;
    assert!(m.contains("moat_plugin_info{plugin=\"everything\",sha256=\""), "{m}");
    assert_eq!(metric(&m, "moat_fleet_redis_up"), Some(1.0), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_fleet_wide_and_redis_going_away_fails_no_call() {
    // test_image_content's limit is absurdly high: no limit a sidecar may set
    // puts Redis out of use (a 0 µs interval once made Redis refuse the script).
    let mut fleet = Fleet::start(
        "[tools.test_simple_text]\nrate_limit = { per_minute = 60, burst = 60 }\n\
         [tools.test_image_content]\nrate_limit = { per_minute = 4000000000, burst = 1 }\n",
    );
    let call = json!({"name": "test_simple_text", "arguments": {}});
    let started = Instant::now();
    let mut outcomes = BTreeMap::new();
    let url = fleet.nginx.url.clone();
    let token = fleet.token.clone();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (url, token, call) = (url.clone(), token.clone(), call.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..10 {
                    seen.push(modern(&url, &token, "tools/call", call.clone(), json!({})).await.0);
                }
                seen
            })
        })
        .collect();
    for t in tasks {
        for status in t.await.unwrap() {
            *outcomes.entry(status).or_insert(0u32) += 1;
        }
    }
    let took = started.elapsed();
    let allowed = outcomes.get(&200).copied().unwrap_or(0);
    let refused = outcomes.get(&429).copied().unwrap_or(0);
    // 60 at once, then one a second refills (fleet-wide); each replica alone
    // would have let 60 through (180 of the 160 sent).
    let refills = took.as_secs() as u32 + 1;
    assert!((60..=60 + refills).contains(&allowed), "allowed {allowed} in {took:?}: {outcomes:?}");
    assert_eq!(allowed + refused, 160, "{outcomes:?}");
    println!("fleet-wide limit 60/min: {allowed} of 160 allowed in {took:?}");
    // Redis decided each of them (no replica alone saw more than 60).
    let (mut fleet_allowed, mut fleet_refused) = (0.0, 0.0);
    for r in &fleet.replicas {
        let m = r.metrics().await;
        fleet_allowed += metric(&m, "moat_fleet_rate_limit_checks_total{result=\"allowed\"}").unwrap_or(0.0);
        fleet_refused += metric(&m, "moat_fleet_rate_limit_checks_total{result=\"refused\"}").unwrap_or(0.0);
    }
    assert_eq!((fleet_allowed, fleet_refused), (f64::from(allowed), f64::from(refused)), "decided in Redis");

    for _ in 0..6 {
        let image = json!({"name": "test_image_content", "arguments": {}});
        let (status, body) = modern(&fleet.nginx.url, &fleet.token, "tools/call", image, json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    for r in &fleet.replicas {
        let m = r.metrics().await;
        assert_eq!(metric(&m, "moat_fleet_redis_up"), Some(1.0), "{m}");
        assert_eq!(metric(&m, "moat_rate_limit_fallbacks_total"), Some(0.0), "{m}");
    }

    // A 2025-11-25 session that has met every replica (each restored it once).
    let other = mint(fleet.dir.path(), &["--sub", "session-user"]);
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(fleet.nginx.url.clone()).auth_header(other),
    );
    let session =
        ClientConfig::default().with_protocol_version(ProtocolVersion::V_2025_11_25).serve(transport).await.unwrap();
    let call_in_session = || session.call_tool(CallToolRequestParams::new("test_error_handling"));
    for _ in 0..4 {
        assert_eq!(call_in_session().await.unwrap().is_error, Some(true), "the tool's own error, not a failure");
    }

    // Redis stops: calls keep succeeding, limited by each replica's own limiter.
    let keys_before = fleet.redis().cli(&["DBSIZE"]);
    if let Some(mut r) = fleet.redis.take() {
        r.proc.kill();
    }
    let fresh = mint(fleet.dir.path(), &["--sub", "after-redis"]);
    let mut ok = 0;
    for _ in 0..30 {
        let (status, body) = modern(&fleet.nginx.url, &fresh, "tools/call", call.clone(), json!({})).await;
        assert_eq!(status, 200, "with Redis gone: {body}");
        ok += 1;
    }
    assert_eq!(ok, 30);
    for _ in 0..6 {
        let r = call_in_session().await.expect("the session carries on without Redis");
        assert_eq!(r.is_error, Some(true));
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), session.cancel()).await;
    let (mut warned, mut fallbacks) = (0, 0.0);
    for r in &fleet.replicas {
        let m = r.metrics().await;
        if metric(&m, "moat_fleet_redis_up") == Some(0.0) {
            warned += 1;
        }
        fallbacks += metric(&m, "moat_rate_limit_fallbacks_total").unwrap_or(0.0);
    }
    assert!(warned >= 1, "a replica reports Redis down (Redis had {keys_before} keys)");
    assert_eq!(fallbacks, 30.0, "each call decided by its replica's own limiter, and counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_a_replica_under_load_loses_only_its_calls_in_flight() {
    let mut fleet = Fleet::start("");
    let url = fleet.nginx.url.clone();
    let token = fleet.token.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (url, token, stop, killed_at) = (url.clone(), token.clone(), stop.clone(), killed_at.clone());
            let (ok, failed) = (ok.clone(), failed.clone());
            tokio::spawn(async move {
                let transport = StreamableHttpClientTransport::from_config(
                    StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
                );
                let client = ClientConfig::default()
                    .with_protocol_version(ProtocolVersion::V_2025_11_25)
                    .serve(transport)
                    .await
                    .expect("a session through nginx");
                let mut ok_after_kill = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A call on the killed replica never gets its answer: the
                    // client gives up on it after a while (counted as lost).
                    let call = client.call_tool(CallToolRequestParams::new("test_simple_text"));
                    match tokio::time::timeout(Duration::from_secs(2), call).await {
                        Ok(Ok(r)) if r.is_error != Some(true) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            let after =
                                killed_at.lock().unwrap().is_some_and(|t| t.elapsed() > Duration::from_millis(500));
                            ok_after_kill += u32::from(after);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), client.cancel()).await;
                ok_after_kill
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = ok.load(Ordering::Relaxed);
    fleet.replicas[1].proc.kill();
    *killed_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut continued = 0;
    for c in clients {
        if c.await.unwrap() > 0 {
            continued += 1;
        }
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("replica killed under 16 clients: {ok} calls ok ({before} before the kill), {failed} lost");
    assert!(before > 16, "load was running before the kill: {before}");
    assert!(failed <= 16, "only calls in flight on the killed replica fail (one per client at most): {failed}");
    assert_eq!(continued, 16, "every session continued on the other replicas");
}
