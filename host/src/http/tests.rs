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

/// The real router over an empty registry, verifying tokens of a fresh dev
/// key; with `dev`, serving the development authorization server too.
fn build(dev: bool, options: impl FnOnce(&mut HttpOptions)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let verifier = Arc::new(key.verifier().unwrap());
    let authorization = if dev {
        Authorization::Dev(DevAuthority::new(DevKey::load_or_create(dir.path()).unwrap()))
    } else {
        Authorization::Servers(vec!["https://idp.example".into()])
    };
    let state = Shared::new(runtime(), Arc::new(Metrics::default()));
    let mut o = HttpOptions {
        public_url: None,
        allowed_origins: Vec::new(),
        max_body_bytes: 1024,
        authorization,
        listen: None,
        sessions: None,
    };
    options(&mut o);
    let app = app(Mcp::new(state, Transport::Http), verifier, o, CancellationToken::new());
    Harness { app, key, _dir: dir }
}

fn harness(options: impl FnOnce(&mut HttpOptions)) -> Harness {
    build(false, options)
}

fn dev_harness() -> Harness {
    build(true, |_| {})
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
    let h = dev_harness();
    let (_, _, body) = send(&h, get("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(body["authorization_servers"], json!(["http://127.0.0.1:8000"]));
    let (status, _, meta) = send(&h, get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["issuer"], "http://127.0.0.1:8000");
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
}

fn form_post(path: &str, body: String) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn get_at(path: &str, host: &str) -> Request<Body> {
    Request::builder().uri(path).header(header::HOST, host).body(Body::empty()).unwrap()
}

/// Registers a client; returns its id.
async fn register(h: &Harness, redirect: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri("/register")
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"redirect_uris": [redirect], "client_name": "t"}).to_string()))
        .unwrap();
    let (status, _, body) = send(h, req).await;
    (status, body)
}

fn pkce(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn the_dev_authorization_server_signs_in_a_client_with_pkce() {
    let h = dev_harness();
    let redirect = "http://127.0.0.1:33418/callback";
    let (status, client) = register(&h, redirect).await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let verifier = "v".repeat(64);
    let authorize = format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state=s1&code_challenge={}&code_challenge_method=S256&scope=tools:read",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
        pkce(&verifier)
    );
    let (status, headers, _) = send(&h, get_at(&authorize, "127.0.0.1:8000")).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(redirect), "{location}");
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!((q["state"].as_str(), q["iss"].as_str()), ("s1", "http://127.0.0.1:8000"));
    let code = q["code"].clone();
    let exchange = |verifier: &str| {
        form_post(
            "/token",
            format!(
                "grant_type=authorization_code&code={code}&redirect_uri={redirect}&client_id={client_id}&code_verifier={verifier}"
            ),
        )
    };
    // A wrong verifier burns the code: PKCE protects it, and it is single use.
    let (status, _, body) = send(&h, exchange("w".repeat(64).as_str())).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, _, body) = send(&h, exchange(&verifier)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code is used once: {body}");

    // A fresh code, redeemed properly, gives a token /mcp accepts.
    let (_, headers, _) = send(&h, get_at(&authorize, "127.0.0.1:8000")).await;
    let location = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let req = form_post(
        "/token",
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri={redirect}&client_id={client_id}&code_verifier={verifier}"
        ),
    );
    let (status, _, token) = send(&h, req).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!((token["token_type"].as_str(), token["scope"].as_str()), (Some("Bearer"), Some("tools:read")));
    let access = token["access_token"].as_str().unwrap();
    let req = post().header(header::AUTHORIZATION, format!("Bearer {access}")).body(Body::from(LIST)).unwrap();
    let (status, _, body) = send(&h, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_dev_authorization_server_keeps_codes_on_this_machine() {
    let h = dev_harness();
    let (status, body) = register(&h, "https://evil.example/cb").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri")));
    // A name that resolves here but is not ours (DNS rebinding) gets nothing.
    let (status, _, _) = send(&h, get_at("/.well-known/oauth-authorization-server", "evil.example:8000")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A form a page could post without asking is not a registration.
    let req = Request::builder()
        .method("POST")
        .uri("/register")
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(json!({"redirect_uris": ["http://127.0.0.1:1/cb"]}).to_string()))
        .unwrap();
    assert_eq!(send(&h, req).await.0, StatusCode::BAD_REQUEST);
    // A registration is read no further than 16 KiB.
    let huge = json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "client_name": "x".repeat(20 << 10)});
    let req = Request::builder()
        .method("POST")
        .uri("/register")
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(huge.to_string()))
        .unwrap();
    assert_eq!(send(&h, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // An unknown client is told so here, never redirected.
    let (status, headers, _) = send(
        &h,
        get_at("/authorize?response_type=code&client_id=nobody&redirect_uri=http://127.0.0.1:1/cb", "127.0.0.1:8000"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!headers.contains_key(header::LOCATION));
}
