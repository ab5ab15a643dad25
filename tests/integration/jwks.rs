//! Keys from a JWKS endpoint (a real HTTP server on loopback, rotated by the
//! test): unknown `kid` refetch without restart, dropped keys refused, refetch
//! flood bounded, an outage keeps the cached keys working, `aud` arrays.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::server::{Server, modern_request};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "https://moat.test/mcp";

struct Key {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let doc =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                     "kid": kid, "alg": "ES256", "use": "sig"});
    Key { kid: kid.to_owned(), pkcs8: doc.as_ref().to_vec(), jwk }
}

fn token(k: &Key, aud: Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"sub": "svc", "iss": ISSUER, "aud": aud, "exp": now + 600, "iat": now, "scope": "tools:read"});
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(k.kid.clone());
    h.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ec_der(&k.pkcs8)).unwrap()
}

/// A JWKS endpoint whose keys and health the test controls.
struct Idp {
    keys: Arc<Mutex<Vec<Value>>>,
    up: Arc<std::sync::atomic::AtomicBool>,
    hits: Arc<AtomicUsize>,
    url: String,
}

async fn idp() -> Idp {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let (k, u, h) = (keys.clone(), up.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (k, u, h) = (k.clone(), u.clone(), h.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if !u.load(Ordering::SeqCst) {
                    return (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        [("cache-control", "no-store")],
                        String::new(),
                    );
                }
                let body = json!({"keys": *k.lock().unwrap()}).to_string();
                (axum::http::StatusCode::OK, [("cache-control", "max-age=3600")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Idp { keys, up, hits, url }
}

async fn list_status(s: &Server, token: &str) -> u16 {
    modern_request(&s.url, token, "tools/list", json!({})).send().await.unwrap().status().as_u16()
}

// Multi-threaded: the JWKS server must answer while the test thread waits for
// moat to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_rotate_without_restart() {
    let idp = idp().await;
    let (a, b) = (key("key-a"), key("key-b"));
    idp.keys.lock().unwrap().push(a.jwk.clone());
    let s = Server::start_configured(&format!(
        "[auth]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_uri = \"{}\"\nalgorithms = [\"ES256\"]\n",
        idp.url
    ));
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1, "fetched once at start");
    let first = token(&a, json!(AUDIENCE));
    assert_eq!(list_status(&s, &first).await, 200, "key A from the JWKS fetched at start");
    assert_eq!(list_status(&s, &token(&a, json!(["https://other.test", AUDIENCE]))).await, 200, "aud array");
    assert_eq!(list_status(&s, &token(&a, json!("https://other.test/mcp"))).await, 401, "another resource");
    let before = idp.hits.load(Ordering::SeqCst);

    // The IdP rotates: B replaces A.
    *idp.keys.lock().unwrap() = vec![b.jwk.clone()];
    assert_eq!(list_status(&s, &token(&b, json!(AUDIENCE))).await, 200, "new kid refetched");
    assert_eq!(idp.hits.load(Ordering::SeqCst), before + 1);
    assert_eq!(list_status(&s, &first).await, 401, "a token verified before by the dropped key");
    assert_eq!(list_status(&s, &token(&a, json!(AUDIENCE))).await, 401, "a fresh token of the dropped key");

    // A flood of unknown kids does not hammer the IdP.
    for i in 0..20 {
        let k = Key { kid: format!("bogus-{i}"), ..key("x") };
        assert_eq!(list_status(&s, &token(&k, json!(AUDIENCE))).await, 401);
    }
    assert!(idp.hits.load(Ordering::SeqCst) <= before + 2, "refetches are rate limited");

    // An outage keeps the cached keys working, and never becomes a 500.
    idp.up.store(false, Ordering::SeqCst);
    assert_eq!(list_status(&s, &token(&b, json!(AUDIENCE))).await, 200);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await; // past the refetch gap
    let unknown = Key { kid: "during-outage".into(), ..key("y") };
    assert_eq!(list_status(&s, &token(&unknown, json!(AUDIENCE))).await, 401);
    assert_eq!(list_status(&s, &token(&b, json!(AUDIENCE))).await, 200, "keys survive a failed refetch");
}

/// Keys can also come from files: a JWK set on disk, no endpoint.
#[tokio::test]
async fn static_jwk_files() {
    let (a, other) = (key("file-key"), key("file-key"));
    let set = json!({"keys": [a.jwk]}).to_string();
    let s = Server::start_configured_with(
        &format!(
            "[auth]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\npublic_key_files = [\"keys.jwks.json\"]\nalgorithms = [\"ES256\"]\n"
        ),
        &[("keys.jwks.json", &set)],
    );
    assert_eq!(list_status(&s, &token(&a, json!(AUDIENCE))).await, 200);
    assert_eq!(list_status(&s, &token(&other, json!(AUDIENCE))).await, 401, "same kid, another key");
}
