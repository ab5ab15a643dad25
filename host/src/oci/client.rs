//! The OCI distribution API, as much as moat needs: manifests and blobs by tag
//! or digest, monolithic blob uploads, manifest pushes, and registry auth
//! (anonymous, Basic, or a bearer token from the registry's token service).
//!
//! Every response body is read against a cap; every blob is checked against
//! its digest before it is returned. Credentials go only to the registry's own
//! host and its token realm, never into a message or a log.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::sign::{self, Stored};
use super::{DOCKER_MANIFEST_TYPE, Digest, MANIFEST_TYPE, MAX_MANIFEST_BYTES, MAX_SIGNATURES, MAX_SMALL_BLOB_BYTES};
use super::{OciError, Reference};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request, body included: manifests, tokens and small blobs.
const SMALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole request for a component layer.
const BLOB_TIMEOUT: Duration = Duration::from_secs(300);

/// A username and password (or token) for one registry. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Credentials {
    /// From two environment variables named in configuration.
    pub fn from_env(username_env: &str, password_env: &str) -> Result<Self, OciError> {
        let get = |name: &str| {
            std::env::var(name).map_err(|_| OciError::Auth(format!("the environment variable {name} is not set")))
        };
        Ok(Credentials { username: get(username_env)?, password: get(password_env)? })
    }

    /// From a docker-style `config.json` (`auths.<registry>.auth`, or
    /// `username`/`password`), for `registry`. `None` when it has no entry.
    pub fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Self>, OciError> {
        let text = std::fs::read_to_string(path).map_err(|source| OciError::Io { path: path.to_owned(), source })?;
        let bad = |why: String| OciError::Auth(format!("{}: {why}", path.display()));
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            auths: std::collections::BTreeMap<String, Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
        }
        let file: File = serde_json::from_str(&text).map_err(|e| bad(format!("not a docker config file: {e}")))?;
        // Keys are `host[:port]`, sometimes with a scheme and a path.
        let key_host = |k: &str| {
            let k = k.strip_prefix("https://").or_else(|| k.strip_prefix("http://")).unwrap_or(k);
            k.split('/').next().unwrap_or(k).to_owned()
        };
        let wanted = if registry == "docker.io" { vec!["docker.io", "index.docker.io"] } else { vec![registry] };
        let Some(entry) = file.auths.iter().find(|(k, _)| wanted.contains(&key_host(k).as_str())).map(|(_, e)| e)
        else {
            return Ok(None);
        };
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials { username: u.clone(), password: p.clone() }));
        }
        let auth = entry.auth.as_deref().ok_or_else(|| bad(format!("the entry for {registry} has no `auth`")))?;
        let decoded = B64.decode(auth.trim()).map_err(|_| bad(format!("the `auth` of {registry} is not base64")))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad(format!("the `auth` of {registry} is not text")))?;
        let (u, p) =
            decoded.split_once(':').ok_or_else(|| bad(format!("the `auth` of {registry} is not user:password")))?;
        Ok(Some(Credentials { username: u.to_owned(), password: p.to_owned() }))
    }
}

/// An OCI image manifest, as far as moat reads one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::of(bytes).to_string(),
            size: bytes.len() as u64,
            annotations: Default::default(),
        }
    }
}

/// A client for one repository's registry.
pub struct Client {
    http: reqwest::Client,
    /// The registry's `host[:port]` (where credentials may be sent).
    host: String,
    credentials: Option<Credentials>,
    /// The `Authorization` value that worked last (Basic, or a bearer token).
    authorization: Mutex<Option<HeaderValue>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("host", &self.host).finish_non_exhaustive()
    }
}

/// A request to make (again, after a 401).
struct Request<'a> {
    method: Method,
    url: String,
    accept: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Option<bytes::Bytes>,
    timeout: Duration,
    what: &'a str,
}

impl Client {
    /// A client for `reference`'s registry: plain HTTP to loopback, HTTPS
    /// (system roots) to everything else; redirects only to HTTPS (or within
    /// loopback), at most five.
    pub fn new(reference: &Reference, credentials: Option<Credentials>) -> Result<Self, OciError> {
        let loopback = reference.is_loopback();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let https = attempt.url().scheme() == "https";
            let local = attempt.url().host_str().is_some_and(|h| {
                h == "localhost"
                    || h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            });
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if https || (loopback && local) {
                attempt.follow()
            } else {
                attempt.error("a redirect away from HTTPS")
            }
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(policy)
            .user_agent(concat!("moat/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A proxy must not see (or break) traffic to this machine.
            builder = builder.no_proxy();
        } else {
            builder = builder.https_only(true);
        }
        let http = builder
            .build()
            .map_err(|source| OciError::Http { what: format!("client for {}", reference.registry), source })?;
        Ok(Client { http, host: reference.registry.clone(), credentials, authorization: Mutex::new(None) })
    }

    /// Sends `req`, answering one auth challenge if the registry asks.
    async fn send(&self, req: Request<'_>) -> Result<reqwest::Response, OciError> {
        let mut answered = false;
        loop {
            let mut b = self.http.request(req.method.clone(), &req.url).timeout(req.timeout);
            if let Some(a) = req.accept {
                b = b.header(header::ACCEPT, a);
            }
            if let Some(c) = req.content_type {
                b = b.header(header::CONTENT_TYPE, c);
            }
            if let Some(body) = &req.body {
                b = b.body(body.clone());
            }
            let own_host = url::Url::parse(&req.url).ok().is_some_and(|u| self.is_own(&u));
            let auth = self.authorization.lock().expect("auth lock").clone();
            if let (true, Some(a)) = (own_host, auth) {
                b = b.header(header::AUTHORIZATION, a);
            }
            let resp = b.send().await.map_err(|source| OciError::Http { what: req.what.to_owned(), source })?;
            if resp.status() != StatusCode::UNAUTHORIZED || answered || !own_host {
                if resp.status() == StatusCode::UNAUTHORIZED {
                    return Err(OciError::Unauthorized {
                        registry: self.host.clone(),
                        given: if self.credentials.is_some() { "" } else { " (none were configured)" },
                    });
                }
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default();
            let value = self.answer(&challenge).await?;
            *self.authorization.lock().expect("auth lock") = Some(value);
            answered = true;
        }
    }

    /// Whether `url` is on the registry's own host (where credentials go).
    fn is_own(&self, url: &url::Url) -> bool {
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return false,
        };
        authority == self.host || (self.host == "docker.io" && url.host_str() == Some("registry-1.docker.io"))
    }

    /// The `Authorization` value answering `challenge`.
    async fn answer(&self, challenge: &str) -> Result<HeaderValue, OciError> {
        let basic = |c: &Credentials| {
            let mut v =
                HeaderValue::from_str(&format!("Basic {}", B64.encode(format!("{}:{}", c.username, c.password))))
                    .map_err(|_| OciError::Auth("the credentials cannot be sent in a header".into()))?;
            v.set_sensitive(true);
            Ok::<_, OciError>(v)
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let c = self.credentials.as_ref().ok_or_else(|| OciError::Unauthorized {
                registry: self.host.clone(),
                given: " (none were configured)",
            })?;
            return basic(c);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(OciError::Auth(format!(
                "{} asks for unknown auth `{}`",
                self.host,
                crate::text::shown(scheme)
            )));
        }
        let params = challenge_params(params);
        let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        let realm =
            get("realm").ok_or_else(|| OciError::Auth(format!("{}: a bearer challenge without a realm", self.host)))?;
        let mut url = url::Url::parse(realm)
            .map_err(|_| OciError::Auth(format!("{}: the token realm is not a URL", self.host)))?;
        let realm_loopback = url.host_str().is_some_and(|h| {
            h == "localhost" || h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        });
        if url.scheme() != "https" && !realm_loopback {
            return Err(OciError::Auth(format!(
                "{}: the token realm is not HTTPS; refusing to send credentials",
                self.host
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            for k in ["service", "scope"] {
                if let Some(v) = get(k) {
                    q.append_pair(k, v);
                }
            }
        }
        let mut b = self.http.get(url).timeout(SMALL_TIMEOUT);
        if let Some(c) = &self.credentials {
            b = b.header(header::AUTHORIZATION, basic(c)?);
        }
        let resp = b.send().await.map_err(|source| OciError::Http { what: "the token service".into(), source })?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(OciError::Unauthorized { registry: self.host.clone(), given: "" });
        }
        let body =
            read_capped(check(resp, "the token service").await?, MAX_SMALL_BLOB_BYTES, "the token response").await?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|_| OciError::Auth(format!("{}: the token service sent no JSON token", self.host)))?;
        let token =
            t.token.or(t.access_token).ok_or_else(|| OciError::Auth("the token service sent no token".into()))?;
        let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| OciError::Auth("the token service sent an unusable token".into()))?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// The manifest `reference` names (by digest if it has one), and the digest
    /// of the bytes received. A digest reference must match them.
    pub async fn manifest(&self, reference: &Reference) -> Result<(Digest, Vec<u8>), OciError> {
        self.manifest_at(reference, reference.selector())
            .await?
            .ok_or_else(|| OciError::NotFound { what: format!("the manifest {reference}") })
    }

    async fn manifest_at(&self, reference: &Reference, selector: &str) -> Result<Option<(Digest, Vec<u8>)>, OciError> {
        let what =
            format!("the manifest {}/{}:{}", reference.registry, reference.repository, crate::text::shown(selector));
        let resp = self
            .send(Request {
                method: Method::GET,
                url: format!("{}/manifests/{selector}", reference.api()),
                accept: Some(concat!(
                    "application/vnd.oci.image.manifest.v1+json, ",
                    "application/vnd.docker.distribution.manifest.v2+json"
                )),
                content_type: None,
                body: None,
                timeout: SMALL_TIMEOUT,
                what: &what,
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let bytes = read_capped(check(resp, &what).await?, MAX_MANIFEST_BYTES, &what).await?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = Digest::parse(selector)
            && expected != digest
        {
            return Err(OciError::DigestMismatch { what, expected: expected.to_string(), actual: digest.to_string() });
        }
        Ok(Some((digest, bytes)))
    }

    /// The blob `digest`, at most `cap` bytes, checked against its digest.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        cap: u64,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        let what = format!("{what} {digest}");
        let resp = self
            .send(Request {
                method: Method::GET,
                url: format!("{}/blobs/{digest}", reference.api()),
                accept: None,
                content_type: None,
                body: None,
                timeout: if cap > MAX_SMALL_BLOB_BYTES { BLOB_TIMEOUT } else { SMALL_TIMEOUT },
                what: &what,
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(OciError::NotFound { what });
        }
        let bytes = read_capped(check(resp, &what).await?, cap, &what).await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(OciError::DigestMismatch { what, expected: digest.to_string(), actual: actual.to_string() });
        }
        Ok(bytes)
    }

    /// The cosign signatures stored for `digest` (at most [`MAX_SIGNATURES`]).
    pub async fn signatures(&self, reference: &Reference, digest: &Digest) -> Result<Vec<Stored>, OciError> {
        let tag = digest.signature_tag();
        let Some((sig_digest, bytes)) = self.manifest_at(reference, &tag).await? else {
            return Err(OciError::Unsigned { digest: digest.to_string(), tag });
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| OciError::BadSignature {
            digest: digest.to_string(),
            why: format!("the signature manifest {sig_digest} is not a manifest: {e}"),
        })?;
        let mut out = Vec::new();
        for layer in m.layers.iter().filter(|l| l.media_type == sign::PAYLOAD_TYPE).take(MAX_SIGNATURES) {
            let (Some(signature), Ok(d)) =
                (layer.annotations.get(sign::SIGNATURE_ANNOTATION), Digest::parse(&layer.digest))
            else {
                continue;
            };
            let payload = self.blob(reference, &d, MAX_SMALL_BLOB_BYTES, "a signature payload").await?;
            out.push(Stored { payload: B64.encode(payload), signature: signature.clone() });
        }
        Ok(out)
    }

    /// The signature manifest for `digest`, if there is one (to add a layer to).
    pub async fn signature_manifest(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<Manifest>, OciError> {
        match self.manifest_at(reference, &digest.signature_tag()).await? {
            None => Ok(None),
            Some((d, bytes)) => serde_json::from_slice(&bytes).map(Some).map_err(|e| OciError::BadSignature {
                digest: digest.to_string(),
                why: format!("the signature manifest {d} is not a manifest: {e}"),
            }),
        }
    }

    /// Uploads `bytes` as a blob unless the registry has it.
    pub async fn push_blob(&self, reference: &Reference, bytes: &[u8]) -> Result<Digest, OciError> {
        let digest = Digest::of(bytes);
        let what = format!("uploading {digest}");
        let head = self
            .send(Request {
                method: Method::HEAD,
                url: format!("{}/blobs/{digest}", reference.api()),
                accept: None,
                content_type: None,
                body: None,
                timeout: SMALL_TIMEOUT,
                what: &what,
            })
            .await?;
        if head.status().is_success() {
            return Ok(digest);
        }
        let start = self
            .send(Request {
                method: Method::POST,
                url: format!("{}/blobs/uploads/", reference.api()),
                accept: None,
                content_type: None,
                body: Some(bytes::Bytes::new()),
                timeout: SMALL_TIMEOUT,
                what: &what,
            })
            .await?;
        let start = check(start, &what).await?;
        let location = start.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            OciError::Status { what: what.clone(), status: 202, detail: " without a Location".into() }
        })?;
        let mut url = url::Url::parse(&reference.api())
            .and_then(|base| base.join(location))
            .map_err(|_| OciError::Status { what: what.clone(), status: 202, detail: " with a bad Location".into() })?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let put = self
            .send(Request {
                method: Method::PUT,
                url: url.to_string(),
                accept: None,
                content_type: Some("application/octet-stream"),
                body: Some(bytes::Bytes::copy_from_slice(bytes)),
                timeout: BLOB_TIMEOUT,
                what: &what,
            })
            .await?;
        check(put, &what).await?;
        Ok(digest)
    }

    /// Puts `manifest` at `tag`; returns its digest.
    pub async fn push_manifest(&self, reference: &Reference, tag: &str, manifest: &[u8]) -> Result<Digest, OciError> {
        let what = format!("pushing the manifest {}:{tag}", reference.repository_name());
        let resp = self
            .send(Request {
                method: Method::PUT,
                url: format!("{}/manifests/{tag}", reference.api()),
                accept: None,
                content_type: Some(MANIFEST_TYPE),
                body: Some(bytes::Bytes::copy_from_slice(manifest)),
                timeout: SMALL_TIMEOUT,
                what: &what,
            })
            .await?;
        check(resp, &what).await?;
        Ok(Digest::of(manifest))
    }
}

/// Whether a manifest type is one moat reads.
pub fn is_manifest_type(t: &str) -> bool {
    t == MANIFEST_TYPE || t == DOCKER_MANIFEST_TYPE
}

/// `resp` if it succeeded, else an error with the start of the registry's answer.
async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response, OciError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = read_capped(resp, 4096, what).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let detail = if text.trim().is_empty() { String::new() } else { format!(": {}", crate::text::shown(text.trim())) };
    Err(OciError::Status { what: what.to_owned(), status, detail })
}

/// The body of `resp`, refused as soon as it passes `cap` bytes (before, when
/// `Content-Length` says so).
async fn read_capped(mut resp: reqwest::Response, cap: u64, what: &str) -> Result<Vec<u8>, OciError> {
    let too_large = || OciError::TooLarge { what: what.to_owned(), limit: cap };
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|source| OciError::Http { what: what.to_owned(), source })? {
        if (out.len() + chunk.len()) as u64 > cap {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `realm="…",service="…",scope="…"` as name/value pairs (values may be quoted;
/// a quoted value may hold commas).
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() && out.len() < 16 {
        let Some((name, after)) = rest.split_once('=') else { break };
        let name = name.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_owned(), &q[end + 1..]),
                None => (q.to_owned(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_owned(), &after[end..]),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.push((name, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = challenge_params(
            r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example.com/token".into()),
                ("service".into(), "registry.example.com".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(
            challenge_params("realm=x, service=y"),
            vec![("realm".into(), "x".into()), ("service".into(), "y".into())]
        );
    }

    #[test]
    fn docker_config_entries_are_found_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = B64.encode("ci:s3cret");
        std::fs::write(&path, format!(r#"{{"auths":{{"https://127.0.0.1:5000/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}}}}}}"#)).unwrap();
        let c = Credentials::from_docker_config(&path, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("ci", "s3cret"));
        assert_eq!(format!("{c:?}"), "Credentials(..)", "never printed");
        assert_eq!(Credentials::from_docker_config(&path, "ghcr.io").unwrap().unwrap().username, "u");
        assert!(Credentials::from_docker_config(&path, "quay.io").unwrap().is_none());
    }
}
