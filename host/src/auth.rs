//! Bearer tokens: JWT verification against configured public keys, a cache of
//! verified tokens, and the dev key of `--dev` mode.
//!
//! A token is read only from the `Authorization` header. It is never logged, never
//! forwarded and never reaches a plugin; the cache keys on its SHA-256.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Issuer and audience of dev tokens (`moat serve --dev`, `moat token --dev`).
pub const DEV_ISSUER: &str = "moat-dev";
pub const DEV_AUDIENCE: &str = "moat-dev";
/// Every scope a dev token gets unless told otherwise.
pub const DEV_SCOPES: &str = "tools:read tools:write";
/// Most verified tokens remembered; the cache is cleared when full.
const CACHE_CAPACITY: usize = 10_000;
/// Longest token looked at; longer ones are refused unread.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl AuthError {
    /// Why the token was refused, without the prefix.
    pub fn reason(&self) -> &str {
        match self {
            AuthError::Missing => "no bearer token",
            AuthError::Invalid(reason) => reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a public key (PEM or JWK; RSA, EC P-256/P-384 or Ed25519): {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("cannot create the dev key in {dir}: {reason}")]
    Dev { dir: PathBuf, reason: String },
    #[error("`{0}` is a shared-secret algorithm; tokens must be signed with a public-key algorithm")]
    SharedSecretAlgorithm(String),
    #[error("no token algorithms are allowed: name at least one (e.g. RS256)")]
    NoAlgorithms,
}

/// The verified caller of a request, set by the auth middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub scopes: Vec<String>,
    /// The OAuth client the token was issued to (`client_id` or `azp`).
    pub client_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scp: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    iss: String,
    /// A string or an array of strings; checked by `jsonwebtoken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azp: Option<String>,
}

struct Key {
    kid: Option<String>,
    key: DecodingKey,
    family: AlgorithmFamily,
}

/// Verified tokens by SHA-256: the caller and the token's `exp`.
type TokenCache = HashMap<[u8; 32], (Arc<Caller>, u64)>;

/// Checks bearer tokens: signature by one of the keys, `alg` in the allowlist,
/// `iss`, `aud`, `exp` and `nbf` (with leeway).
pub struct Verifier {
    keys: Vec<Key>,
    jwks: Option<Jwks>,
    validation: Validation,
    cache: Mutex<TokenCache>,
}

/// Keys fetched from the identity provider's JWKS endpoint.
struct Jwks {
    uri: String,
    client: reqwest::Client,
    keys: arc_swap::ArcSwap<Vec<Key>>,
    /// When an unknown `kid` last caused a fetch: at most one per [`REFETCH_GAP`].
    last_refetch: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// Shortest time between two fetches caused by unknown `kid`s.
const REFETCH_GAP: Duration = Duration::from_secs(5);
/// Refresh period when the JWKS response names none (Cache-Control max-age).
const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(300);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a JOSE `typ` names an access token (RFC 9068 §4 allows both forms;
/// plain `JWT` is what most identity providers send).
fn is_access_token_type(typ: &str) -> bool {
    ["JWT", "at+jwt", "application/at+jwt"].iter().any(|t| typ.eq_ignore_ascii_case(t))
}

impl Verifier {
    /// Tokens must be signed with one of `algorithms`; shared-secret (HMAC)
    /// algorithms are refused.
    pub fn new(issuer: &str, audience: &str, algorithms: &[Algorithm], leeway_s: u64) -> Result<Self, KeyError> {
        if let Some(hmac) = algorithms.iter().find(|a| a.family() == AlgorithmFamily::Hmac) {
            return Err(KeyError::SharedSecretAlgorithm(format!("{hmac:?}")));
        }
        let algs = algorithms.to_vec();
        let mut validation = Validation::new(*algs.first().ok_or(KeyError::NoAlgorithms)?);
        validation.algorithms = algs;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = leeway_s;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(Verifier { keys: Vec::new(), jwks: None, validation, cache: Mutex::new(HashMap::new()) })
    }

    /// Takes keys from `uri` too: fetched now (a failure is logged and retried in
    /// the background), refreshed as its Cache-Control says, and refetched when a
    /// token names an unknown `kid`.
    pub async fn with_jwks(mut self, uri: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let jwks =
            Jwks { uri: uri.to_owned(), client, keys: Default::default(), last_refetch: tokio::sync::Mutex::new(None) };
        self.jwks = Some(jwks);
        if let Err(e) = self.refresh().await {
            tracing::warn!(uri, error = %e, "cannot fetch the JWKS; will retry");
        }
        self
    }

    /// Refreshes the JWKS in the background until the process ends.
    pub fn spawn_refresh(self: &Arc<Self>) {
        if self.jwks.is_none() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut wait = DEFAULT_JWKS_TTL;
            loop {
                tokio::time::sleep(wait).await;
                wait = match this.refresh().await {
                    Ok(ttl) => ttl,
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys we have");
                        Duration::from_secs(30)
                    }
                };
            }
        });
    }

    /// Fetches the JWKS and swaps in its keys; returns how long they are fresh.
    async fn refresh(&self) -> Result<Duration, String> {
        let Some(jwks) = &self.jwks else { return Ok(DEFAULT_JWKS_TTL) };
        let response = jwks.client.get(&jwks.uri).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", jwks.uri, response.status()));
        }
        let ttl = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()))
            .map_or(DEFAULT_JWKS_TTL, |s| Duration::from_secs(s.clamp(30, 86_400)));
        let set: jsonwebtoken::jwk::JwkSet = response.json().await.map_err(|e| format!("not a JWK set: {e}"))?;
        let keys: Vec<Key> = set.keys.iter().filter_map(jwk_key).collect();
        tracing::info!(uri = %jwks.uri, keys = keys.len(), "JWKS loaded");
        jwks.keys.store(Arc::new(keys));
        // Tokens verified by a key that is gone must not keep working.
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(ttl)
    }

    fn knows_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
            || self.jwks.as_ref().is_some_and(|j| j.keys.load().iter().any(|k| k.kid.as_deref() == Some(kid)))
    }

    /// Refetches the JWKS for an unknown `kid`, unless one was fetched for that
    /// reason in the last [`REFETCH_GAP`]. Whether new keys arrived.
    async fn refetch_for_unknown_kid(&self) -> bool {
        let Some(jwks) = &self.jwks else { return false };
        let mut last = jwks.last_refetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFETCH_GAP) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        match self.refresh().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch for an unknown kid failed");
                false
            }
        }
    }

    /// Adds a public key file: PEM (RSA, EC, Ed25519), a JWK, or a JWK set.
    pub fn add_pem_file(&mut self, path: &Path) -> Result<(), KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        let parse = |reason: String| KeyError::Parse { path: path.to_owned(), reason };
        if bytes.trim_ascii_start().starts_with(b"{") {
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| parse(e.to_string()))?;
            let jwks: Vec<jsonwebtoken::jwk::Jwk> = match value.get("keys") {
                Some(keys) => serde_json::from_value(keys.clone()).map_err(|e| parse(e.to_string()))?,
                None => vec![serde_json::from_value(value).map_err(|e| parse(e.to_string()))?],
            };
            for jwk in &jwks {
                let key = jwk_key(jwk).ok_or_else(|| parse("a JWK that is not an RSA, EC or OKP public key".into()))?;
                self.keys.push(key);
            }
            return Ok(());
        }
        let pem = bytes;
        let (key, family) = DecodingKey::from_rsa_pem(&pem)
            .map(|k| (k, AlgorithmFamily::Rsa))
            .or_else(|_| DecodingKey::from_ec_pem(&pem).map(|k| (k, AlgorithmFamily::Ec)))
            .or_else(|_| DecodingKey::from_ed_pem(&pem).map(|k| (k, AlgorithmFamily::Ed)))
            .map_err(|e| parse(e.to_string()))?;
        self.keys.push(Key { kid: None, key, family });
        Ok(())
    }

    fn add_key(&mut self, kid: String, key: DecodingKey, family: AlgorithmFamily) {
        self.keys.push(Key { kid: Some(kid), key, family });
    }

    /// Verifies a token, from the cache when it was verified before and has not
    /// expired since.
    pub async fn verify(&self, token: &str) -> Result<Arc<Caller>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now();
        if let Some((caller, exp)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&digest)
            && now < exp + self.validation.leeway
        {
            return Ok(caller.clone());
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid(format!("the token is longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if let Some(typ) = &header.typ
            && !is_access_token_type(typ)
        {
            return Err(AuthError::Invalid(format!("token type `{}` is not an access token", crate::text::shown(typ))));
        }
        // RFC 7515 §4.1.11: moat understands no header extension, so a token
        // that marks any as critical is refused.
        if let Some(crit) = &header.crit {
            let listed: Vec<String> = crit.iter().map(|c| crate::text::shown(c)).collect();
            return Err(AuthError::Invalid(format!(
                "the token marks header extensions as critical that this server does not understand: [{}]",
                listed.join(", ")
            )));
        }
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!("algorithm {:?} is not allowed", header.alg)));
        }
        if let Some(kid) = &header.kid
            && self.jwks.is_some()
            && !self.knows_kid(kid)
        {
            self.refetch_for_unknown_kid().await;
        }
        let fetched = self.jwks.as_ref().map(|j| j.keys.load_full()).unwrap_or_default();
        let candidates = self.keys.iter().chain(fetched.iter()).filter(|k| {
            k.family == header.alg.family() && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
        });
        let mut last = AuthError::Invalid("no key matches the token".into());
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &self.validation) {
                Ok(data) => {
                    let c = data.claims;
                    if c.iat.is_some_and(|iat| iat > now + self.validation.leeway) {
                        return Err(AuthError::Invalid("the token was issued in the future".into()));
                    }
                    let scopes = match (c.scope, c.scp) {
                        (Some(s), _) => s.split_whitespace().map(str::to_owned).collect(),
                        (None, Some(list)) => list,
                        (None, None) => Vec::new(),
                    };
                    let caller = Arc::new(Caller { subject: c.sub, scopes, client_id: c.client_id.or(c.azp) });
                    let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                    cache.insert(digest, (caller.clone(), c.exp));
                    return Ok(caller);
                }
                Err(e) => last = AuthError::Invalid(e.to_string()),
            }
        }
        Err(last)
    }
}

/// A verification key from a JWK; none for symmetric or unusable keys (a JWK
/// set can never smuggle in an HMAC secret).
fn jwk_key(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Key> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family = match &jwk.algorithm {
        P::RSA(_) => AlgorithmFamily::Rsa,
        P::EllipticCurve(_) => AlgorithmFamily::Ec,
        P::OctetKeyPair(_) => AlgorithmFamily::Ed,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { kid: jwk.common.key_id.clone(), key, family })
}

/// The ES256 key of `--dev` mode, kept in `.moat/dev-key.pem` of the working
/// directory so `serve --dev` and `token --dev` run from one directory agree.
pub struct DevKey {
    pkcs8: Vec<u8>,
    kid: String,
    x: String,
    y: String,
}

impl DevKey {
    /// Loads the dev key under `dir`, creating it (0600, in a 0700 folder) once.
    /// Processes that start together agree: exactly one key is ever written,
    /// and a process that loses the race uses the winner's.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let err = |reason: String| KeyError::Dev { dir: dir.to_owned(), reason };
        let path = dir.join("dev-key.pem");
        let pkcs8 = match std::fs::read_to_string(&path) {
            Ok(text) => pem_decode(&text).ok_or_else(|| err(format!("{} is not a PEM private key", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|e| err(format!("key generation failed: {e}")))?;
                match create_private(dir, &path, &pem_encode(doc.as_ref())) {
                    Ok(()) => doc.as_ref().to_vec(),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        // Another process wrote it first: its key wins.
                        let text = std::fs::read_to_string(&path)
                            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
                        pem_decode(&text).ok_or_else(|| err(format!("{} is not a PEM private key", path.display())))?
                    }
                    Err(e) => return Err(err(format!("cannot write {}: {e}", path.display()))),
                }
            }
            Err(e) => return Err(err(format!("cannot read {}: {e}", path.display()))),
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|e| err(format!("{} holds no P-256 key: {e}", path.display())))?;
        let point = pair.public_key().as_ref();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        let kid = format!("moat-dev-{}", &hex::encode(Sha256::digest(point))[..12]);
        Ok(DevKey { pkcs8, kid, x, y })
    }

    /// A verifier that accepts tokens this key signs.
    pub fn verifier(&self) -> Result<Verifier, KeyError> {
        let mut v = Verifier::new(DEV_ISSUER, DEV_AUDIENCE, &[Algorithm::ES256], 30)?;
        let key = DecodingKey::from_ec_components(&self.x, &self.y)
            .map_err(|e| KeyError::Parse { path: "dev key".into(), reason: e.to_string() })?;
        v.add_key(self.kid.clone(), key, AlgorithmFamily::Ec);
        Ok(v)
    }

    /// Signs a token for `subject` with `scopes`, valid for `ttl`.
    pub fn mint(&self, subject: &str, scopes: &str, ttl: Duration) -> Result<String, String> {
        let now = now();
        let claims = Claims {
            sub: subject.to_owned(),
            exp: now + ttl.as_secs(),
            scope: Some(scopes.to_owned()),
            scp: None,
            iss: DEV_ISSUER.into(),
            aud: Some(DEV_AUDIENCE.into()),
            nbf: Some(now),
            iat: Some(now),
            client_id: Some("moat-dev".into()),
            azp: None,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8)).map_err(|e| e.to_string())
    }
}

const PEM_TAG: &str = "PRIVATE KEY";

fn pem_encode(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(PEM_TAG, der))
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    pem::parse(text).ok().filter(|p| p.tag() == PEM_TAG).map(pem::Pem::into_contents)
}

/// Writes `text` to `path` (0600) unless it exists: the whole file appears at
/// once, and `AlreadyExists` tells the caller another process got there first.
fn create_private(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // tempfile creates its files 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map(drop).map_err(|e| e.error)
}

/// Parses a duration such as `90s`, `30m`, `1h` or `7d`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration like 90s, 30m, 1h or 7d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("the ttl must be more than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dev-signed token with `header` changed by `edit`.
    fn token_with(key: &DevKey, edit: impl FnOnce(&mut Header)) -> String {
        let now = now();
        let claims = serde_json::json!({
            "sub": "s", "exp": now + 600, "iat": now, "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "scope": "tools:read"
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        edit(&mut header);
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&key.pkcs8)).unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn both_access_token_types_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let verifier = key.verifier().unwrap();
        for typ in ["JWT", "at+jwt", "application/at+jwt", "Application/AT+JWT"] {
            let t = token_with(&key, |h| h.typ = Some(typ.into()));
            assert!(runtime().block_on(verifier.verify(&t)).is_ok(), "typ {typ}");
        }
        let t = token_with(&key, |h| h.typ = Some("id+jwt".into()));
        assert!(runtime().block_on(verifier.verify(&t)).is_err());
    }

    #[test]
    fn critical_extensions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let verifier = key.verifier().unwrap();
        let t = token_with(&key, |h| {
            h.crit = Some(vec!["exp-ext".into()]);
            h.extras.insert("exp-ext", "1");
        });
        let e = runtime().block_on(verifier.verify(&t)).unwrap_err();
        assert!(e.to_string().contains("exp-ext"), "{e}");
    }

    #[test]
    fn processes_creating_the_dev_key_at_once_agree() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let kids: Vec<String> = (0..4)
                .map(|_| {
                    let (dir, barrier) = (dir.path().to_owned(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        DevKey::load_or_create(&dir).unwrap().kid
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect();
            assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
            assert_eq!(DevKey::load_or_create(dir.path()).unwrap().kid, kids[0]);
            let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(leftovers, 1, "only the key file remains");
        }
    }

    #[test]
    fn algorithm_errors_name_what_was_found() {
        assert_eq!(
            Verifier::new("i", "a", &[], 0).err().map(|e| e.to_string()),
            Some(KeyError::NoAlgorithms.to_string())
        );
        let e = Verifier::new("i", "a", &[Algorithm::HS256], 0).err().unwrap();
        assert!(e.to_string().contains("HS256"), "{e}");
    }
}
