//! Tokens and what they unlock, against a real `moat serve --dev`: hostile tokens
//! (each refused with 401 before any plugin runs), per-tool scopes (filtered lists,
//! 403 `insufficient_scope`) and per-subject rate limits (429 + Retry-After).

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::wasm;
use crate::server::{Server, mint};

/// Extra request headers: name, value.
type Headers<'a> = Vec<(&'a str, String)>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The dev key of `s`, to sign crafted tokens with.
fn dev_key(s: &Server) -> (Vec<u8>, String) {
    let pem = std::fs::read_to_string(s.dir.path().join(".moat/dev-key.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    // The kid is in every token the server mints.
    let header = jsonwebtoken::decode_header(&s.token).unwrap();
    (der, header.kid.unwrap())
}

fn good_claims() -> Value {
    json!({"sub": "mallory", "iss": "moat-dev", "aud": "moat-dev", "exp": now() + 600, "iat": now(),
           "scope": "tools:read tools:write"})
}

fn sign(der: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der)).unwrap()
}

fn raw_token(header: &Value, claims: &Value, sig: &str) -> String {
    format!("{}.{}.{sig}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

/// A call that would leave a trace if it ran: cleanup (not a dry run) removing an old file.
fn cleanup_call(target: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "cleanup",
        "arguments": {"path": target, "older_than_days": 0, "dry_run": false},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
}

fn with_cleanup(s_dir_marker: &str) -> impl FnOnce(&std::path::Path) + '_ {
    move |plugins: &std::path::Path| {
        std::fs::copy(wasm("cleanup"), plugins.join("cleanup.wasm")).unwrap();
        let victim = plugins.parent().unwrap().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join(s_dir_marker), b"still here").unwrap();
        std::fs::write(
            plugins.join("cleanup.toml"),
            format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/victim\", mode = \"rw\" }}]\n", victim.display()),
        )
        .unwrap();
        std::fs::write(
            plugins.join("everything.toml"),
            "[tools.test_simple_text]\nrate_limit = { per_minute = 60, burst = 2 }\n",
        )
        .unwrap();
    }
}

async fn send(s: &Server, auth: &[(&str, String)], query: &str, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}{query}", s.url))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", body["method"].as_str().unwrap());
    if let Some(name) = body["params"]["name"].as_str() {
        req = req.header("Mcp-Name", name);
    }
    for (k, v) in auth {
        req = req.header(*k, v);
    }
    req.body(body.to_string()).send().await.unwrap()
}

#[tokio::test]
async fn hostile_tokens_are_refused_before_any_plugin_runs() {
    let s = Server::start_with(&[], with_cleanup("old.txt"));
    let victim = s.dir.path().join("victim/old.txt");
    let (der, kid) = dev_key(&s);
    let other = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let claims = good_claims();
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        sign(&der, Some(&kid), &c)
    };
    let valid = sign(&der, Some(&kid), &claims);
    let (vh, vp, vs) = {
        let mut parts = valid.split('.');
        (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
    };
    let public_key_bytes = {
        use aws_lc_rs::signature::KeyPair as _;
        aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec()
    };
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&public_key_bytes)).unwrap()
    };
    let bearer = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("no Authorization header", vec![], ""),
        ("junk", bearer("junk"), ""),
        ("empty bearer", vec![("Authorization", "Bearer ".into())], ""),
        ("wrong scheme", vec![("Authorization", format!("Basic {valid}"))], ""),
        (
            "two Authorization headers",
            vec![("Authorization", format!("Bearer {valid}")), ("Authorization", format!("Bearer {valid}"))],
            "",
        ),
        ("token in the query string only", vec![], "?access_token=VALID"),
        ("alg none", bearer(&raw_token(&json!({"alg": "none", "typ": "JWT"}), &claims, "")), ""),
        ("HS256 signed with the public key's bytes", bearer(&hs256), ""),
        ("unknown kid", bearer(&sign(&der, Some("nobody"), &claims)), ""),
        ("kid path trick", bearer(&sign(&der, Some("../../.moat/dev-key.pem"), &claims)), ""),
        (
            "jku pointing elsewhere, signed by another key",
            bearer(&{
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some(kid.clone());
                h.jku = Some("http://127.0.0.1:1/jwks.json".into());
                jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ec_der(other.as_ref())).unwrap()
            }),
            "",
        ),
        ("wrong iss", bearer(&with(json!({"iss": "https://evil.example"}))), ""),
        ("wrong aud", bearer(&with(json!({"aud": "https://other.example/mcp"}))), ""),
        ("missing aud", bearer(&with(json!({"aud": null}))), ""),
        ("expired", bearer(&with(json!({"exp": now() - 3600}))), ""),
        ("nbf in the future", bearer(&with(json!({"nbf": now() + 3600}))), ""),
        ("issued in the future", bearer(&with(json!({"iat": now() + 3600}))), ""),
        ("missing exp", bearer(&with(json!({"exp": null}))), ""),
        ("signature of another key", bearer(&sign(other.as_ref(), Some(&kid), &claims)), ""),
        ("truncated signature", bearer(&format!("{vh}.{vp}.{}", &vs[..vs.len() / 2])), ""),
        ("non-base64 segments", bearer(&format!("{vh}.{vp}!!.{vs}")), ""),
        ("oversized token", bearer(&format!("{vh}.{}.{vs}", "A".repeat(64 * 1024))), ""),
        ("scope claim of the wrong type", bearer(&with(json!({"scope": 42}))), ""),
        (
            "typ that is not an access token",
            bearer(&{
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some(kid.clone());
                h.typ = Some("id+jwt".into());
                jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ec_der(&der)).unwrap()
            }),
            "",
        ),
        (
            "a valid token with one signature byte changed",
            bearer(&{
                // A middle character: the last one of the base64 also carries padding bits.
                let mut sig = vs.clone().into_bytes();
                let i = sig.len() / 2;
                sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
                format!("{vh}.{vp}.{}", String::from_utf8(sig).unwrap())
            }),
            "",
        ),
    ];
    assert!(cases.len() >= 25);
    for (name, auth, query) in cases {
        let query = query.replace("VALID", &valid);
        let r = send(&s, &auth, &query, &cleanup_call("/victim")).await;
        let status = r.status().as_u16();
        assert!(status == 401 || status == 431, "{name}: got {status}");
        if status == 401 {
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.starts_with("Bearer resource_metadata="), "{name}: {challenge}");
        }
        assert!(victim.exists(), "{name}: the plugin ran");
    }
    // The same call with the valid token does run: the file goes.
    let r = send(&s, &bearer(&valid), "", &cleanup_call("/victim")).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("old.txt"));
    assert!(!victim.exists(), "the valid call removed the file");
}

#[tokio::test]
async fn scopes_decide_what_a_token_lists_and_calls() {
    let s = Server::start_with(&[], with_cleanup("keep.txt"));
    let victim = s.dir.path().join("victim/keep.txt");
    let reader = mint(s.dir.path(), &["--scope", "tools:read", "--sub", "reader"]);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let names = |v: Value| -> Vec<String> {
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    let auth = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    let r: Value = send(&s, &auth(&reader), "", &list).await.json().await.unwrap();
    let seen = names(r);
    assert!(seen.contains(&"disk_usage".to_owned()) && !seen.contains(&"cleanup".to_owned()), "{seen:?}");
    let r: Value = send(&s, &auth(&s.token), "", &list).await.json().await.unwrap();
    assert!(names(r).contains(&"cleanup".to_owned()), "a write token sees cleanup");

    let r = send(&s, &auth(&reader), "", &cleanup_call("/victim")).await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"tools:write\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32003, "{body}");
    assert!(victim.exists(), "no plugin ran");

    // The 2025-11-25 session era: the same refusal, the same answer.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let legacy = |body: &Value, session: Option<&str>| {
        let mut req = reqwest::Client::new()
            .post(&s.url)
            .bearer_auth(&reader)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(id) = session {
            req = req.header("Mcp-Session-Id", id).header("MCP-Protocol-Version", "2025-11-25");
        }
        req.send()
    };
    let r = legacy(&init, None).await.unwrap();
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "cleanup",
        "arguments": {"path": "/victim", "older_than_days": 0, "dry_run": false}}});
    let r = legacy(&call, Some(&session)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["id"].clone(), body["error"]["code"].clone()), (json!(5), json!(-32003)), "{body}");
    assert!(victim.exists(), "no plugin ran");
    let meta: Value =
        reqwest::get(format!("{}/.well-known/oauth-protected-resource", s.base())).await.unwrap().json().await.unwrap();
    assert_eq!(meta["scopes_supported"], json!(["tools:read", "tools:write"]));
}

#[tokio::test]
async fn rate_limits_apply_per_subject_and_tool() {
    let s = Server::start_with(&[], with_cleanup("x.txt"));
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "test_simple_text", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let auth = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    for _ in 0..2 {
        assert_eq!(send(&s, &auth(&s.token), "", &call).await.status(), 200, "within the burst");
    }
    let r = send(&s, &auth(&s.token), "", &call).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 5);
    assert!(body["error"]["message"].as_str().unwrap().contains("rate limit"), "{body}");
    // Another subject has its own allowance; another tool is not limited.
    let other = mint(s.dir.path(), &["--sub", "someone-else"]);
    assert_eq!(send(&s, &auth(&other), "", &call).await.status(), 200);
    let mut unlimited = call.clone();
    unlimited["params"]["name"] = json!("test_image_content");
    assert_eq!(send(&s, &auth(&s.token), "", &unlimited).await.status(), 200);
}

/// A plugin may ask who is calling (WIT 0.1.2 `caller`): subject, scopes and
/// client, never the token; the token is in no environment variable either.
#[tokio::test]
async fn plugins_see_the_caller_but_never_the_token() {
    let s = Server::start_with(&[], |plugins| {
        std::fs::copy(wasm("hostile"), plugins.join("hostile.wasm")).unwrap();
    });
    let alice = mint(s.dir.path(), &["--sub", "alice", "--scope", "tools:read"]);
    let call = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    };
    let auth = vec![("Authorization", format!("Bearer {alice}"))];
    let r: Value = send(&s, &auth, "", &call("whoami")).await.json().await.unwrap();
    assert_eq!(r["result"]["content"][0]["text"], "alice [tools:read] via moat-dev");
    let r = send(&s, &auth, "", &call("env_names")).await.text().await.unwrap();
    assert!(!r.contains(&alice), "the token reached the plugin's environment");
}

/// Resources and prompts need `tools:read` unless the sidecar names other scopes;
/// lists show only what the token may use, and reads/gets without the scope get 403.
#[tokio::test]
async fn resources_and_prompts_follow_scopes_too() {
    let s = Server::start_with(&[], |plugins| {
        std::fs::write(plugins.join("everything.toml"), "[prompts]\nscopes = [\"prompts:use\"]\n").unwrap();
    });
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let req = |method: &str, params: Value| {
        let mut params = params;
        params["_meta"] = meta.clone();
        json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params})
    };
    let auth = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    let writer_only = mint(s.dir.path(), &["--scope", "tools:write"]);
    let reader = mint(s.dir.path(), &["--scope", "tools:read"]);
    let prompter = mint(s.dir.path(), &["--scope", "tools:read prompts:use"]);

    let count = |v: &Value, key: &str| v["result"][key].as_array().map_or(0, Vec::len);
    let r: Value = send(&s, &auth(&writer_only), "", &req("resources/list", json!({}))).await.json().await.unwrap();
    assert_eq!(count(&r, "resources"), 0, "no tools:read, no resources: {r}");
    let r: Value = send(&s, &auth(&reader), "", &req("resources/list", json!({}))).await.json().await.unwrap();
    assert!(count(&r, "resources") >= 3, "{r}");
    let read = req("resources/read", json!({"uri": "test://static-text"}));
    let r = reqwest::Client::new()
        .post(&s.url)
        .bearer_auth(&writer_only)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "resources/read")
        .header("Mcp-Name", "test://static-text")
        .body(read.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("scope=\"tools:read\""));

    // Prompts of `everything` need prompts:use.
    let prompts = |v: &Value| -> Vec<String> {
        v["result"]["prompts"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
    };
    let r: Value = send(&s, &auth(&reader), "", &req("prompts/list", json!({}))).await.json().await.unwrap();
    assert_eq!(prompts(&r), ["triage"], "only disk_usage's prompt (default tools:read)");
    let r: Value = send(&s, &auth(&prompter), "", &req("prompts/list", json!({}))).await.json().await.unwrap();
    assert!(prompts(&r).contains(&"test_simple_prompt".to_owned()), "{r}");
    let get = req("prompts/get", json!({"name": "test_simple_prompt"}));
    let r = send(&s, &auth(&reader), "", &get).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("scope=\"prompts:use\""));
    let r = send(&s, &auth(&prompter), "", &get).await;
    assert_eq!(r.status(), 200);
}

/// `[plugins.defaults] rate_limit` applies to every tool without one of its own.
#[tokio::test]
async fn a_global_default_rate_limit() {
    let s = Server::start_with(&["--config", "moat.toml"], |plugins| {
        std::fs::write(
            plugins.parent().unwrap().join("moat.toml"),
            "[plugins.defaults]\nrate_limit = { per_minute = 60, burst = 1 }\n",
        )
        .unwrap();
    });
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "test_image_content", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let auth = vec![("Authorization", format!("Bearer {}", s.token))];
    assert_eq!(send(&s, &auth, "", &call).await.status(), 200);
    let r = send(&s, &auth, "", &call).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn serve_and_token_creating_the_dev_key_together_agree() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(wasm("trivial"), plugins.join("trivial.wasm")).unwrap();
    // No key yet: `serve --dev` and three `token --dev` race to create it.
    let cache = dir.path().join("cache");
    let serve = crate::common::moat(&cache)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--plugins", "plugins"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut serve = crate::common::Stopped(serve);
    let minting: Vec<_> = (0..3)
        .map(|_| {
            crate::common::moat(&cache)
                .args(["token", "--dev"])
                .current_dir(dir.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<String> = minting
        .into_iter()
        .map(|c| String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap().trim().to_owned())
        .collect();
    use std::io::BufRead as _;
    let out = std::io::BufReader::new(serve.0.stdout.take().unwrap());
    let url = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("moat: serving MCP at ").map(|r| r.split_whitespace().next().unwrap().to_owned()))
        .expect("the serving line");
    for t in &tokens {
        let r = crate::server::modern_request(&url, t, "tools/list", json!({})).send().await.unwrap();
        assert_eq!(r.status(), 200, "a token minted while the server started must verify");
    }
}
