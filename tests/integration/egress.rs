//! Outbound HTTP: plugins reach granted origins only, through the host's own
//! resolver and connector, under the call's caps, with secrets added at the
//! egress. Every case runs against a real HTTP server on loopback that the test
//! starts and stops.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use moat::config::{Limits, PluginSettings};
use moat::runtime::types::PluginEvent;
use moat::runtime::{CallContext, CallError, LoadedPlugin};
use serde_json::{Value, json};

use crate::common::*;
use crate::server::{Server, modern_request};

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    hits: AtomicU64,
    bytes_served: AtomicU64,
    bytes_received: AtomicU64,
}

/// A real HTTP server on 127.0.0.1, stopped when dropped.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Seen>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/hello", get(|| async { "hello from upstream" }))
            .route("/echo", any(echo))
            .route("/redirect", get(|| async { (StatusCode::FOUND, [("location", "/hello")], "") }))
            .route("/hang", get(hang))
            .route("/stall", get(stall))
            .route("/huge", get(huge))
            .route("/huge-declared", get(huge_declared))
            .layer(axum::middleware::from_fn_with_state(seen.clone(), count))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Upstream { addr, seen, _stop: tx }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> u64 {
        self.seen.hits.load(Ordering::Relaxed)
    }
}

async fn count(State(seen): State<Arc<Seen>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    seen.hits.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

/// Reflects the method, the headers and the body's length.
async fn echo(
    State(seen): State<Arc<Seen>>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    seen.bytes_received.fetch_add(body.len() as u64, Ordering::Relaxed);
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), json!(String::from_utf8_lossy(v.as_bytes())))).collect();
    axum::Json(json!({"method": method.as_str(), "headers": headers, "body_len": body.len()}))
}

/// Headers, one chunk, then nothing ever again.
async fn hang() -> Response {
    let chunks =
        futures_util::stream::once(async { Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"start")) })
            .chain(futures_util::stream::pending());
    Response::new(Body::from_stream(chunks))
}

use futures_util::StreamExt as _;

/// Never answers.
async fn stall() -> Response {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Response::new(Body::empty())
}

/// 1 GiB, chunked, as fast as the reader takes it.
fn gib_stream(seen: Arc<Seen>) -> Body {
    const CHUNK: usize = 64 << 10;
    let zeros = axum::body::Bytes::from(vec![0u8; CHUNK]);
    let chunks = futures_util::stream::iter(0..(1u64 << 30) / CHUNK as u64).map(move |_| {
        seen.bytes_served.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(zeros.clone())
    });
    Body::from_stream(chunks)
}

async fn huge(State(seen): State<Arc<Seen>>) -> Response {
    Response::new(gib_stream(seen))
}

/// 1 GiB announced by `Content-Length`.
async fn huge_declared(State(seen): State<Arc<Seen>>) -> Response {
    let mut r = Response::new(gib_stream(seen));
    r.headers_mut().insert("content-length", (1u64 << 30).into());
    r
}

/// The fetcher plugin under `sidecar` (parsed as the host parses sidecars).
async fn fetcher(sidecar: &str) -> LoadedPlugin {
    let dir = tempfile::tempdir().unwrap();
    let settings = PluginSettings::parse_sidecar(sidecar, &dir.path().join("fetcher.toml"), Limits::default())
        .unwrap_or_else(|e| panic!("sidecar: {e}"));
    load("fetcher", settings).await
}

async fn fetch(p: &LoadedPlugin, args: Value) -> Result<Value, CallError> {
    runtime().call_tool(p, "fetch", &args, &CallContext::default()).await.map(|o| o.structured.expect("structured"))
}

/// A call's result and the log notifications it sent.
async fn fetch_logged(p: &LoadedPlugin, args: Value) -> (Result<Value, CallError>, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let ctx = CallContext { events: Some(tx), ..Default::default() };
    let r = runtime().call_tool(p, "fetch", &args, &ctx).await.map(|o| o.structured.expect("structured"));
    let mut logs = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let PluginEvent::Log { message, .. } = e {
            logs.push(message);
        }
    }
    (r, logs)
}

fn failed(r: Result<Value, CallError>) -> String {
    match r {
        Err(CallError::Failed(m)) => m,
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grant_every_request_is_denied_naming_the_origin() {
    let up = Upstream::start().await;
    let p = fetcher("").await;
    let url = format!("{}/hello", up.origin());
    let (r, logs) = fetch_logged(&p, json!({"url": url})).await;
    let m = failed(r);
    assert!(m.contains(&format!("refused the request to {}", up.origin())) && m.contains("HttpRequestDenied"), "{m}");
    assert!(logs.iter().any(|l| l.contains(&format!("{} is not granted", up.origin()))), "{logs:?}");
    assert_eq!(up.hits(), 0, "nothing reached the upstream");
    // The plugin keeps working.
    let out = runtime().call_tool(&p, "getenv", &json!({"name": "PATH"}), &CallContext::default()).await.unwrap();
    assert!(matches!(&out.content[0], moat::runtime::types::Content::Text(t) if t == "<unset>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_origin_answers_and_redirects_are_not_followed() {
    let up = Upstream::start().await;
    let p = fetcher(&format!("[grants]\nhttp = [\"{}\"]\n", up.origin())).await;
    let got = fetch(&p, json!({"url": format!("{}/hello", up.origin())})).await.unwrap();
    assert_eq!((got["status"].as_u64(), got["body"].as_str()), (Some(200), Some("hello from upstream")));
    let got = fetch(&p, json!({"url": format!("{}/redirect", up.origin())})).await.unwrap();
    assert_eq!(got["status"], 302, "the redirect comes back to the plugin");
    assert_eq!(up.hits(), 2, "the host did not follow the redirect");
    // HEAD announces a length it does not send: no cap is passed.
    let got = fetch(&p, json!({"url": format!("{}/huge-declared", up.origin()), "method": "HEAD"})).await.unwrap();
    assert_eq!((got["status"].as_u64(), got["bytes"].as_u64()), (Some(200), Some(0)));
    // TRACE would echo secret headers back; CONNECT asks for a tunnel.
    for method in ["TRACE", "CONNECT"] {
        let (r, logs) = fetch_logged(&p, json!({"url": format!("{}/echo", up.origin()), "method": method})).await;
        assert!(failed(r).contains("HttpRequestMethodInvalid"), "{method}");
        assert!(logs.iter().any(|l| l.contains(&format!("the method {method} is not allowed"))), "{logs:?}");
    }
    assert_eq!(up.hits(), 3, "TRACE and CONNECT never left the host");
    // The request line carries the path only, and Host is the authority.
    let got = fetch(&p, json!({"url": format!("{}/echo?x=1", up.origin())})).await.unwrap();
    let echo: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["headers"]["host"], up.addr.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_spellings_that_reach_special_addresses_are_denied() {
    let up = Upstream::start().await;
    let port = up.addr.port();
    // Everything by wildcard, `localhost` by name, TLS to the loopback IP:
    // still no name or spelling reaches a special address.
    let sidecar = format!(
        "[grants]\nhttp = [\"http://*:*\", \"http://localhost:{port}\", \"http://*.example.test:{port}\", \"https://127.0.0.1:{port}\"]\n"
    );
    let p = fetcher(&sidecar).await;
    let cases = [
        (format!("http://localhost:{port}/hello"), "loopback"),
        (format!("http://127.0.0.1:{port}/hello"), "loopback"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "link-local and cloud metadata"),
        (format!("http://[::1]:{port}/hello"), "loopback (::1/128)"),
        (format!("http://[::ffff:127.0.0.1]:{port}/hello"), "IPv4-mapped"),
        (format!("http://2130706433:{port}/hello"), "dotted quad"),
        (format!("http://0177.0.0.1:{port}/hello"), "dotted quad"),
        (format!("http://0x7f000001:{port}/hello"), "dotted quad"),
        ("http://10.0.0.1/".to_owned(), "private (10.0.0.0/8)"),
        ("http://100.100.100.200/".to_owned(), "CGNAT"),
    ];
    for (url, why) in &cases {
        let (r, logs) = fetch_logged(&p, json!({"url": url})).await;
        let m = failed(r);
        assert!(m.contains("refused") || m.contains("HttpRequestUriInvalid"), "{url}: {m}");
        assert!(logs.iter().any(|l| l.contains(why)), "{url}: {logs:?}");
    }
    // Origins that differ from every grant in scheme, port or name.
    let strict = fetcher(&format!(
        "[grants]\nhttp = [\"http://*.example.test:{port}\", \"https://127.0.0.1:{port}\", \"http://127.0.0.1:{}\"]\n",
        port - 1
    ))
    .await;
    for url in [
        format!("http://127.0.0.1:{port}/hello"), // https granted, not http; and the other port
        format!("http://example.test:{port}/hello"), // the wildcard's bare domain
        format!("http://127.0.0.1.example.test.evil:{port}/"),
    ] {
        let (r, logs) = fetch_logged(&strict, json!({"url": url})).await;
        assert!(failed(r).contains("HttpRequestDenied"), "{url}");
        assert!(logs.iter().any(|l| l.contains("is not granted")), "{url}: {logs:?}");
    }
    // A granted subdomain passes the grant and then must resolve (it does not).
    let m = failed(fetch(&strict, json!({"url": format!("http://api.example.test:{port}/")})).await);
    assert!(m.contains("DnsError"), "{m}");
    // TLS to a plain HTTP server fails in the handshake, after the grant passed.
    let m = failed(fetch(&p, json!({"url": format!("https://127.0.0.1:{port}/hello")})).await);
    assert!(m.contains("https://127.0.0.1") && !m.contains("refused"), "{m}");
    assert_eq!(up.hits(), 0, "no request reached the upstream: {}", up.hits());
    // Granting the loopback address itself lets it through.
    let ok = fetcher(&format!("[grants]\nhttp = [\"http://127.0.0.0/8:{port}\"]\n")).await;
    let got = fetch(&ok, json!({"url": format!("http://127.0.0.1:{port}/hello")})).await.unwrap();
    assert_eq!(got["status"], 200);
}

fn limited(up: &Upstream, limits: &str) -> String {
    format!("[grants]\nhttp = [\"{}\"]\n[limits]\n{limits}\n", up.origin())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_that_never_end_are_ended_by_the_deadline() {
    let up = Upstream::start().await;
    let p = fetcher(&limited(&up, "timeout_ms = 800")).await;
    for path in ["/hang", "/stall"] {
        let started = Instant::now();
        let r = fetch(&p, json!({"url": format!("{}{path}", up.origin())})).await;
        let took = started.elapsed();
        // The host clamps wasi-http's 600 s timeouts to what the call has left.
        match r {
            Err(CallError::Timeout(800)) => {}
            Err(CallError::Failed(m)) if m.contains("ConnectionReadTimeout") => {}
            other => panic!("{path}: expected the deadline, got {other:?}"),
        }
        assert!(took < Duration::from_secs(5), "{path} took {took:?}");
    }
    // The plugin asked for 100 ms: it gets a read timeout, not the call's deadline.
    let m = failed(fetch(&p, json!({"url": format!("{}/stall", up.origin()), "timeout_ms": 100})).await);
    assert!(m.contains("ConnectionReadTimeout"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_response_is_capped() {
    let up = Upstream::start().await;
    let p = fetcher(&limited(&up, "max_http_response_bytes = 1048576\nmemory_mb = 64")).await;
    for path in ["/huge", "/huge-declared"] {
        let before = up.seen.bytes_served.load(Ordering::Relaxed);
        let r = fetch(&p, json!({"url": format!("{}{path}", up.origin()), "max_body": 2u64 << 30})).await;
        match r {
            Err(CallError::HttpLimit(m)) => assert!(m.contains("max_http_response_bytes"), "{m}"),
            other => panic!("{path}: expected the response cap, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let served = up.seen.bytes_served.load(Ordering::Relaxed) - before;
        assert!(
            served < 64 << 20,
            "{path}: the upstream kept sending ({served} bytes): the connection was not dropped"
        );
    }
    let got = fetch(&p, json!({"url": format!("{}/hello", up.origin())})).await.unwrap();
    assert_eq!(got["status"], 200, "the next call starts with a fresh budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_in_one_call_are_capped() {
    let up = Upstream::start().await;
    let p = fetcher(&limited(&up, "")).await;
    let r = fetch(&p, json!({"url": format!("{}/hello", up.origin()), "repeat": 1000})).await;
    match r {
        Err(CallError::HttpLimit(m)) => assert!(m.contains("more than 64 HTTP requests (max_http_requests)"), "{m}"),
        other => panic!("expected the request cap, got {other:?}"),
    }
    assert_eq!(up.hits(), 64, "exactly the default cap reached the upstream");
    let p = fetcher(&limited(&up, "max_http_request_bytes = 1000")).await;
    let r = fetch(&p, json!({"url": format!("{}/echo", up.origin()), "method": "POST", "body_bytes": 5000})).await;
    match r {
        Err(CallError::HttpLimit(m)) => assert!(m.contains("max_http_request_bytes"), "{m}"),
        other => panic!("expected the request-bytes cap, got {other:?}"),
    }
    assert_eq!(up.seen.bytes_received.load(Ordering::Relaxed), 0, "no oversized body was delivered");
}

/// Calls a tool over MCP (2026-07-28) and returns its result.
async fn call(s: &Server, tool: &str, arguments: Value) -> Value {
    let r = modern_request(&s.url, &s.token, "tools/call", json!({"name": tool, "arguments": arguments}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["result"].clone()
}

fn sidecar(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

const SECRET: &str = "s3cr3t-egress-value-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_moat_serve_secrets_go_only_where_granted_and_grants_reload() {
    let a = Upstream::start().await;
    let b = Upstream::start().await;
    let (oa, ob) = (a.origin(), b.origin());
    let fetcher_toml = format!(
        "[grants]\nhttp = [\"{oa}\", \"{ob}\"]\nenv = [\"MOAT_EGRESS_VISIBLE\"]\n\
         [[grants.http_headers]]\norigin = \"{oa}\"\nheader = \"Authorization\"\nvalue_env = \"MOAT_EGRESS_SECRET\"\nvalue_prefix = \"Bearer \"\n"
    );
    // The variables go to the server's process only.
    let s = Server::start_with_env(
        &["--admin-listen", "127.0.0.1:0"],
        &[("MOAT_EGRESS_SECRET", SECRET), ("MOAT_EGRESS_VISIBLE", "visible"), ("MOAT_LOG", "info")],
        |plugins| {
            std::fs::copy(wasm("fetcher"), plugins.join("fetcher.wasm")).unwrap();
            std::fs::copy(wasm("http_get"), plugins.join("http_get.wasm")).unwrap();
            std::fs::write(plugins.join("fetcher.toml"), &fetcher_toml).unwrap();
        },
    );
    let echo = async |url: String, headers: Value| {
        let r = call(&s, "fetch", json!({"url": url, "headers": headers})).await;
        assert_ne!(r["isError"], true, "{r}");
        let body: Value = serde_json::from_str(r["structuredContent"]["body"].as_str().unwrap()).unwrap();
        body["headers"].clone()
    };
    // The granted origin gets the secret, replacing what the plugin set.
    let seen = echo(format!("{oa}/echo"), json!([{"name": "Authorization", "value": "plugin-made"}])).await;
    assert_eq!(seen["authorization"], format!("Bearer {SECRET}"));
    // Any other origin never carries it; the plugin's own header passes.
    let seen = echo(format!("{ob}/echo"), json!([])).await;
    assert!(seen.get("authorization").is_none(), "{seen}");
    let seen = echo(format!("{ob}/echo"), json!([{"name": "Authorization", "value": "mine"}])).await;
    assert_eq!(seen["authorization"], "mine");
    // The plugin cannot read it; it reads what it was granted.
    let env = call(&s, "getenv", json!({"name": "MOAT_EGRESS_SECRET"})).await;
    assert_eq!(env["content"][0]["text"], "<unset>");
    let env = call(&s, "getenv", json!({"name": "MOAT_EGRESS_VISIBLE"})).await;
    assert_eq!(env["content"][0]["text"], "visible");

    // http_get, the first-party plugin: denied until a sidecar edit grants it.
    let url = format!("{ob}/hello");
    let r = call(&s, "http_get", json!({"url": url})).await;
    assert_eq!(r["isError"], true);
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains(&ob) && text.contains("not granted"), "{text}");
    sidecar(&s.plugins(), "http_get.toml", &format!("[grants]\nhttp = [\"{ob}\"]\n"));
    let start = Instant::now();
    let r = loop {
        let r = call(&s, "http_get", json!({"url": url})).await;
        if r["isError"] != true || start.elapsed() > Duration::from_secs(15) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let st = &r["structuredContent"];
    assert_eq!((st["status"].as_u64(), st["body"].as_str()), (Some(200), Some("hello from upstream")), "{r}");
    assert!(st["content_type"].as_str().unwrap().starts_with("text/plain"), "{r}");
    assert_eq!(st["truncated"], false);

    // Audit lines and metrics, and never the secret.
    let admin = s.admin.clone().unwrap();
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("moat_egress_requests_total{plugin=\"fetcher\",outcome=\"ok\"} 3"), "{metrics}");
    assert!(metrics.contains("moat_egress_requests_total{plugin=\"http_get\",outcome=\"denied\"}"), "{metrics}");
    assert!(metrics.contains("moat_egress_requests_total{plugin=\"http_get\",outcome=\"ok\"} 1"), "{metrics}");
    let log = s.log();
    assert!(log.contains("outbound request"), "{log}");
    assert!(log.contains("outcome=\"denied\"") || log.contains("outcome=denied"), "{log}");
    assert!(!log.contains(SECRET), "the secret reached the log");
    drop(s);
}
