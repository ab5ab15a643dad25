//! The host side of `wasi:http/outgoing-handler`: every request a plugin sends
//! passes through [`Egress`], which
//!
//! - counts it against the call's caps (requests, request bytes, response
//!   bytes; passing one ends the call with a clear error),
//! - checks its origin against the plugin's grants and refuses anything else
//!   with `HttpRequestDenied`, telling the client why in a log notification,
//! - adds the secret headers granted for that origin (replacing any the plugin
//!   set), read from the environment at that moment,
//! - resolves the name itself, drops every special address no grant names,
//!   and connects to a checked address (there is no second resolution),
//! - speaks HTTP/1.1 (TLS for `https`, checked against the system's roots),
//!   with every timeout clamped to the time the call has left,
//! - never follows a redirect: each hop is a new request of the plugin's,
//! - and writes one audit line per request (never headers or bodies).
//!
//! Dropping the call's store drops every request in flight with it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use wasmtime_wasi::runtime::{AbortOnDropJoinHandle, spawn};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::deadline::SharedDeadline;
use super::types::{LogLevel, PluginEvent};
use crate::config::HttpLimits;
use crate::egress::{Denied, Host, HttpPolicy, Origin, Scheme};

/// Addresses of one name tried at most.
const MAX_ADDRESSES: usize = 8;
/// Longest reason kept for the audit line and the client's notification.
const MAX_REASON_BYTES: usize = 512;
/// Name lookups running at once, host-wide. Each holds a thread of the
/// blocking pool until the system resolver answers or gives up (which the
/// call's deadline cannot cut short), so they are capped here.
const MAX_LOOKUPS: usize = 32;
static LOOKUPS: LazyLock<Arc<tokio::sync::Semaphore>> =
    LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(MAX_LOOKUPS)));

/// Where outbound requests are counted (the process's metrics implement it;
/// the runtime does not import them).
pub trait EgressMetrics: Send + Sync {
    /// One request of `plugin` ended (`outcome`: ok, denied, limit, error).
    fn egress(&self, plugin: &str, outcome: &'static str, took: Duration, sent: u64, received: u64);
}

/// Raised (as a trap) when a call passed one of its outbound HTTP caps.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpLimitPassed(pub String);

/// What one call has sent and read, shared by its requests and their bodies.
pub(super) struct CallEgress {
    pub(super) plugin: Arc<str>,
    /// The tool, resource or prompt being served.
    pub(super) item: Arc<str>,
    pub(super) subject: Option<String>,
    pub(super) limits: HttpLimits,
    pub(super) deadline: SharedDeadline,
    pub(super) events: Option<mpsc::Sender<PluginEvent>>,
    pub(super) metrics: Option<Arc<dyn EgressMetrics>>,
    requests: AtomicU32,
    sent: AtomicU64,
    received: AtomicU64,
    /// Why the call must end (a cap was passed), once it must.
    stop: OnceLock<String>,
}

impl CallEgress {
    pub(super) fn new(
        plugin: Arc<str>,
        item: Arc<str>,
        subject: Option<String>,
        limits: HttpLimits,
        deadline: SharedDeadline,
        events: Option<mpsc::Sender<PluginEvent>>,
        metrics: Option<Arc<dyn EgressMetrics>>,
    ) -> Self {
        CallEgress {
            plugin,
            item,
            subject,
            limits,
            deadline,
            events,
            metrics,
            requests: AtomicU32::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            stop: OnceLock::new(),
        }
    }

    /// Why the call must end, if a cap was passed.
    pub(super) fn stopped(&self) -> Option<&str> {
        self.stop.get().map(String::as_str)
    }

    fn stop(&self, why: &str) {
        let _ = self.stop.set(why.to_owned());
    }

    /// Tells the client (a log notification of the call) why a request failed.
    fn warn(&self, message: String) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(PluginEvent::Log { level: LogLevel::Warning, message });
        }
    }
}

/// The `wasi:http` hooks of one call.
pub(super) struct Egress {
    policy: Arc<HttpPolicy>,
    call: Arc<CallEgress>,
}

impl Egress {
    pub(super) fn new(policy: Arc<HttpPolicy>, call: CallEgress) -> Self {
        Egress { policy, call: Arc::new(call) }
    }

    pub(super) fn call(&self) -> &Arc<CallEgress> {
        &self.call
    }
}

/// The audit record of one request, written when the last part of it (the
/// request, the connection, the response body) is dropped.
struct Record {
    call: Arc<CallEgress>,
    method: http::Method,
    started: Instant,
    state: Mutex<RecordState>,
    sent: AtomicU64,
    received: AtomicU64,
}

#[derive(Default)]
struct RecordState {
    origin: Option<String>,
    peer: Option<SocketAddr>,
    status: Option<u16>,
    outcome: Option<&'static str>,
    reason: Option<String>,
}

impl Record {
    fn new(call: Arc<CallEgress>, method: http::Method) -> Arc<Self> {
        Arc::new(Record {
            call,
            method,
            started: Instant::now(),
            state: Mutex::new(RecordState::default()),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut RecordState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records why the request did not get (or finish) its response, tells the
    /// client, and hands back the error code for the plugin.
    fn fail(&self, outcome: &'static str, mut reason: String, code: Error) -> Error {
        crate::text::cut(&mut reason, MAX_REASON_BYTES);
        self.call.warn(format!("moat: HTTP request {}: {reason}", outcome_verb(outcome)));
        self.with(|s| {
            s.outcome.get_or_insert(outcome);
            s.reason.get_or_insert(reason);
        });
        code
    }

    /// How the request ended, if that is known yet.
    fn outcome(&self) -> Option<&'static str> {
        self.with(|s| s.outcome)
    }

    /// A cap was passed: the call ends, and the request fails with `code`.
    fn limit(&self, reason: String, code: Error) -> Error {
        self.call.stop(&reason);
        self.fail("limit", reason, code)
    }
}

fn outcome_verb(outcome: &str) -> &'static str {
    match outcome {
        "denied" => "denied",
        "limit" => "stopped at a limit",
        _ => "failed",
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let outcome = s.outcome.unwrap_or(if s.status.is_some() { "ok" } else { "error" });
        let took = self.started.elapsed();
        let (sent, received) = (self.sent.load(Ordering::Relaxed), self.received.load(Ordering::Relaxed));
        let call = &self.call;
        // Every string here may come from the plugin: logged escaped (`?`).
        tracing::info!(
            target: "moat::audit",
            plugin = %call.plugin,
            item = ?call.item,
            subject = ?call.subject.as_deref().unwrap_or("-"),
            // A method is a token (ASCII): cut on any byte.
            method = ?&self.method.as_str()[..self.method.as_str().len().min(32)],
            origin = ?s.origin.as_deref().unwrap_or("-"),
            peer = %s.peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            status = s.status.unwrap_or(0),
            outcome,
            reason = ?s.reason.as_deref().unwrap_or("-"),
            bytes_sent = sent,
            bytes_received = received,
            duration_ms = took.as_secs_f64() * 1e3,
            "outbound request"
        );
        if let Some(m) = &call.metrics {
            m.egress(&call.plugin, outcome, took, sent, received);
        }
    }
}

/// The timeouts of one request: what the plugin asked, never more than the
/// call has left.
#[derive(Clone, Copy)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    fn clamp(options: Option<RequestOptions>, left: Duration) -> Self {
        let o = options.unwrap_or_default();
        let pick = |asked: Option<Duration>| asked.map_or(left, |d| d.min(left)).max(Duration::from_millis(1));
        Timeouts {
            connect: pick(o.connect_timeout),
            first_byte: pick(o.first_byte_timeout),
            between_bytes: pick(o.between_bytes_timeout),
        }
    }
}

type SendResult =
    wasmtime_wasi_http::Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>)>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let record = Record::new(self.call.clone(), request.method().clone());
        match self.admit(&mut request, &record) {
            Err(code) => Box::new(std::future::ready(Err(code))),
            Ok(origin) => {
                let left = self.call.deadline.remaining(Instant::now());
                let timeouts = Timeouts::clamp(options, left);
                Box::new(send(self.policy.clone(), origin, timeouts, request, record))
            }
        }
    }

    // The defaults log a warning per failed request: a plugin could fill the
    // host's log. The audit line says it once.
    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        if err.is_timeout() { ErrorCode::ConnectionReadTimeout } else { ErrorCode::HttpProtocolError }
    }

    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> ErrorCode {
        match err.kind() {
            std::io::ErrorKind::TimedOut => ErrorCode::ConnectionTimeout,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                ErrorCode::ConnectionTerminated
            }
            _ => ErrorCode::ConnectionRefused,
        }
    }

    fn p2_error_from_tls(&mut self, _err: &std::io::Error) -> ErrorCode {
        ErrorCode::TlsProtocolError
    }
}

impl Egress {
    /// Everything decided before the request leaves: the caps, the grant, the
    /// secret headers, the request line.
    fn admit(&self, request: &mut http::Request<WasiBody>, record: &Record) -> Result<Origin, Error> {
        let limits = self.call.limits;
        if let Some(why) = self.call.stopped() {
            return Err(record.fail("limit", format!("the call is ending: {why}"), Error::ConnectionLimitReached));
        }
        let n = self.call.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if n > limits.max_requests {
            let why = format!("the call sent more than {} HTTP requests (max_http_requests)", limits.max_requests);
            return Err(record.limit(why, Error::ConnectionLimitReached));
        }
        let uri = request.uri();
        let scheme = uri.scheme_str().and_then(Scheme::parse);
        let authority = uri.authority().map_or("", |a| a.as_str());
        let Some(scheme) = scheme else {
            return Err(record.fail("denied", "only http and https are supported".into(), Error::HttpProtocolError));
        };
        // TRACE echoes the request (secret headers included) back to the
        // plugin; CONNECT asks for a tunnel. Neither has a use here.
        if matches!(*request.method(), http::Method::TRACE | http::Method::CONNECT) {
            let why = format!("the method {} is not allowed", request.method());
            return Err(record.fail("denied", why, Error::HttpRequestMethodInvalid));
        }
        let origin = Origin::of_request(scheme, authority)
            .map_err(|e| record.fail("denied", e, Error::HttpRequestUriInvalid))?;
        record.with(|s| s.origin = Some(origin.to_string()));
        self.policy
            .check_origin(&origin)
            .map_err(|d| record.fail("denied", d.to_string(), Error::HttpRequestDenied))?;

        let sent = self.call.sent.load(Ordering::Relaxed);
        let left = limits.max_request_bytes.saturating_sub(sent);
        if let Some(len) = content_length(request.headers())
            && len > left
        {
            let why = format!(
                "a request body of {len} bytes passes the call's {} bytes of request bodies (max_http_request_bytes)",
                limits.max_request_bytes
            );
            return Err(record.limit(why, Error::HttpRequestBodySize(Some(left))));
        }

        for grant in self.policy.headers_for(&origin) {
            let value = std::env::var(&grant.value_env).ok().filter(|v| !v.is_empty());
            let Some(value) = value else {
                let why = format!(
                    "the secret header {} for {origin} comes from ${}, which is not set",
                    grant.header, grant.value_env
                );
                return Err(record.fail("denied", why, Error::HttpRequestDenied));
            };
            let Ok(mut value) = HeaderValue::from_str(&format!("{}{value}", grant.value_prefix)) else {
                let why = format!("${} is not a valid value for the header {}", grant.value_env, grant.header);
                return Err(record.fail("denied", why, Error::HttpRequestDenied));
            };
            value.set_sensitive(true);
            // `insert` replaces every value the plugin set for this name.
            request.headers_mut().insert(grant.header.clone(), value);
        }

        // The request line names the path only; the host travels in `Host`.
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        *request.uri_mut() = http::Uri::try_from(path)
            .map_err(|e| record.fail("denied", format!("the request target: {e}"), Error::HttpRequestUriInvalid))?;
        Ok(origin)
    }
}

fn connect_error(e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::TimedOut => Error::ConnectionTimeout,
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => Error::DestinationUnavailable,
        K::ConnectionReset | K::ConnectionAborted => Error::ConnectionTerminated,
        _ => Error::ConnectionRefused,
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// What a connection runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The part of a request that waits: resolving, connecting, the response head.
async fn send(
    policy: Arc<HttpPolicy>,
    origin: Origin,
    timeouts: Timeouts,
    request: http::Request<WasiBody>,
    record: Arc<Record>,
) -> SendResult {
    let call = record.call.clone();
    let method = request.method().clone();
    let addresses = resolve(&origin, timeouts.connect).await.map_err(|(why, code)| record.fail("error", why, code))?;
    let mut allowed = Vec::new();
    let mut refused = None;
    for ip in addresses {
        match policy.check_address(&origin, ip) {
            Ok(()) => allowed.push(SocketAddr::new(ip.to_canonical(), origin.port)),
            Err(d) => {
                refused.get_or_insert(d);
            }
        }
    }
    if allowed.is_empty() {
        let why = refused.unwrap_or_else(|| Denied::NoAddress(origin.host.clone()));
        return Err(record.fail("denied", why.to_string(), Error::DestinationIpProhibited));
    }

    let tcp = tokio::time::timeout(timeouts.connect, connect(&allowed))
        .await
        .map_err(|_| record.fail("error", format!("connecting to {origin} timed out"), Error::ConnectionTimeout))?
        .map_err(|e| record.fail("error", format!("connecting to {origin}: {e}"), connect_error(&e)))?;
    record.with(|s| s.peer = tcp.peer_addr().ok());
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = match origin.scheme {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => {
            let tls = TLS.as_ref().map_err(|e| record.fail("error", e.clone(), Error::ConfigurationError))?;
            let name = match &origin.host {
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                Host::Name(n) => ServerName::try_from(n.clone()).map_err(|_| {
                    record.fail("error", format!("{n} is not a TLS server name"), Error::TlsProtocolError)
                })?,
            };
            let handshake = tokio::time::timeout(timeouts.connect, tls.connect(name, tcp));
            let stream = handshake
                .await
                .map_err(|_| {
                    record.fail("error", format!("the TLS handshake with {origin} timed out"), Error::ConnectionTimeout)
                })?
                .map_err(|e| record.fail("error", format!("TLS with {origin}: {e}"), Error::TlsProtocolError))?;
            Box::new(stream)
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
        .await
        .map_err(|e| record.fail("error", format!("HTTP with {origin}: {e}"), Error::HttpProtocolError))?;
    // The connection lives as long as the response body (or this future).
    let conn = spawn(async move {
        let _ = conn.await;
    });

    let request = request.map(|body| RequestBody { inner: body, record: record.clone() }.boxed_unsync());
    let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
        .await
        .map_err(|_| record.fail("error", format!("{origin} sent no response in time"), Error::ConnectionReadTimeout))?
        .map_err(|e| {
            // This request's body passed a cap: that is already recorded.
            let code = if record.outcome() == Some("limit") {
                Error::HttpRequestBodySize(Some(call.limits.max_request_bytes))
            } else {
                Error::HttpProtocolError
            };
            record.fail("error", format!("{origin}: {e}"), code)
        })?;
    record.with(|s| s.status = Some(response.status().as_u16()));

    let limits = call.limits;
    let left = limits.max_response_bytes.saturating_sub(call.received.load(Ordering::Relaxed));
    // HEAD, 1xx, 204 and 304 answers may announce a length they never send.
    let status = response.status().as_u16();
    let bodiless = method == http::Method::HEAD || status < 200 || status == 204 || status == 304;
    if let Some(len) = content_length(response.headers()).filter(|_| !bodiless)
        && len > left
    {
        let why = format!(
            "{origin} answers with a body of {len} bytes, past the call's {} bytes of responses (max_http_response_bytes)",
            limits.max_response_bytes
        );
        return Err(record.limit(why, Error::HttpResponseBodySize(Some(left))));
    }
    let between = timeouts.between_bytes;
    let response = response.map(|incoming| {
        ResponseBody {
            inner: incoming,
            record,
            between,
            timer: Box::pin(tokio::time::sleep(between)),
            waiting: false,
            done: false,
            _conn: conn,
        }
        .boxed_unsync()
    });
    Ok((response, Box::new(async { Ok(()) })))
}

/// The addresses to try: the literal one, or what the name resolves to now.
async fn resolve(origin: &Origin, limit: Duration) -> Result<Vec<IpAddr>, (String, Error)> {
    let name = match &origin.host {
        Host::Ip(ip) => return Ok(vec![*ip]),
        Host::Name(name) => name,
    };
    let lookup = async {
        let permit = LOOKUPS.clone().acquire_owned().await.map_err(std::io::Error::other)?;
        let (name, port) = (name.clone(), origin.port);
        // The permit goes with the thread: it is free again only when the
        // resolver has answered, even if the call has long ended.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
        })
        .await
        .map_err(std::io::Error::other)?
    };
    match tokio::time::timeout(limit, lookup).await {
        Err(_) => Err((format!("resolving {name} timed out"), Error::DnsTimeout)),
        Ok(Err(e)) => Err((
            format!("{name} does not resolve: {e}"),
            Error::DnsError { rcode: Some(e.kind().to_string()), info_code: None },
        )),
        Ok(Ok(addrs)) => {
            let mut ips: Vec<IpAddr> = Vec::new();
            for a in addrs {
                if !ips.contains(&a.ip()) && ips.len() < MAX_ADDRESSES {
                    ips.push(a.ip());
                }
            }
            Ok(ips)
        }
    }
}

/// Connects to the first checked address that answers.
async fn connect(addresses: &[SocketAddr]) -> std::io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for a in addresses {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
}

/// TLS for `https` origins: the system's trust roots, TLS 1.2 and 1.3.
static TLS: LazyLock<Result<TlsConnector, String>> = LazyLock::new(|| {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("cannot load the system's TLS trust roots: {e}"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
});

/// The plugin's request body, counted against the call's request bytes.
struct RequestBody {
    inner: WasiBody,
    record: Arc<Record>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
        {
            let n = data.len() as u64;
            let call = &this.record.call;
            this.record.sent.fetch_add(n, Ordering::Relaxed);
            let total = call.sent.fetch_add(n, Ordering::Relaxed) + n;
            if total > call.limits.max_request_bytes {
                let why = format!(
                    "the call sent more than {} bytes of request bodies (max_http_request_bytes)",
                    call.limits.max_request_bytes
                );
                return Poll::Ready(Some(Err(this
                    .record
                    .limit(why, Error::HttpRequestBodySize(Some(call.limits.max_request_bytes))))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body handed to the plugin: counted against the call's
/// response bytes, and ended when no byte comes for `between`.
struct ResponseBody {
    inner: hyper::body::Incoming,
    record: Arc<Record>,
    between: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Whether the timer runs: from the first poll that found no data.
    waiting: bool,
    done: bool,
    _conn: AbortOnDropJoinHandle<()>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    let call = &this.record.call;
                    this.record.received.fetch_add(n, Ordering::Relaxed);
                    let total = call.received.fetch_add(n, Ordering::Relaxed) + n;
                    if total > call.limits.max_response_bytes {
                        this.done = true;
                        let cap = call.limits.max_response_bytes;
                        let why = format!("the call read more than {cap} bytes of responses (max_http_response_bytes)");
                        return Poll::Ready(Some(Err(this.record.limit(why, Error::HttpResponseBodySize(Some(cap))))));
                    }
                }
                this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                let why = format!("the response broke off: {e}");
                Poll::Ready(Some(Err(this.record.fail("error", why, Error::HttpResponseIncomplete))))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                // hyper reads the socket only when the plugin reads the body:
                // the wait counts from here, not from the response head.
                if !this.waiting {
                    this.waiting = true;
                    this.timer.as_mut().reset(tokio::time::Instant::now() + this.between);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    let why = format!("no byte of the response for {} ms", this.between.as_millis());
                    return Poll::Ready(Some(Err(this.record.fail("error", why, Error::ConnectionReadTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_never_outlast_the_call() {
        let left = Duration::from_millis(300);
        let t = Timeouts::clamp(None, left);
        assert_eq!((t.connect, t.first_byte, t.between_bytes), (left, left, left));
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_millis(50)),
            first_byte_timeout: Some(Duration::from_secs(600)),
            between_bytes_timeout: None,
        };
        let t = Timeouts::clamp(Some(asked), left);
        assert_eq!((t.connect, t.first_byte, t.between_bytes), (Duration::from_millis(50), left, left));
        assert_eq!(Timeouts::clamp(None, Duration::ZERO).connect, Duration::from_millis(1));
    }
}
