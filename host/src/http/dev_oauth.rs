//! `--dev` only: a minimal development authorization server on the same
//! loopback listener as `/mcp`, so clients that only know OAuth discovery
//! connect with no pasted token.
//!
//! It serves RFC 8414 metadata, dynamic client registration (RFC 7591; public
//! clients, loopback redirect URIs only), the authorization-code grant with
//! PKCE S256 and automatic consent (the person at this machine started the
//! server), and a token endpoint that signs with the dev key for this
//! server's audience. Its state is bounded: at most [`MAX_CLIENTS`]
//! registrations and [`MAX_CODES`] unredeemed codes, each code single-use
//! and valid for [`CODE_TTL`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::edge::{host_name, is_loopback_host, is_loopback_origin};
use crate::auth::{DEV_SCOPES, DevKey};
use crate::mcp::Shared;

/// Most clients registered at once (the oldest is forgotten first).
pub const MAX_CLIENTS: usize = 256;
/// Most authorization codes waiting to be redeemed.
pub const MAX_CODES: usize = 256;
/// How long an authorization code may be redeemed.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long an issued access token is valid.
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Largest registration or token request read.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Most redirect URIs one client may register.
const MAX_REDIRECTS: usize = 8;
/// The subject of tokens this server issues.
const DEV_SUBJECT: &str = "dev";

struct Client {
    redirect_uris: Vec<String>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    issued: Instant,
}

/// The development authorization server's key and bounded state.
pub struct DevAuthority {
    key: DevKey,
    clients: Mutex<(HashMap<String, Client>, VecDeque<String>)>,
    codes: Mutex<HashMap<String, Code>>,
}

impl DevAuthority {
    pub fn new(key: DevKey) -> Arc<Self> {
        Arc::new(DevAuthority { key, clients: Default::default(), codes: Default::default() })
    }

    /// The key tokens are signed with.
    pub fn key(&self) -> &DevKey {
        &self.key
    }
}

#[derive(Clone)]
struct Dev {
    authority: Arc<DevAuthority>,
    state: Arc<Shared>,
}

pub(super) fn routes(authority: Arc<DevAuthority>, state: Arc<Shared>) -> Router {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata).options(preflight))
        .route("/.well-known/openid-configuration", get(metadata).options(preflight))
        .route("/register", axum::routing::post(register).options(preflight))
        .route("/authorize", get(authorize))
        .route("/token", axum::routing::post(token).options(preflight))
        .route_layer(axum::middleware::from_fn(loopback_only))
        // Registrations and token requests are read no further than this.
        .route_layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(Dev { authority, state })
}

/// Refuses a request whose `Host` is not this machine: a page on a foreign
/// name that resolves here (DNS rebinding) must not be able to sign in.
async fn loopback_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if is_loopback_host(host_name(host)) {
        next.run(req).await
    } else {
        oauth_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the development authorization server answers on loopback only",
        )
    }
}

fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// This server as an issuer: the origin the client reached it at.
fn issuer(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// Lets a loopback page read `response` (CORS); other origins get nothing.
pub(super) fn with_loopback_cors(headers: &HeaderMap, mut response: Response) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().is_ok_and(is_loopback_origin)
    {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).is_some_and(is_loopback_origin) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, authorization, mcp-protocol-version"),
        );
    }
    with_loopback_cors(&headers, response)
}

/// An OAuth error response (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (status, Json(json!({"error": error, "error_description": description.into()}))).into_response()
}

async fn metadata(State(dev): State<Dev>, headers: HeaderMap) -> Response {
    let issuer = issuer(&headers);
    let mut scopes = dev.state.snapshot().view.scopes.clone();
    scopes.sort();
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
    });
    with_loopback_cors(&headers, Json(body).into_response())
}

/// A redirect URI a development client may use: `http` on a loopback host
/// (RFC 8252 §7.3), so a code can only ever go back to this machine.
fn redirect_allowed(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host) && u.fragment().is_none())
}

#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_name: Option<String>,
}

async fn register(State(dev): State<Dev>, headers: HeaderMap, body: Bytes) -> Response {
    // JSON only (RFC 7591 §3.1): a form a page can post without asking is refused.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    let response = if json {
        register_client(&dev, &body)
    } else {
        oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", "the registration must be application/json")
    };
    with_loopback_cors(&headers, response)
}

fn register_client(dev: &Dev, body: &[u8]) -> Response {
    let bad = |description: String| oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", description);
    let request: Registration = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad(format!("not a client registration: {e}")),
    };
    if request.redirect_uris.is_empty() || request.redirect_uris.len() > MAX_REDIRECTS {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            format!("register 1 to {MAX_REDIRECTS} redirect URIs"),
        );
    }
    if let Some(uri) = request.redirect_uris.iter().find(|u| !redirect_allowed(u)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            format!(
                "`{}` is not a loopback http redirect URI; the development server sends codes only to this machine",
                crate::text::shown(uri)
            ),
        );
    }
    if let Some(method) = request.token_endpoint_auth_method.as_deref().filter(|m| *m != "none") {
        tracing::debug!(method = ?method, "dev client asked for a secret; registering it as a public client");
    }
    let client_id = format!("dev-{}", random_id(12));
    {
        let mut clients = dev.authority.clients.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *clients;
        while map.len() >= MAX_CLIENTS {
            let Some(oldest) = order.pop_front() else { break };
            map.remove(&oldest);
        }
        map.insert(client_id.clone(), Client { redirect_uris: request.redirect_uris.clone() });
        order.push_back(client_id.clone());
    }
    let mut body = json!({
        "client_id": client_id,
        "client_id_issued_at": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "redirect_uris": request.redirect_uris,
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    });
    if let Some(name) = request.client_name {
        body["client_name"] = Value::String(crate::text::shown(&name));
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
}

/// A redirect to `uri` with `params` added to its query.
fn redirect(uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(uri) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the redirect URI is not a URL");
    };
    url.query_pairs_mut().extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()));
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the redirect URI cannot be sent back"),
    }
}

/// Scope tokens the development server grants: those asked for that are
/// well-formed, else every dev scope.
fn granted_scope(asked: Option<&str>) -> String {
    let asked: Vec<&str> = asked
        .unwrap_or_default()
        .split_whitespace()
        .filter(|s| crate::config::Scope::try_from(s.to_string()).is_ok())
        .collect();
    if asked.is_empty() { DEV_SCOPES.to_owned() } else { asked.join(" ") }
}

async fn authorize(State(dev): State<Dev>, headers: HeaderMap, Query(q): Query<AuthorizeQuery>) -> Response {
    // Until the client and its redirect URI are known good, errors are shown
    // here, never sent to an unchecked URI (RFC 6749 §4.1.2.1).
    let Some(client_id) = q.client_id.as_deref() else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id is missing");
    };
    let redirect_uri = {
        let clients = dev.authority.clients.lock().unwrap_or_else(|e| e.into_inner());
        let Some(client) = clients.0.get(client_id) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client_id; register first");
        };
        match q.redirect_uri.as_deref() {
            Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not one this client registered",
                );
            }
        }
    };
    let iss = issuer(&headers);
    let state = q.state.as_deref().unwrap_or_default();
    let fail = |error: &str, description: &str| {
        redirect(
            &redirect_uri,
            &[("error", error), ("error_description", description), ("state", state), ("iss", &iss)],
        )
    };
    if q.response_type.as_deref() != Some("code") {
        return fail("unsupported_response_type", "only response_type=code is supported");
    }
    let Some(challenge) = q.code_challenge.as_deref().filter(|c| (43..=128).contains(&c.len())) else {
        return fail("invalid_request", "PKCE is required: send a code_challenge (43 to 128 characters)");
    };
    if q.code_challenge_method.as_deref() != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let code = random_id(24);
    {
        let mut codes = dev.authority.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, c| c.issued.elapsed() < CODE_TTL);
        if codes.len() >= MAX_CODES {
            return fail("temporarily_unavailable", "too many authorizations are waiting to be redeemed");
        }
        codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.clone(),
                challenge: challenge.to_owned(),
                scope: granted_scope(q.scope.as_deref()),
                issued: Instant::now(),
            },
        );
    }
    tracing::info!(client_id = ?client_id, "dev authorization granted (automatic consent)");
    redirect(&redirect_uri, &[("code", &code), ("state", state), ("iss", &iss)])
}

async fn token(State(dev): State<Dev>, headers: HeaderMap, body: Bytes) -> Response {
    with_loopback_cors(&headers, exchange(&dev, &body))
}

fn exchange(dev: &Dev, body: &[u8]) -> Response {
    let invalid_grant = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d.to_owned());
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=authorization_code is supported",
        );
    }
    let (Some(code), Some(verifier)) = (field("code"), field("code_verifier")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code and code_verifier are required");
    };
    // A code is taken out on first use, whatever happens next: single use.
    let Some(grant) = dev.authority.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(code) else {
        return invalid_grant("unknown or already used authorization code");
    };
    if grant.issued.elapsed() >= CODE_TTL {
        return invalid_grant("the authorization code has expired");
    }
    if field("client_id").is_some_and(|c| c != grant.client_id) {
        return invalid_grant("the code was issued to another client");
    }
    if field("redirect_uri").is_some_and(|r| r != grant.redirect_uri) {
        return invalid_grant("redirect_uri differs from the authorization request's");
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if computed != grant.challenge {
        return invalid_grant("the code_verifier does not match the code_challenge");
    }
    match dev.authority.key.mint(DEV_SUBJECT, &grant.scope, TOKEN_TTL) {
        Ok(access_token) => Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL.as_secs(),
            "scope": grant.scope,
        }))
        .into_response(),
        Err(e) => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("cannot sign the token: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_only_go_back_to_this_machine() {
        for ok in ["http://127.0.0.1:33418/callback", "http://localhost:6274/oauth/callback", "http://[::1]:9/cb"] {
            assert!(redirect_allowed(ok), "{ok}");
        }
        for bad in ["https://evil.example/cb", "http://evil.example/cb", "javascript:alert(1)", "http://127.0.0.1/#x"] {
            assert!(!redirect_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn granted_scopes_are_well_formed() {
        assert_eq!(granted_scope(None), DEV_SCOPES);
        assert_eq!(granted_scope(Some("tools:read x\"y")), "tools:read");
        assert_eq!(granted_scope(Some("\"\"")), DEV_SCOPES);
    }
}
