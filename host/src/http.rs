//! The HTTP edge: axum router with Origin and body checks, bearer auth and
//! JSON-RPC envelope checks in front of rmcp's streamable HTTP service at `/mcp`;
//! health and protected-resource metadata beside it; `/metrics` and verbose
//! `/readyz` on the optional admin listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, Verifier};
use crate::mcp::{MoatServer, Shared};

/// How long shutdown waits for calls in flight before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long shutdown leaves the last responses to reach their streams.
const RESPONSE_SETTLE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// What the HTTP layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Canonical resource URI (`…/mcp`); derived from the Host header when unset.
    pub public_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub authorization_servers: Vec<String>,
}

struct Edge {
    verifier: Arc<Verifier>,
    options: HttpOptions,
    shared: Arc<Shared>,
    rate_limits: crate::policy::RateLimits,
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })
}

/// Serves until `shutdown` is cancelled, then lets calls in flight finish.
pub async fn serve(
    shared: Arc<Shared>,
    verifier: Arc<Verifier>,
    options: HttpOptions,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let edge =
        Arc::new(Edge { verifier, options: options.clone(), shared: shared.clone(), rate_limits: Default::default() });
    // Long-lived streams (session GET streams, subscriptions) close once the
    // calls in flight have finished, so shutdown does not wait on them.
    let streams = CancellationToken::new();
    let app = router(edge, &listener, streams.clone());
    let draining = shared.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while draining.calls_in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A call counts as done when its plugin returns; its response is still
        // on its way to the stream for a moment after that.
        tokio::time::sleep(RESPONSE_SETTLE).await;
        streams.cancel();
    });
    let admin_task = admin.map(|l| {
        let app = admin_router(shared.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move { run(l, app, stop).await })
    });
    let result = run(listener, app, shutdown).await;
    if let Some(t) = admin_task {
        t.abort();
    }
    result
}

async fn run(listener: TcpListener, app: Router, shutdown: CancellationToken) -> Result<(), HttpError> {
    use axum::serve::ListenerExt as _;
    // Nagle's algorithm would hold back small SSE frames for ~40 ms.
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    let stop = shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
    let server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = server => r.map_err(HttpError::Serve),
        () = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("calls still in flight after {SHUTDOWN_GRACE:?}; stopping anyway");
            Ok(())
        }
    }
}

fn router(edge: Arc<Edge>, listener: &TcpListener, streams: CancellationToken) -> Router {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Some(host) = edge.options.public_url.as_deref().and_then(url_host) {
        hosts.push(host);
    }
    if let Ok(addr) = listener.local_addr()
        && !addr.ip().is_unspecified()
    {
        hosts.push(addr.ip().to_string());
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(edge.options.max_body_bytes)
        // A stateless reply with nothing streamed before it goes out as one JSON
        // body (one write) instead of an SSE stream.
        .with_json_response(true)
        // No event store, so no resumption: skip the priming event.
        .with_sse_retry(None)
        .with_cancellation_token(streams);
    let shared = edge.shared.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(MoatServer::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .nest_service("/mcp", mcp)
        .route_layer(middleware::from_fn_with_state(edge.clone(), check_envelope))
        .route_layer(middleware::from_fn_with_state(edge.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(edge.clone(), check_origin));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata))
        .with_state(edge.clone())
        .merge(mcp)
        .layer(middleware::from_fn_with_state(edge, count))
}

fn admin_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Shared>>| async move {
                let mut text = s.metrics.render();
                text.push_str(
                    "# HELP moat_calls_in_flight Plugin calls running now.\n# TYPE moat_calls_in_flight gauge\n",
                );
                text.push_str(&format!("moat_calls_in_flight {}\n", s.calls_in_flight()));
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
            }),
        )
        .route("/readyz", get(readyz_verbose))
        .route("/reload", post(reload))
        .with_state(shared)
}

/// `POST /reload` (admin): rescan the plugins directory now and report. Browsers
/// send `Origin` on cross-site POSTs; such requests are refused, so a web page
/// cannot poke the admin port.
async fn reload(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if headers.contains_key(header::ORIGIN) {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "requests from browsers are not accepted here"})))
            .into_response();
    }
    let Some(reloads) = s.reloads() else {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "the reload task is not running"})))
            .into_response();
    };
    match reloads.rescan(crate::watch::Trigger::Admin).await {
        Ok(report) => {
            let registry = s.registry.load();
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            body["failures"] = serde_json::to_value(registry.failures()).unwrap_or_default();
            body["serving"] = json!(registry.plugins().len());
            Json(body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

/// `GET /readyz`: 200 once the first load of the plugins folder is done.
async fn readyz(State(edge): State<Arc<Edge>>) -> Response {
    if edge.shared.reloads().is_some() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading plugins\n").into_response()
    }
}

async fn readyz_verbose(State(s): State<Arc<Shared>>) -> Json<Value> {
    let registry = s.registry.load();
    let plugins: Vec<Value> = registry
        .plugins()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "file": p.path.display().to_string(),
                "sha256": p.hash,
                "wit": p.wit_version,
                "tools": p.tools.len(),
            })
        })
        .collect();
    let (reloads, last) = s.metrics.reload_summary();
    Json(json!({
        "ready": s.reloads().is_some(),
        "plugins": plugins,
        "failed": registry.failures(),
        "reload": {
            "watching": s.reloads().is_some_and(|r| r.watching()),
            "rescans": reloads,
            "last_unix_s": last,
        },
    }))
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host =
        if host.starts_with('[') { host.split(']').next()?.trim_start_matches('[') } else { host.split(':').next()? };
    Some(host.to_owned())
}

/// `scheme://host[:port]` of the public URL, or of the request's Host header.
fn origin_of(edge: &Edge, headers: &HeaderMap) -> String {
    if let Some(url) = &edge.options.public_url
        && let Some((scheme, rest)) = url.split_once("://")
    {
        return format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

async fn resource_metadata(State(edge): State<Arc<Edge>>, headers: HeaderMap) -> Json<Value> {
    let origin = origin_of(&edge, &headers);
    let resource = edge.options.public_url.clone().unwrap_or_else(|| format!("{origin}/mcp"));
    Json(json!({
        "resource": resource,
        "authorization_servers": edge.options.authorization_servers,
        "scopes_supported": edge.shared.scopes_supported(),
        "bearer_methods_supported": ["header"],
    }))
}

fn jsonrpc_error(status: StatusCode, id: Value, code: i32, message: impl Into<String>) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn count(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let path: &'static str = match req.uri().path() {
        "/mcp" => "/mcp",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        p if p.starts_with("/.well-known/") => "/.well-known",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(req).await;
    edge.shared.metrics.request(path, response.status().as_u16(), started.elapsed());
    response
}

/// `Origin`, when present, must be listed or be the server's own origin.
async fn check_origin(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let same = origin == format!("http://{host}") || origin == format!("https://{host}");
        let public = edge.options.public_url.is_some() && origin == origin_of(&edge, req.headers());
        let allowed = same || public || edge.options.allowed_origins.iter().any(|o| o == origin);
        if !allowed {
            tracing::info!(origin, "request from a disallowed origin refused");
            return jsonrpc_error(
                StatusCode::FORBIDDEN,
                Value::Null,
                -32600,
                format!("origin `{origin}` is not allowed"),
            );
        }
    }
    next.run(req).await
}

async fn authenticate(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let (first, second) = (values.next(), values.next());
    let token = first
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim);
    let result = match (token, second) {
        (_, Some(_)) => Err(AuthError::Invalid("more than one Authorization header".into())),
        (None, None) if first.is_some() => Err(AuthError::Invalid("the Authorization scheme must be Bearer".into())),
        (None, None) => Err(AuthError::Missing),
        (Some(t), None) => edge.verifier.verify(t).await,
    };
    match result {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", origin_of(&edge, req.headers()));
            let scope = edge.shared.scopes_supported().join(" ");
            let mut challenge = format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scope}\"");
            if let AuthError::Invalid(reason) = &e {
                tracing::info!(reason = ?reason.to_string(), "bearer token refused");
                challenge.push_str(", error=\"invalid_token\"");
            }
            let mut response = jsonrpc_error(StatusCode::UNAUTHORIZED, Value::Null, -32001, e.to_string());
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            response
        }
    }
}

/// Size, Content-Type and JSON-RPC envelope checks on a POST body, with the
/// errors JSON-RPC names (-32700 parse error, -32600 invalid request).
async fn check_envelope(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|h| h.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return jsonrpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Value::Null,
            -32600,
            format!("Content-Type must be application/json, not `{content_type}`"),
        );
    }
    let limit = edge.options.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Value::Null,
                -32600,
                format!("the request body exceeds the limit of {limit} bytes"),
            );
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return jsonrpc_error(StatusCode::BAD_REQUEST, Value::Null, -32700, format!("parse error: {e}")),
    };
    let problem = match &value {
        Value::Array(_) => Some("JSON-RPC batches are not supported".to_owned()),
        Value::Object(o) => match o.get("jsonrpc") {
            Some(Value::String(v)) if v == "2.0" => {
                let is_call = o.get("method").is_some_and(Value::is_string);
                let is_reply = o.contains_key("result") || o.contains_key("error");
                (!is_call && !is_reply).then(|| "a JSON-RPC message needs a string `method`".to_owned())
            }
            other => {
                Some(format!("`jsonrpc` must be \"2.0\", not {}", other.map_or("missing".into(), Value::to_string)))
            }
        },
        _ => Some("a JSON-RPC message must be an object".to_owned()),
    };
    if let Some(problem) = problem {
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        return jsonrpc_error(StatusCode::BAD_REQUEST, id, -32600, problem);
    }
    let refusal = match value.get("method").and_then(Value::as_str) {
        Some("tools/call") => value
            .pointer("/params/name")
            .and_then(Value::as_str)
            .and_then(|tool| check_access(&edge, &parts, tool, &value)),
        Some("resources/read") => value.pointer("/params/uri").and_then(Value::as_str).and_then(|uri| {
            let needed = edge.shared.resource_scopes(uri)?;
            check_scopes(&edge, &parts, &format!("resource `{uri}`"), &needed, &value)
        }),
        Some("prompts/get") => value.pointer("/params/name").and_then(Value::as_str).and_then(|name| {
            let needed = edge.shared.prompt_scopes(name)?;
            check_scopes(&edge, &parts, &format!("prompt `{name}`"), &needed, &value)
        }),
        _ => None,
    };
    if let Some(refusal) = refusal {
        return refusal;
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// 403 `insufficient_scope` when the caller's token lacks one of `needed`.
fn check_scopes(
    edge: &Edge,
    parts: &axum::http::request::Parts,
    what: &str,
    needed: &[String],
    request: &Value,
) -> Option<Response> {
    let caller = parts.extensions.get::<crate::auth::Caller>()?;
    if crate::policy::permits(Some(caller), needed) {
        return None;
    }
    let needed = needed.join(" ");
    tracing::info!(subject = ?caller.subject, what, needed = %needed, "request refused: insufficient scope");
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", origin_of(edge, &parts.headers));
    let challenge =
        format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=\"{metadata}\"");
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let mut response =
        jsonrpc_error(StatusCode::FORBIDDEN, id, -32003, format!("insufficient scope: {what} needs {needed}"));
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Some(response)
}

/// 403 when the caller's token lacks a scope the tool needs; 429 when the caller
/// has used up the tool's rate limit.
fn check_access(edge: &Edge, parts: &axum::http::request::Parts, tool: &str, request: &Value) -> Option<Response> {
    let access = edge.shared.access(tool)?;
    if let Some(refusal) = check_scopes(edge, parts, &format!("`{tool}`"), &access.scopes, request) {
        return Some(refusal);
    }
    let caller = parts.extensions.get::<crate::auth::Caller>()?;
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let limit = access.rate_limit?;
    let wait = edge.rate_limits.check(tool, limit, &caller.subject).err()?;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    tracing::info!(subject = ?caller.subject, tool, retry_after_s = secs, "call refused: rate limit");
    let mut response = jsonrpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        id,
        -32029,
        format!("rate limit of {} calls per minute for `{tool}` reached; retry in {secs} s", limit.per_minute),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Some(response)
}
