//! Outbound HTTP from a plugin: a small blocking client over `wasi:http`.
//!
//! ```text
//! let r = moat_sdk::http::get("https://api.github.com/repos/bytecodealliance/wasmtime")?;
//! let repo: serde_json::Value = r.json()?;
//! ```
//!
//! The host decides where a plugin may go: only origins granted in its
//! sidecar's `[grants] http`. Anything else fails with [`HttpError::Denied`],
//! naming the origin. The host also adds any secret header the operator
//! granted for an origin (an API key, say): the plugin never sees it, and a
//! value the plugin sets for that header is replaced. Redirects are returned,
//! not followed: a `Location` the plugin wants to visit is a new request,
//! checked like any other.
//!
//! Requests go out through the moat host only: natively (in `cargo test`)
//! [`Request::send`] answers [`HttpError::Failed`] with the code `NoHost`.
//! Any other crate built on `wasi:http` 0.2 gets the same grants and checks.

use std::fmt;
use std::time::Duration;

/// Bytes of a response body read unless [`Request::max_body`] says otherwise.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not `http(s)://host[:port][/path]`.
    InvalidUrl(String),
    /// A header name or value the host does not accept.
    InvalidHeader(String),
    /// The host refused the request: the origin is not granted to this
    /// plugin, or the name resolves to an address no grant names.
    Denied { origin: String, code: String },
    /// The call passed one of its limits (requests, bytes): it is ending.
    Limit { origin: String, code: String },
    /// The request was sent, or tried, and failed (DNS, connection, TLS,
    /// timeout, a malformed response).
    Failed { origin: String, code: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::InvalidHeader(m) => write!(f, "invalid header: {m}"),
            HttpError::Denied { origin, code } => write!(
                f,
                "the host refused the request to {origin} ({code}): it is not granted to this plugin, \
                 or it resolves to an address no grant names"
            ),
            HttpError::Limit { origin, code } => {
                write!(f, "request to {origin} stopped at a limit of the call ({code})")
            }
            HttpError::Failed { origin, code } => write!(f, "request to {origin} failed: {code}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for String {
    fn from(e: HttpError) -> Self {
        e.to_string()
    }
}

/// A response: status, headers and (up to the request's `max_body`) the body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The body was longer than `max_body`; the rest was not read.
    pub truncated: bool,
}

impl Response {
    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("the response is not the JSON expected: {e}"))
    }
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    max_body: usize,
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new("GET", url).send()
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    pub fn get(url: &str) -> Self {
        Request::new("GET", url)
    }

    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Self {
        Request::new("POST", url).body(body)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The longest to wait for the connection, the first byte and each
    /// next byte (the host never waits past the call's own deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Reads at most `bytes` of the body; the rest is dropped unread.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sends the request and reads the response.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = Url::parse(&self.url)?;
        #[cfg(target_arch = "wasm32")]
        return wasi::send(&self, url);
        #[cfg(not(target_arch = "wasm32"))]
        Err(HttpError::Failed { origin: url.origin(), code: "NoHost: outbound HTTP goes through the moat host".into() })
    }
}

/// Just enough of a URL for a request: scheme, authority, path and query.
struct Url<'a> {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    https: bool,
    authority: &'a str,
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    path: String,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Self, HttpError> {
        let bad = |why: &str| HttpError::InvalidUrl(format!("{url}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http:// or https://"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http and https are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        Ok(Url { https, authority, path })
    }

    fn origin(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.authority)
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{HttpError, Request, Response, Url};

    pub(super) fn send(req: &Request, url: Url<'_>) -> Result<Response, HttpError> {
        let origin = url.origin();
        let fail = |code: ErrorCode| classify(&origin, code);

        let headers = Fields::new();
        for (name, value) in &req.headers {
            headers.append(name, value).map_err(|e| HttpError::InvalidHeader(format!("{name}: {e:?}")))?;
        }
        let request = OutgoingRequest::new(headers);
        let method = match req.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        let invalid = |what: &str| HttpError::InvalidUrl(format!("{}: bad {what}", req.url));
        request.set_method(&method).map_err(|()| invalid("method"))?;
        let scheme = if url.https { Scheme::Https } else { Scheme::Http };
        request.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
        request.set_authority(Some(url.authority)).map_err(|()| invalid("host"))?;
        request.set_path_with_query(Some(&url.path)).map_err(|()| invalid("path"))?;
        let body = request.body().map_err(|()| invalid("body"))?;

        let options = req.timeout.map(|t| {
            let o = RequestOptions::new();
            let ns = Some(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
            let _ = o.set_connect_timeout(ns);
            let _ = o.set_first_byte_timeout(ns);
            let _ = o.set_between_bytes_timeout(ns);
            o
        });
        let pending = outgoing_handler::handle(request, options).map_err(fail)?;
        // A body that cannot be written usually means the request failed:
        // the response's error says why, so it is preferred.
        let written = write_body(body, &req.body);
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(code))) => return Err(fail(code)),
            Some(Err(())) | None => return Err(fail(ErrorCode::InternalError(Some("no response".into())))),
        };
        written.map_err(|code| fail(code.unwrap_or(ErrorCode::HttpProtocolError)))?;
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response.consume().map_err(|()| fail(ErrorCode::HttpResponseIncomplete))?;
        let (body, truncated) = read_body(&incoming, req.max_body).map_err(fail)?;
        drop(incoming);
        Ok(Response { status, headers, body, truncated })
    }

    fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), Option<ErrorCode>> {
        {
            let stream = body.write().map_err(|()| None)?;
            for chunk in bytes.chunks(4096) {
                stream.blocking_write_and_flush(chunk).map_err(stream_code)?;
            }
        }
        OutgoingBody::finish(body, None).map_err(Some)
    }

    fn read_body(body: &IncomingBody, max: usize) -> Result<(Vec<u8>, bool), ErrorCode> {
        let stream = body.stream().map_err(|()| ErrorCode::HttpResponseIncomplete)?;
        let mut out = Vec::new();
        loop {
            // One byte past the limit tells a long body from one that fits.
            let want = max.saturating_add(1).saturating_sub(out.len()).min(64 << 10) as u64;
            match stream.blocking_read(want) {
                Ok(chunk) => {
                    out.extend_from_slice(&chunk);
                    if out.len() > max {
                        out.truncate(max);
                        return Ok((out, true));
                    }
                }
                Err(StreamError::Closed) => return Ok((out, false)),
                Err(e) => return Err(stream_code(e).unwrap_or(ErrorCode::HttpResponseIncomplete)),
            }
        }
    }

    fn stream_code(e: StreamError) -> Option<ErrorCode> {
        match e {
            StreamError::Closed => None,
            StreamError::LastOperationFailed(e) => Some(
                wasip2::http::types::http_error_code(&e).unwrap_or(ErrorCode::InternalError(Some(e.to_debug_string()))),
            ),
        }
    }

    fn classify(origin: &str, code: ErrorCode) -> HttpError {
        let origin = origin.to_owned();
        let name = format!("{code:?}");
        let name = name.trim_start_matches("ErrorCode::").to_owned();
        match code {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
                HttpError::Denied { origin, code: name }
            }
            ErrorCode::ConnectionLimitReached
            | ErrorCode::HttpRequestBodySize(_)
            | ErrorCode::HttpResponseBodySize(_) => HttpError::Limit { origin, code: name },
            _ => HttpError::Failed { origin, code: name },
        }
    }
}
