//! `moat serve` as a process: stdio transport, the admin listener, refusing to
//! listen without a lock, and graceful shutdown with a call in flight.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{moat, stderr, wasm};
use crate::server::{Server, modern_request};

#[test]
fn stdio_serves_initialize_list_call_and_hot_reload() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(wasm("everything"), plugins.join("everything.wasm")).unwrap();
    let child = moat(&dir.path().join("cache"))
        .args(["serve", "--stdio", "--plugins"])
        .arg(&plugins)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = crate::common::Stopped(child);
    let mut stdin = child.0.stdin.take().unwrap();
    let lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    let recv = || -> Value {
        let line = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a message from the stdio server");
        serde_json::from_str(&line).unwrap()
    };
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    let init = recv();
    assert_eq!(init["result"]["serverInfo"]["name"], "moat");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let list = recv();
    assert!(list["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "test_simple_text"));
    send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "test_simple_text", "arguments": {}}}),
    );
    let call = recv();
    assert_eq!(call["result"]["content"][0]["text"], "This is a simple text response for testing.");
    // stdio is the local operator: no token, every tool; errors are coded as
    // over HTTP (an unknown tool is -32602 there too).
    send(
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}}),
    );
    let unknown = recv();
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    // Hot reload reaches stdio clients too.
    std::fs::copy(wasm("trivial"), plugins.join(".trivial.tmp")).unwrap();
    std::fs::rename(plugins.join(".trivial.tmp"), plugins.join("trivial.wasm")).unwrap();
    assert_eq!(recv(), json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
    send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}));
    let list = recv();
    assert!(list["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "noop"), "{list}");
    drop(stdin);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "stdio server exits cleanly when stdin closes: {status}");
}

#[test]
fn serve_refuses_to_listen_without_auth_or_beyond_loopback_in_dev() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        moat(dir.path()).args(["serve", "--listen", "127.0.0.1:0", "--plugins"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refusing to serve without authentication"), "{}", stderr(&out));
    let out = moat(dir.path())
        .args(["serve", "--dev", "--listen", "0.0.0.0:0", "--plugins"])
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}

#[test]
fn dev_mode_and_a_configured_identity_provider_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let with_idp = "[auth]\nissuer = \"https://idp.test\"\naudience = \"https://moat.test/mcp\"\njwks_uri = \"http://127.0.0.1:9/jwks\"\n";
    std::fs::write(dir.path().join("idp.toml"), with_idp).unwrap();
    let out = moat(dir.path())
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--config", "idp.toml", "--plugins", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("drop --dev or the [auth] section"), "{}", stderr(&out));
    let dev_issuer = with_idp.replace("https://idp.test", "moat-dev");
    std::fs::write(dir.path().join("dev.toml"), dev_issuer).unwrap();
    let out = moat(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--config", "dev.toml", "--plugins", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("dev issuer"), "{}", stderr(&out));
}

#[tokio::test]
async fn admin_listener_reports_metrics_and_failed_plugins() {
    let s = Server::start_with(&["--admin-listen", "127.0.0.1:0"], |plugins| {
        std::fs::write(plugins.join("broken.wasm"), b"not a component").unwrap();
    });
    let admin = s.admin.clone().expect("admin listener");
    let call = json!({"name": "test_simple_text", "arguments": {}});
    let r = modern_request(&s.url, &s.token, "tools/call", call).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("moat_tool_calls_total{tool=\"test_simple_text\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("moat_plugin_loads_total{outcome=\"failed\"} 1"), "{metrics}");
    assert!(metrics.contains("moat_tool_call_duration_seconds_count{tool=\"test_simple_text\"} 1"), "{metrics}");
    let ready: Value = reqwest::get(format!("{admin}/readyz?verbose")).await.unwrap().json().await.unwrap();
    let failed = ready["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["file"].as_str().unwrap().ends_with("broken.wasm"));
    // The main listener says only that it is ready, and serves no metrics.
    let main = s.url.trim_end_matches("/mcp");
    assert_eq!(reqwest::get(format!("{main}/readyz")).await.unwrap().text().await.unwrap(), "ready\n");
    assert_eq!(reqwest::get(format!("{main}/metrics")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn shutdown_lets_a_call_in_flight_finish() {
    let mut s = Server::start_with(&["--admin-listen", "127.0.0.1:0"], |plugins| {
        std::fs::copy(wasm("hostile"), plugins.join("hostile.wasm")).unwrap();
    });
    let admin = s.admin.clone().unwrap();
    let req = modern_request(&s.url, &s.token, "tools/call", json!({"name": "sleep", "arguments": {"n": 1500}})).send();
    let in_flight = tokio::spawn(req);
    // SIGTERM once the call is running (on a loaded machine the request may
    // take a while to reach the plugin).
    for _ in 0..200 {
        let m = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
        if m.lines().any(|l| l == "moat_calls_in_flight 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = s.terminate();
        (status, s)
    });
    let reply = in_flight.await.unwrap().expect("the call in flight gets its answer");
    let body = reply.text().await.unwrap();
    assert!(body.contains("awake"), "{body}");
    let (status, _s) = status.await.unwrap();
    assert!(status.success(), "moat serve exits cleanly on SIGTERM: {status}");
}

/// A client that goes away ends the plugin instance running its call.
#[tokio::test]
async fn a_disconnect_ends_the_running_instance() {
    let s = Server::start_with(&["--admin-listen", "127.0.0.1:0"], |plugins| {
        std::fs::copy(wasm("hostile"), plugins.join("hostile.wasm")).unwrap();
    });
    let admin = s.admin.clone().unwrap();
    let in_flight = || async {
        let m = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
        m.lines().find_map(|l| l.strip_prefix("moat_calls_in_flight ")).unwrap().parse::<u32>().unwrap()
    };
    let req = modern_request(&s.url, &s.token, "tools/call", json!({"name": "sleep", "arguments": {"n": 4000}})).send();
    let task = tokio::spawn(req);
    let mut seen = false;
    for _ in 0..100 {
        if in_flight().await == 1 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "the call is running");
    task.abort();
    let started = std::time::Instant::now();
    while in_flight().await != 0 {
        assert!(started.elapsed() < Duration::from_secs(2), "the instance outlived its client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One audit event per tool call: who, which tool and plugin version, outcome,
/// duration; never the token.
#[test]
fn every_tool_call_is_audited_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(wasm("everything"), plugins.join("everything.wasm")).unwrap();
    let log = std::fs::File::create(dir.path().join("moat.log")).unwrap();
    let child = moat(&dir.path().join("cache"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("MOAT_LOG", "moat::audit=info")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut child = crate::common::Stopped(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("moat: serving MCP at ").map(|r| r.split_whitespace().next().unwrap().to_owned()))
        .unwrap();
    let token = crate::server::mint(dir.path(), &["--sub", "auditor"]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_error_handling", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let out = std::process::Command::new("curl")
        .args(["-sS", &url, "-H", &format!("Authorization: Bearer {token}"), "-H", "Content-Type: application/json"])
        .args(["-H", "Accept: application/json, text/event-stream", "-H", "MCP-Protocol-Version: 2026-07-28"])
        .args(["-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: test_error_handling", "-d", &body.to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("intentionally"), "{out:?}");
    drop(child);
    let log = std::fs::read_to_string(dir.path().join("moat.log")).unwrap();
    let line = log.lines().find(|l| l.contains("tool call")).unwrap_or_else(|| panic!("no audit event in {log}"));
    for field in [
        "subject=\"auditor\"",
        "client_id=\"moat-dev\"",
        "tool=test_error_handling",
        "plugin=everything",
        "outcome=\"tool_error\"",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    assert!(!log.contains(&token), "the token must never be logged");
}
