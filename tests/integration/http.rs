//! MCP over HTTP against a real `moat serve --dev`: the rmcp client in both
//! protocol eras, auth, and every kind of bad input named by the spec.

use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion, object};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Value, json};

use crate::server::{Server, mint};

const V2026: &str = "2026-07-28";

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": V2026, "io.modelcontextprotocol/clientCapabilities": {}})
}

/// A 2026-07-28 request body with its required `_meta`.
fn modern(id: u64, method: &str, mut params: Value) -> Value {
    params["_meta"] = meta();
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// POSTs `body` (raw) with `headers` on top of an authorised JSON request.
async fn post_raw(s: &Server, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    map.insert("accept", HeaderValue::from_static("application/json, text/event-stream"));
    for (k, v) in headers {
        // Replace a default; a repeated extra name is sent twice on purpose.
        let name = HeaderName::from_bytes(k.as_bytes()).unwrap();
        if matches!(name.as_str(), "content-type" | "accept") {
            map.insert(name, HeaderValue::from_str(v).unwrap());
        } else {
            map.append(name, HeaderValue::from_str(v).unwrap());
        }
    }
    let req = reqwest::Client::new().post(&s.url).bearer_auth(&s.token).headers(map);
    let resp = req.body(body).send().await.expect("request sent");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.unwrap_or_default();
    // SSE: the last `data:` line holding JSON is the reply.
    let body = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .rev()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .unwrap_or(Value::Null)
    });
    Reply { status, headers, body }
}

/// A well-formed 2026-07-28 request, with its headers.
async fn call_modern(s: &Server, body: &Value, extra: &[(&str, &str)]) -> Reply {
    let method = body["method"].as_str().unwrap().to_owned();
    let name = body["params"]["name"].as_str().or(body["params"]["uri"].as_str()).map(str::to_owned);
    let mut headers = vec![("MCP-Protocol-Version", V2026), ("Mcp-Method", method.as_str())];
    if let Some(n) = &name {
        headers.push(("Mcp-Name", n));
    }
    headers.extend_from_slice(extra);
    post_raw(s, &headers, body.to_string()).await
}

/// The server still answers a real tool call.
async fn still_serving(s: &Server) {
    let r = call_modern(s, &modern(99, "tools/call", json!({"name": "test_simple_text", "arguments": {}})), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["result"]["content"][0]["text"], "This is a simple text response for testing.");
}

fn code(r: &Reply) -> i64 {
    r.body["error"]["code"].as_i64().unwrap_or_else(|| panic!("no JSON-RPC error in {:?}", r.body))
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_in_the_session_era() {
    let s = Server::start();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.url.clone()).auth_header(s.token.clone()),
    );
    let client =
        ClientConfig::default().with_protocol_version(ProtocolVersion::V_2025_11_25).serve(transport).await.unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "moat");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "disk_usage"), "disk_usage listed");
    let du = tools.iter().find(|t| t.name == "disk_usage").unwrap();
    assert!(du.output_schema.is_some() && du.annotations.as_ref().unwrap().read_only_hint == Some(true));
    let r = client
        .call_tool(CallToolRequestParams::new("disk_usage").with_arguments(object(json!({"path": "/"}))))
        .await
        .unwrap();
    let st = r.structured_content.unwrap();
    let (total, used, free) =
        (st["total_bytes"].as_u64().unwrap(), st["used_bytes"].as_u64().unwrap(), st["free_bytes"].as_u64().unwrap());
    let (t, _, _) = crate::common::statvfs(s.dir.path());
    assert_eq!(total, t, "total matches statvfs of the granted directory");
    assert!(used + free <= total);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_statelessly() {
    let s = Server::start();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.url.clone()).auth_header(s.token.clone()),
    );
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] },
        )
        .await
        .unwrap();
    assert_eq!(client.peer_info().unwrap().protocol_version, ProtocolVersion::V_2026_07_28);
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "test_simple_text"));
    let r = client.call_tool(CallToolRequestParams::new("test_error_handling")).await.unwrap();
    assert_eq!(r.is_error, Some(true), "a failing tool is an isError result");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn no_token_or_a_bad_token_gets_401_and_no_plugin_runs() {
    let s = Server::start();
    let body = modern(1, "tools/list", json!({})).to_string();
    for token in [None, Some("not-a-jwt"), Some(&*s.token.replace('.', "x."))] {
        let mut req = reqwest::Client::new().post(&s.url).header("Content-Type", "application/json").body(body.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with("Bearer resource_metadata=\"")
                && challenge.contains("/.well-known/oauth-protected-resource/mcp"),
            "{challenge}"
        );
        assert_eq!(challenge.contains("error=\"invalid_token\""), token.is_some(), "{challenge}");
    }
    // An expired token, signed by the right key.
    let expired = mint(s.dir.path(), &["--ttl", "1s"]);
    tokio::time::sleep(std::time::Duration::from_secs(32)).await; // past the 30 s leeway
    let r = reqwest::Client::new()
        .post(&s.url)
        .bearer_auth(&expired)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The rmcp client surfaces the challenge.
    let transport =
        StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(s.url.clone()));
    let Err(err) = ClientConfig::default().serve(transport).await else { panic!("no token, no session") };
    assert!(err.is_authorization_required(), "{err}");
    still_serving(&s).await;
}

#[tokio::test]
async fn health_and_protected_resource_metadata() {
    let s = Server::start();
    let get = |p: &str| reqwest::get(format!("{}{p}", s.base()));
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let meta: Value = get("/.well-known/oauth-protected-resource/mcp").await.unwrap().json().await.unwrap();
    assert_eq!(meta["resource"], s.url);
    assert_eq!(meta["bearer_methods_supported"], json!(["header"]));
    assert!(meta["scopes_supported"].as_array().unwrap().contains(&json!("tools:read")));
}

#[tokio::test]
async fn malformed_envelopes_get_jsonrpc_errors() {
    let s = Server::start();
    let r = post_raw(&s, &[], "{not json").await;
    assert_eq!((r.status, code(&r)), (400, -32700), "parse error");
    let r = post_raw(&s, &[], json!([modern(1, "tools/list", json!({}))]).to_string()).await;
    assert_eq!((r.status, code(&r)), (400, -32600), "batch");
    let r = post_raw(&s, &[], json!({"jsonrpc": "1.0", "id": 7, "method": "tools/list"}).to_string()).await;
    assert_eq!((r.status, code(&r), r.body["id"].clone()), (400, -32600, json!(7)), "wrong jsonrpc");
    let r = post_raw(&s, &[("Content-Type", "text/plain")], modern(1, "tools/list", json!({})).to_string()).await;
    assert_eq!(r.status, 415, "wrong content type");
    let r = post_raw(&s, &[("Origin", "https://evil.example")], modern(1, "tools/list", json!({})).to_string()).await;
    assert_eq!(r.status, 403, "disallowed Origin");
    let r = post_raw(&s, &[("Host", "evil.example.com")], modern(1, "tools/list", json!({})).to_string()).await;
    assert_eq!(r.status, 403, "DNS rebinding: a Host that is not ours");
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(2 << 20)
    );
    let r = post_raw(&s, &[], huge).await;
    assert_eq!(r.status, 413, "huge body");
    still_serving(&s).await;
}

#[tokio::test]
async fn stateless_protocol_errors() {
    let s = Server::start();
    let r = call_modern(&s, &modern(1, "no/such/method", json!({})), &[]).await;
    assert_eq!((r.status, code(&r), r.body["id"].clone()), (404, -32601, json!(1)), "unknown method");
    let r = call_modern(&s, &modern(2, "ping", json!({})), &[]).await;
    assert_eq!((r.status, code(&r)), (404, -32601), "ping is gone in 2026-07-28");
    // Missing protocol header with a 2026 _meta.
    let body = modern(3, "tools/list", json!({}));
    let r = post_raw(&s, &[("Mcp-Method", "tools/list")], body.to_string()).await;
    assert_eq!((r.status, code(&r)), (400, -32020), "missing MCP-Protocol-Version");
    let r = call_modern(&s, &body, &[("Mcp-Method", "prompts/list")]).await;
    assert_eq!(r.status, 400, "duplicate/mismatched Mcp-Method: {:?}", r.body);
    let r = post_raw(&s, &[("MCP-Protocol-Version", V2026), ("Mcp-Method", "prompts/list")], body.to_string()).await;
    assert_eq!((r.status, code(&r)), (400, -32020), "Mcp-Method differs from the body");
    let call = modern(4, "tools/call", json!({"name": "test_simple_text", "arguments": {}}));
    let r = post_raw(&s, &[("MCP-Protocol-Version", V2026), ("Mcp-Method", "tools/call")], call.to_string()).await;
    assert_eq!((r.status, code(&r)), (400, -32020), "missing Mcp-Name");
    let r = post_raw(
        &s,
        &[("MCP-Protocol-Version", V2026), ("Mcp-Method", "tools/call"), ("Mcp-Name", "disk_usage")],
        call.to_string(),
    )
    .await;
    assert_eq!((r.status, code(&r)), (400, -32020), "Mcp-Name differs from the body");
    let mut mismatch = modern(5, "tools/list", json!({}));
    mismatch["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let r = post_raw(&s, &[("MCP-Protocol-Version", V2026), ("Mcp-Method", "tools/list")], mismatch.to_string()).await;
    assert_eq!((r.status, code(&r)), (400, -32020), "MCP-Protocol-Version differs from _meta");
    let mut odd = modern(5, "server/discover", json!({}));
    odd["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("1999-01-01");
    let r = post_raw(&s, &[("MCP-Protocol-Version", "1999-01-01"), ("Mcp-Method", "server/discover")], odd.to_string())
        .await;
    assert_eq!((r.status, code(&r)), (400, -32022), "unsupported version");
    assert!(r.body["error"]["data"]["supported"].as_array().unwrap().contains(&json!(V2026)));
    // Arguments are validated before the plugin runs, naming the field.
    let bad = modern(6, "tools/call", json!({"name": "disk_usage", "arguments": {"path": 42}}));
    let r = call_modern(&s, &bad, &[]).await;
    assert_eq!(code(&r), -32602);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("path"), "{:?}", r.body);
    let r = call_modern(&s, &modern(7, "tools/call", json!({"name": "nope", "arguments": {}})), &[]).await;
    assert_eq!(code(&r), -32602, "unknown tool");
    still_serving(&s).await;
}

#[tokio::test]
async fn session_errors_and_delete() {
    let s = Server::start();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = post_raw(&s, &[], init.to_string()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["result"]["protocolVersion"], "2025-11-25");
    let session = r.headers["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(r.headers["content-type"], "text/event-stream");
    assert_eq!(r.headers["x-accel-buffering"], "no", "proxies must not buffer SSE");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let legacy = [("MCP-Protocol-Version", "2025-11-25")];
    let r = post_raw(&s, &[legacy[0], ("Mcp-Session-Id", "never-existed")], list.clone()).await;
    assert_eq!(r.status, 404, "unknown session");
    // Missing Accept.
    let r = reqwest::Client::new()
        .post(&s.url)
        .bearer_auth(&s.token)
        .header("Content-Type", "application/json")
        .header("Mcp-Session-Id", &session)
        .body(list.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406, "missing Accept");
    let r = post_raw(&s, &[legacy[0], ("Mcp-Session-Id", &session)], list.clone()).await;
    assert_eq!(r.status, 200);
    assert!(r.body["result"]["tools"].as_array().unwrap().len() > 1);
    let unknown = json!({"jsonrpc": "2.0", "id": 3, "method": "no/such"}).to_string();
    let r = post_raw(&s, &[legacy[0], ("Mcp-Session-Id", &session)], unknown).await;
    assert_eq!(code(&r), -32601, "unknown method in a session");
    let del = reqwest::Client::new()
        .delete(&s.url)
        .bearer_auth(&s.token)
        .header("Mcp-Session-Id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204, "an ended session: no content");
    let r = post_raw(&s, &[legacy[0], ("Mcp-Session-Id", &session)], list).await;
    assert_eq!(r.status, 404, "request after DELETE");
    // GET and DELETE are not part of the stateless era.
    let get = reqwest::Client::new()
        .get(&s.url)
        .bearer_auth(&s.token)
        .header("Accept", "text/event-stream")
        .header("MCP-Protocol-Version", V2026)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    still_serving(&s).await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_does_not_hurt_the_server() {
    let s = Server::start();
    for i in 0..5 {
        let body = modern(i, "tools/call", json!({"name": "test_tool_with_progress", "arguments": {}, "_meta": {}}));
        let mut body = body;
        body["params"]["_meta"]["progressToken"] = json!("p");
        let req = reqwest::Client::new()
            .post(&s.url)
            .bearer_auth(&s.token)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", V2026)
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "test_tool_with_progress")
            .body(body.to_string())
            .send();
        // Read the headers and the first event, then hang up mid-call.
        let mut resp = req.await.unwrap();
        assert_eq!(resp.status(), 200);
        let _ = resp.chunk().await;
        drop(resp);
    }
    still_serving(&s).await;
}
