//! The edge without a socket: each request goes through the real router with
//! `tower::ServiceExt::oneshot`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;
use crate::auth::DevKey;
use crate::mcp::{Shared, Transport};
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeOptions};

/// One engine for every test here (a pooling engine reserves much address space).
fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| Arc::new(Runtime::new(RuntimeOptions::default()).unwrap())).clone()
}

struct Harness {
    app: Router,
    key: DevKey,
    _dir: tempfile::TempDir,
}

fn harness(options: impl FnOnce(&mut HttpOptions)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let verifier = Arc::new(key.verifier().unwrap());
    let state = Shared::new(runtime(), Arc::new(Metrics::default()));
    let mcp = Mcp::new(state, Transport::Http);
    let mut o = HttpOptions {
        public_url: None,
        allowed_origins: Vec::new(),
        max_body_bytes: 1024,
        authorization: Authorization::Servers(vec!["https://idp.example".into()]),
        listen: None,
    };
    options(&mut o);
    let app = app(mcp, verifier, o, CancellationToken::new());
    Harness { app, key: DevKey::load_or_create(dir.path()).unwrap(), _dir: dir }
}

/// A stateless (2026-07-28) POST with `content_type`.
fn post_as(content_type: &str) -> axum::http::request::Builder {
    Request::builder()
        .method("POST")
        .uri("/mcp")
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
}

fn post() -> axum::http::request::Builder {
    post_as("application/json")
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

async fn send(h: &Harness, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = tokio::time::timeout(Duration::from_secs(10), h.app.clone().oneshot(req)).await.unwrap().unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, value)
}

fn token(h: &Harness, scopes: &str) -> String {
    h.key.mint("tester", scopes, Duration::from_secs(60)).unwrap()
}

#[tokio::test]
async fn no_token_gets_a_challenge_naming_the_metadata() {
    let h = harness(|_| {});
    let (status, headers, body) = send(&h, post().body(Body::from(LIST)).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], -32001);
    let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge
            .starts_with("Bearer resource_metadata=\"http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );
    assert!(!challenge.contains("error="), "{challenge}");
}

#[tokio::test]
async fn a_bad_token_is_invalid_token_and_any_scheme_case_works() {
    let h = harness(|_| {});
    let req = post().header(header::AUTHORIZATION, "Bearer not-a-jwt").body(Body::from(LIST)).unwrap();
    let (status, headers, _) = send(&h, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().contains("error=\"invalid_token\""));
    let t = token(&h, "tools:read");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let req = post().header(header::AUTHORIZATION, format!("{scheme} {t}")).body(Body::from(LIST)).unwrap();
        let (status, _, body) = send(&h, req).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
        assert!(body["result"]["tools"].is_array(), "{scheme}: {body}");
    }
    let req = post().header(header::AUTHORIZATION, format!("Basic {t}")).body(Body::from(LIST)).unwrap();
    assert_eq!(send(&h, req).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn loopback_origins_pass_and_foreign_ones_do_not() {
    let h = harness(|_| {});
    let t = token(&h, "tools:read");
    for origin in ["http://localhost:6274", "http://127.0.0.1:3000", "http://[::1]:1"] {
        let req = post()
            .header(header::ORIGIN, origin)
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::from(LIST))
            .unwrap();
        assert_eq!(send(&h, req).await.0, StatusCode::OK, "{origin}");
    }
    for origin in ["http://evil.example", "http://localhost.evil.example:8000", "null"] {
        let req = post()
            .header(header::ORIGIN, origin)
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::from(LIST))
            .unwrap();
        let (status, _, body) = send(&h, req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(body["error"]["code"], -32600);
    }
    // A loopback origin reaching a server by a public name is not a local page.
    let h = harness(|o| o.public_url = Some("https://mcp.example/mcp".into()));
    let mut req = post().header(header::ORIGIN, "http://localhost:6274").body(Body::from(LIST)).unwrap();
    req.headers_mut().insert(header::HOST, "mcp.example".parse().unwrap());
    assert_eq!(send(&h, req).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn envelope_errors_have_their_statuses() {
    let h = harness(|_| {});
    let auth = format!("Bearer {}", token(&h, "tools:read"));
    let cases: [(&str, &str, StatusCode, i64); 5] = [
        ("text/plain", LIST, StatusCode::UNSUPPORTED_MEDIA_TYPE, -32600),
        ("application/json", "{", StatusCode::BAD_REQUEST, -32700),
        ("application/json", "[]", StatusCode::BAD_REQUEST, -32600),
        ("application/json", r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#, StatusCode::BAD_REQUEST, -32600),
        ("application/json", &"x".repeat(2000), StatusCode::PAYLOAD_TOO_LARGE, -32600),
    ];
    for (content_type, body, status, code) in cases {
        let req = post_as(content_type).header(header::AUTHORIZATION, &auth).body(Body::from(body.to_owned())).unwrap();
        let (got, _, reply) = send(&h, req).await;
        assert_eq!((got, reply["error"]["code"].as_i64()), (status, Some(code)), "{content_type} {body:.40}: {reply}");
    }
}

#[tokio::test]
async fn deleting_an_unknown_session_is_404() {
    let h = harness(|_| {});
    let req = Request::builder()
        .method("DELETE")
        .uri("/mcp")
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::AUTHORIZATION, format!("Bearer {}", token(&h, "tools:read")))
        .header("mcp-session-id", "no-such-session")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&h, req).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resource_metadata_always_names_an_authorization_server() {
    let get =
        |path: &str| Request::builder().uri(path).header(header::HOST, "127.0.0.1:8000").body(Body::empty()).unwrap();
    let h = harness(|_| {});
    let (_, _, body) = send(&h, get("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(body["authorization_servers"], json!(["https://idp.example"]));
    assert_eq!(body["resource"], "http://127.0.0.1:8000/mcp");
    let dir = tempfile::tempdir().unwrap();
    let authority = DevAuthority::new(DevKey::load_or_create(dir.path()).unwrap());
    let h = harness(|o| o.authorization = Authorization::Dev(authority));
    let (_, _, body) = send(&h, get("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(body["authorization_servers"], json!(["http://127.0.0.1:8000"]));
    let (status, _, meta) = send(&h, get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["issuer"], "http://127.0.0.1:8000");
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
}
