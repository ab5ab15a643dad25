//! The checks in front of `/mcp`, in order: Origin, bearer token, then the
//! JSON-RPC envelope, which also admits the request (scopes, rate limit) and
//! hands the snapshot it admitted in to the handler.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::transport::streamable_http_server::SessionManager as _;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Edge, refusal_response};
use crate::errors::Refusal;
use crate::mcp::{Admitted, Target, admit};
use crate::policy::Principal;

/// The session header of the 2025-11-25 era.
const SESSION_ID: &str = "mcp-session-id";

impl Edge {
    fn refuse(&self, refusal: &Refusal, id: Value, headers: &HeaderMap) -> Response {
        let scopes = self.mcp.state.snapshot().view.scopes.join(" ");
        refusal_response(refusal, id, &self.options, headers, &scopes)
    }
}

/// Whether `host` (a URL host or a Host header without its port) is this
/// machine.
pub(super) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a Host header (`name`, `name:port`, `[v6]:port`).
pub(super) fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Whether a request with `Origin: origin` may use `/mcp`: the server's own
/// origin, one listed in `allowed_origins`, or, when the request came to a
/// loopback Host, any loopback origin (a local proxy or web app on another
/// port). A page on a foreign host never passes: that is what stops DNS
/// rebinding.
pub(super) fn origin_allowed(edge: &Edge, origin: &str, headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if origin == format!("http://{host}") || origin == format!("https://{host}") {
        return true;
    }
    if edge.options.public_url.is_some() && origin == super::origin_of(&edge.options, headers) {
        return true;
    }
    if edge.options.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    is_loopback_origin(origin) && is_loopback_host(host_name(host))
}

/// Whether `origin` is a page on this machine (any port).
pub(super) fn is_loopback_origin(origin: &str) -> bool {
    url::Url::parse(origin).ok().and_then(|u| u.host_str().map(is_loopback_host)).unwrap_or(false)
}

pub(super) async fn check_origin(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !origin_allowed(&edge, origin, req.headers()) {
            tracing::info!(origin = ?origin, "request from a disallowed origin refused");
            return edge.refuse(&Refusal::Origin(crate::text::shown(origin)), Value::Null, req.headers());
        }
    }
    next.run(req).await
}

/// The bearer token of an `Authorization` value: the scheme is matched
/// without regard to case (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

pub(super) async fn authenticate(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let (first, second) = (values.next(), values.next());
    let result = match (first, second) {
        (_, Some(_)) => Err(Refusal::InvalidToken("more than one Authorization header".into())),
        (None, None) => Err(Refusal::NoToken),
        (Some(value), None) => match value.to_str().ok().and_then(bearer_token) {
            None => Err(Refusal::InvalidToken("the Authorization scheme must be Bearer".into())),
            Some(token) => edge.verifier.verify(token).await.map_err(|e| Refusal::InvalidToken(e.reason().to_owned())),
        },
    };
    match result {
        Ok(caller) => {
            req.extensions_mut().insert(Principal::Token(caller));
            next.run(req).await
        }
        Err(refusal) => {
            if let Refusal::InvalidToken(reason) = &refusal {
                tracing::info!(reason = ?reason, "bearer token refused");
            }
            edge.refuse(&refusal, Value::Null, req.headers())
        }
    }
}

/// The parts of a JSON-RPC message the edge looks at; the rest (arguments
/// above all) stays unparsed, for rmcp.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// The `name` or `uri` of a request's params.
#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
}

fn value_of(raw: Option<&RawValue>) -> Value {
    raw.and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or(Value::Null)
}

/// What the envelope check found wrong, or the target the request wants. A
/// request object is parsed once, into the borrowed [`Envelope`]; only a body
/// that is not one is looked at again, to say what it is.
fn inspect(bytes: &[u8]) -> Result<Option<(Target, Value)>, (Refusal, Value)> {
    let what_it_is = |bytes: &[u8]| match serde_json::from_slice::<&RawValue>(bytes) {
        Err(e) => Refusal::Parse(e.to_string()),
        Ok(raw) if raw.get().starts_with('[') => Refusal::Malformed("JSON-RPC batches are not supported".into()),
        Ok(_) => Refusal::Malformed("a JSON-RPC message must be an object".into()),
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err((what_it_is(bytes), Value::Null));
    }
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => (Refusal::Malformed(e.to_string()), Value::Null),
        _ => (Refusal::Parse(e.to_string()), Value::Null),
    })?;
    let id = || value_of(envelope.id);
    match envelope.jsonrpc.map(RawValue::get) {
        Some("\"2.0\"") => {}
        other => {
            let found = other.unwrap_or("missing");
            let problem = format!("`jsonrpc` must be \"2.0\", not {}", crate::text::shown(found));
            return Err((Refusal::Malformed(problem), id()));
        }
    }
    let method: Option<Cow<'_, str>> = envelope.method.and_then(|m| serde_json::from_str(m.get()).ok());
    let Some(method) = method else {
        if envelope.result.is_some() || envelope.error.is_some() {
            return Ok(None);
        }
        return Err((Refusal::Malformed("a JSON-RPC message needs a string `method`".into()), id()));
    };
    if !matches!(&*method, "tools/call" | "prompts/get" | "resources/read") {
        return Ok(None);
    }
    let named: Option<Named<'_>> = envelope.params.and_then(|p| serde_json::from_str(p.get()).ok());
    let target = match (&*method, named) {
        ("tools/call", Some(Named { name: Some(n), .. })) => Target::Tool(n.into_owned()),
        ("prompts/get", Some(Named { name: Some(n), .. })) => Target::Prompt(n.into_owned()),
        ("resources/read", Some(Named { uri: Some(u), .. })) => Target::Resource(u.into_owned()),
        _ => return Ok(None),
    };
    Ok(Some((target, id())))
}

/// Size, Content-Type and JSON-RPC envelope checks on a POST body (-32700
/// parse error, -32600 invalid request), then admission of a call, read or
/// prompt: 403 with an `insufficient_scope` challenge, or 429. A `DELETE` of
/// a session this server does not know is 404.
pub(super) async fn check_envelope(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let session = req.headers().get(SESSION_ID).and_then(|h| h.to_str().ok());
    // A session in use here stays restorable elsewhere (an unknown ID costs
    // Redis nothing more than rmcp's one lookup).
    if let (Some(id), Some(store)) = (session, &edge.options.sessions)
        && edge.sessions.has_session(&id.into()).await.unwrap_or(false)
    {
        store.touch(id);
    }
    if req.method() == Method::DELETE {
        if let Some(id) = session
            && !edge.sessions.has_session(&id.into()).await.unwrap_or(false)
            && !match &edge.options.sessions {
                Some(store) => store.exists(id).await,
                None => false,
            }
        {
            return edge.refuse(&Refusal::UnknownSession, Value::Null, req.headers());
        }
        // rmcp answers an ended session 202; clients (the Python SDK among
        // them) take 200 or 204 as "ended", and there is no body.
        let mut response = next.run(req).await;
        if response.status() == axum::http::StatusCode::ACCEPTED {
            *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
        }
        return response;
    }
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|h| h.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        let refusal = Refusal::MediaType(crate::text::shown(content_type));
        return edge.refuse(&refusal, Value::Null, req.headers());
    }
    let limit = edge.options.max_body_bytes;
    let (mut parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return edge.refuse(&Refusal::TooLarge(limit), Value::Null, &parts.headers),
    };
    match inspect(&bytes) {
        Err((refusal, id)) => return edge.refuse(&refusal, id, &parts.headers),
        Ok(None) => {}
        Ok(Some((target, id))) => {
            let Some(who) = parts.extensions.get::<Principal>() else {
                return edge.refuse(&Refusal::NoToken, id, &parts.headers);
            };
            let snapshot = edge.mcp.state.snapshot();
            if let Err(refusal) = admit(&edge.mcp.state, &snapshot, who, &target).await {
                return edge.refuse(&refusal, id, &parts.headers);
            }
            parts.extensions.insert(Admitted { snapshot, target });
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc "] {
            assert_eq!(bearer_token(v), Some("abc"), "{v}");
        }
        for v in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Token abc"] {
            assert_eq!(bearer_token(v), None, "{v}");
        }
    }

    #[test]
    fn hosts_on_this_machine() {
        for h in ["localhost", "LOCALHOST", "127.0.0.1", "127.9.9.9", "[::1]", "::1"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.example", "localhost.evil.example", "10.0.0.1", "0.0.0.0"] {
            assert!(!is_loopback_host(h), "{h}");
        }
        assert_eq!(host_name("127.0.0.1:8000"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8000"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
    }

    #[test]
    fn envelopes_are_checked_without_parsing_the_arguments() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{"x":[1,2]}}}"#;
        assert_eq!(inspect(call).unwrap(), Some((Target::Tool("t".into()), Value::from(7))));
        assert_eq!(inspect(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap(), None);
        let bad = |b: &[u8]| inspect(b).unwrap_err().0;
        assert!(matches!(bad(b"{"), Refusal::Parse(_)));
        assert!(matches!(bad(b"[1,"), Refusal::Parse(_)), "a broken batch is a parse error");
        assert!(matches!(bad(br#"{"jsonrpc":"2.0","method":"x"} {"#), Refusal::Parse(_)), "trailing bytes");
        assert!(matches!(bad(br#"{"jsonrpc":"2.0","method":"x","jsonrpc":"2.0"}"#), Refusal::Malformed(_)));
        let odd_params = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":[1]}"#;
        assert_eq!(inspect(odd_params).unwrap(), None, "left for rmcp to answer");
        assert!(matches!(bad(b"[]"), Refusal::Malformed(m) if m.contains("batches")));
        assert!(matches!(bad(b"3"), Refusal::Malformed(m) if m.contains("object")));
        assert!(matches!(bad(br#"{"jsonrpc":"1.0","method":"x"}"#), Refusal::Malformed(m) if m.contains("2.0")));
        assert!(matches!(bad(br#"{"jsonrpc":"2.0","id":1}"#), Refusal::Malformed(m) if m.contains("method")));
        assert_eq!(inspect(br#"{"jsonrpc":"2.0","id":"a","method":7}"#).unwrap_err().1, Value::from("a"));
    }
}
