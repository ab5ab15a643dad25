//! The HTTP edge: an axum router with Origin and body checks, bearer auth and
//! the JSON-RPC envelope check (which also admits the request: one snapshot,
//! one lookup, one scope check) in front of rmcp's streamable HTTP service at
//! `/mcp`; health and protected-resource metadata beside it; in `--dev`, a
//! development authorization server on the same listener; `/metrics`,
//! verbose `/readyz` and `/reload` on the optional admin listener.
//!
//! [`app`] and [`admin_app`] build the routers without a socket, so the edge
//! is tested with `tower::ServiceExt::oneshot`; [`serve`] runs them.

mod admin;
mod dev_oauth;
mod edge;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use admin::{admin_app, served};
pub use dev_oauth::DevAuthority;

use crate::auth::Verifier;
use crate::errors::Refusal;
use crate::fleet::sessions::RedisSessions;
use crate::mcp::{Mcp, MoatServer};

/// How long a 2025-11-25 session lives without a request (and, in a fleet,
/// how long its stored state does).
pub const SESSION_IDLE: Duration = Duration::from_secs(300);
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

/// Which authorization servers the protected-resource metadata names.
#[derive(Clone)]
pub enum Authorization {
    /// The identity provider(s) of `[auth]`.
    Servers(Vec<String>),
    /// `--dev`: this server itself, which serves a development authorization
    /// server beside `/mcp`.
    Dev(Arc<DevAuthority>),
}

/// What the HTTP layer needs from the configuration.
#[derive(Clone)]
pub struct HttpOptions {
    /// Canonical resource URI (`…/mcp`); derived from the Host header when unset.
    pub public_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub authorization: Authorization,
    /// The address listened on (its IP is an allowed Host besides loopback).
    pub listen: Option<SocketAddr>,
    /// In a fleet: where sessions are kept so that any replica can restore them.
    pub sessions: Option<Arc<RedisSessions>>,
}

/// What every request handler of the edge shares.
struct Edge {
    mcp: Arc<Mcp>,
    verifier: Arc<Verifier>,
    options: HttpOptions,
    sessions: Arc<LocalSessionManager>,
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })
}

/// The public router. Long-lived streams (session GET streams,
/// subscriptions) end when `streams` is cancelled.
pub fn app(mcp: Arc<Mcp>, verifier: Arc<Verifier>, options: HttpOptions, streams: CancellationToken) -> Router {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Some(host) = options.public_url.as_deref().and_then(|u| url::Url::parse(u).ok()) {
        hosts.extend(host.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
    }
    if let Some(addr) = options.listen
        && !addr.ip().is_unspecified()
    {
        hosts.push(addr.ip().to_string());
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(options.max_body_bytes)
        // A stateless reply with nothing streamed before it goes out as one JSON
        // body (one write) instead of an SSE stream.
        .with_json_response(true)
        // No event store, so no resumption: skip the priming event.
        .with_sse_retry(None)
        .with_cancellation_token(streams.clone());
    let mut config = config;
    if let Some(store) = &options.sessions {
        config.session_store = Some(store.clone());
    }
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(SESSION_IDLE);
    let sessions = Arc::new(sessions);
    if let Some(store) = &options.sessions {
        store.follow_ends(sessions.clone(), streams);
    }
    let service_mcp = mcp.clone();
    let service =
        StreamableHttpService::new(move || Ok(MoatServer::new(service_mcp.clone())), sessions.clone(), config);
    let dev = match &options.authorization {
        Authorization::Dev(authority) => Some(authority.clone()),
        Authorization::Servers(_) => None,
    };
    let edge = Arc::new(Edge { mcp, verifier, options, sessions });
    let protected = Router::new()
        .nest_service("/mcp", service)
        .route_layer(middleware::from_fn_with_state(edge.clone(), edge::check_envelope))
        .route_layer(middleware::from_fn_with_state(edge.clone(), edge::authenticate))
        .route_layer(middleware::from_fn_with_state(edge.clone(), edge::check_origin));
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata))
        .with_state(edge.clone())
        .merge(protected);
    if let Some(authority) = dev {
        router = router.merge(dev_oauth::routes(authority, edge.mcp.state.clone()));
    }
    router.layer(middleware::from_fn_with_state(edge, count))
}

/// Serves `app` until `shutdown` is cancelled, then lets calls in flight
/// finish, then ends the long-lived streams (`streams`).
pub async fn serve(
    mcp: Arc<Mcp>,
    app: Router,
    listener: TcpListener,
    streams: CancellationToken,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let calls = mcp.state.calls().clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        calls.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, calls.wait()).await.is_err() {
            tracing::warn!(in_flight = calls.len(), "calls still in flight after {SHUTDOWN_GRACE:?}");
        }
        // A call counts as done when its plugin returns; its response is still
        // on its way to the stream for a moment after that.
        tokio::time::sleep(RESPONSE_SETTLE).await;
        streams.cancel();
    });
    run(listener, app, shutdown).await
}

/// Serves the admin router until `shutdown` is cancelled.
pub async fn serve_admin(listener: TcpListener, app: Router, shutdown: CancellationToken) -> Result<(), HttpError> {
    run(listener, app, shutdown).await
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

/// `GET /readyz`: 200 once the first load of the plugins folder is done.
async fn readyz(State(edge): State<Arc<Edge>>) -> Response {
    if edge.mcp.state.is_ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading plugins\n").into_response()
    }
}

/// `scheme://host[:port]` of the public URL, or of the request's Host header.
fn origin_of(options: &HttpOptions, headers: &HeaderMap) -> String {
    if let Some(url) = options.public_url.as_deref().and_then(|u| url::Url::parse(u).ok()) {
        return url.origin().ascii_serialization();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// The protected-resource metadata URL a challenge points at.
fn metadata_url(options: &HttpOptions, headers: &HeaderMap) -> String {
    format!("{}/.well-known/oauth-protected-resource/mcp", origin_of(options, headers))
}

/// RFC 9728 protected-resource metadata: which authorization servers issue
/// tokens for this resource, and which scopes it knows.
async fn resource_metadata(State(edge): State<Arc<Edge>>, headers: HeaderMap) -> Response {
    let origin = origin_of(&edge.options, &headers);
    let resource = edge.options.public_url.clone().unwrap_or_else(|| format!("{origin}/mcp"));
    let servers = match &edge.options.authorization {
        Authorization::Servers(list) => list.clone(),
        Authorization::Dev(_) => vec![origin],
    };
    let body = json!({
        "resource": resource,
        "authorization_servers": servers,
        "scopes_supported": edge.mcp.state.snapshot().view.scopes,
        "bearer_methods_supported": ["header"],
    });
    dev_oauth::with_loopback_cors(&headers, axum::Json(body).into_response())
}

/// The JSON-RPC error response for a refusal, with its status and headers.
fn refusal_response(
    refusal: &Refusal,
    id: Value,
    options: &HttpOptions,
    headers: &HeaderMap,
    scopes: &str,
) -> Response {
    let mut response =
        (refusal.status(), [(header::CONTENT_TYPE, "application/json")], refusal.to_response_body(id).to_string())
            .into_response();
    if let Some(challenge) = refusal.challenge(&metadata_url(options, headers), scopes)
        && let Ok(v) = header::HeaderValue::from_str(&challenge)
    {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if let Some(secs) = refusal.retry_after() {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    response
}

async fn count(State(edge): State<Arc<Edge>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path: &'static str = match req.uri().path() {
        "/mcp" => "/mcp",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        p if p.starts_with("/.well-known/") => "/.well-known",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    edge.mcp.state.metrics.request(path, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests;
