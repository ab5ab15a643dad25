//! Plugins from an OCI registry, against a real one on loopback: Debian's
//! `docker-registry` (distribution 2.8), started here on a free port and
//! stopped by its PID. `moat push`/`sign`/`pull` and `[[plugins.oci]]` sources
//! in a real `moat serve`: a signed tag served; a moved tag reloaded under load
//! without a failed call; unsigned, wrongly signed, misdirected and tampered
//! versions refused while the old one serves; the registry down at start and
//! later; caps on what a registry sends; credentials; and a signature made by
//! Python's `cryptography` in cosign's format, which moat did not write.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{moat, stderr, stdout, wasm};
use crate::server::{Server, modern_request};

/// A `docker-registry serve` on 127.0.0.1, killed when dropped.
struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    dir: tempfile::TempDir,
    /// The `auth:` part of its configuration.
    auth: String,
}

/// The token service's names, as the registry checks them in every token.
const TOKEN_SERVICE: &str = "moat-test-registry";
const TOKEN_ISSUER: &str = "moat-test-token-issuer";

fn registry_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOAT_TEST_DOCKER_REGISTRY") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from("/usr/bin/docker-registry");
    assert!(
        p.exists(),
        "docker-registry is not installed: `cargo xtask test` installs Debian's docker-registry package"
    );
    p
}

impl Registry {
    fn start() -> Registry {
        Self::launch(tempfile::tempdir().unwrap(), "127.0.0.1:0", String::new())
    }

    /// A registry that wants `user`'s password (htpasswd, bcrypt).
    fn start_with_user(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, format!("{user}:{}\n", bcrypt::hash(password, 5).unwrap())).unwrap();
        let auth = format!("auth:\n  htpasswd:\n    realm: moat-test\n    path: {}\n", file.display());
        Self::launch(dir, "127.0.0.1:0", auth)
    }

    /// A registry that wants bearer tokens from `realm`, signed by the key of
    /// the certificate `cert` (distribution's token auth, as ghcr.io and
    /// Docker Hub do it).
    fn start_with_token_auth(realm: &str, cert: &Path) -> Registry {
        let auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            cert.display()
        );
        Self::launch(tempfile::tempdir().unwrap(), "127.0.0.1:0", auth)
    }

    fn launch(dir: tempfile::TempDir, addr: &str, auth: String) -> Registry {
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut child = Command::new(registry_binary())
            .args(["serve", &dir.path().join("config.yml").to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = dir.path().join("registry.log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write as _;
                let _ = writeln!(file, "{line}");
                if let Some(i) = line.find("listening on ") {
                    let rest = &line[i + "listening on ".len()..];
                    let _ = tx.send(rest.split(['"', ' ']).next().unwrap_or_default().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20)).expect("docker-registry prints where it listens");
        Registry { child, addr, dir, auth }
    }

    fn stop(self) -> (tempfile::TempDir, String, String) {
        let mut me = std::mem::ManuallyDrop::new(self);
        let _ = me.child.kill();
        let _ = me.child.wait();
        // SAFETY-free take: the fields move out of the ManuallyDrop once.
        let dir = std::mem::replace(&mut me.dir, tempfile::tempdir().unwrap());
        (dir, std::mem::take(&mut me.addr), std::mem::take(&mut me.auth))
    }

    /// The same storage served again at the same address.
    fn restart(dir: tempfile::TempDir, addr: &str, auth: String) -> Registry {
        Self::launch(dir, addr, auth)
    }

    fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// The file holding blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// The digest of the manifest `tag` names (the registry's own answer).
    async fn digest(&self, repo: &str, tag: &str) -> String {
        let r = self
            .http()
            .get(format!("http://{}/v2/{repo}/manifests/{tag}", self.addr))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{repo}:{tag}");
        r.headers()["docker-content-digest"].to_str().unwrap().to_owned()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `moat ARGS` in `dir`; (success, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    cli_env(dir, args, &[])
}

fn cli_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = moat(&dir.join("cache")).args(args).envs(env.iter().copied()).current_dir(dir).output().unwrap();
    (out.status.success(), stdout(&out), stderr(&out))
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = cli(dir, args);
    assert!(success, "moat {args:?} failed:\n{out}\n{err}");
    out
}

/// A work folder with `release.key`/`.pub`, `other.key`/`.pub` and both builds
/// of disk_usage (`v1.wasm`, `v2.wasm`: the next build, with `used_percent`).
fn workspace() -> tempfile::TempDir {
    let w = tempfile::tempdir().unwrap();
    ok(w.path(), &["keygen", "--out", "release"]);
    ok(w.path(), &["keygen", "--out", "other"]);
    std::fs::copy(wasm("disk_usage"), w.path().join("v1.wasm")).unwrap();
    std::fs::copy(wasm("disk_usage_next"), w.path().join("v2.wasm")).unwrap();
    w
}

/// Which build of disk_usage answered: 1, 2, or the error.
async fn version(s: &Server) -> Result<u8, String> {
    let call = json!({"name": "disk_usage", "arguments": {}});
    let r = modern_request(&s.url, &s.token, "tools/call", call).send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("{status}: {e}"))?;
    let st = &body["result"]["structuredContent"];
    if status != 200 || st["total_bytes"].as_u64().is_none() || body["result"]["isError"] == json!(true) {
        return Err(format!("{status}: {body}"));
    }
    Ok(if st.get("used_percent").is_some() { 2 } else { 1 })
}

/// A dev server (with an admin listener) whose plugins come from `sources`
/// (`[[plugins.oci]]` tables' TOML), with the keys in `keys`. The plugins folder
/// holds only the conformance fixtures plugin.
fn serve_from(sources: &str, keys: &Path) -> Server {
    let config = format!("{sources}\n");
    let keys = keys.to_owned();
    let start = |plugins: &Path| {
        let root = plugins.parent().unwrap();
        std::fs::remove_file(plugins.join("disk_usage.wasm")).unwrap();
        std::fs::write(root.join("moat.toml"), &config).unwrap();
        for k in ["release.pub", "other.pub"] {
            std::fs::copy(keys.join(k), root.join(k)).unwrap();
        }
        std::fs::write(
            root.join("disk_usage.toml"),
            format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", root.display()),
        )
        .unwrap();
    };
    Server::start_with(&["--config", "moat.toml", "--admin-listen", "127.0.0.1:0"], start)
}

fn source(reference: &str, extra: &str) -> String {
    format!(
        "[[plugins.oci]]\nref = \"{reference}\"\nverify_keys = [\"release.pub\"]\nsidecar = \"disk_usage.toml\"\n{extra}\n"
    )
}

async fn readyz(s: &Server) -> Value {
    reqwest::get(format!("{}/readyz?verbose", s.admin.as_ref().unwrap())).await.unwrap().json().await.unwrap()
}

/// The status of the one registry source.
async fn oci_status(s: &Server) -> Value {
    readyz(s).await["oci"][0].clone()
}

/// `POST /reload`: checks the sources, then rescans; the report.
async fn reload(s: &Server) -> Value {
    let r = reqwest::Client::new().post(format!("{}/reload", s.admin.as_ref().unwrap())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn metrics(s: &Server) -> String {
    reqwest::get(format!("{}/metrics", s.admin.as_ref().unwrap())).await.unwrap().text().await.unwrap()
}

async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, limit: Duration, mut check: F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pushed digest, from `moat push`'s output.
fn pushed_digest(out: &str) -> String {
    let at = out.find("@sha256:").unwrap_or_else(|| panic!("no digest in {out}"));
    out[at + 1..at + 1 + 71].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_sign_pull_and_serve_a_signed_plugin() {
    let reg = Registry::start();
    let w = workspace();
    let dir = w.path();
    let r = reg.reference("tools/disk_usage:1");
    // The author's sidecar beside the component goes along as what it requests.
    std::fs::write(
        dir.join("v1.toml"),
        "[grants]\ndirs = [{ host = \".\", guest = \"/\" }]\nenv = [\"HOME\"]\n[limits]\nmemory_mb = 256\n",
    )
    .unwrap();
    let out = ok(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]);
    assert!(out.contains("with requested permissions") && out.contains("signed "), "{out}");
    let digest = pushed_digest(&out);
    assert_eq!(reg.digest("tools/disk_usage", "1").await, digest, "the registry names the digest moat printed");

    // The CNCF wasm artifact layout, as other tools read it.
    let m: Value = reg
        .http()
        .get(format!("http://{}/v2/tools/disk_usage/manifests/{digest}", reg.addr))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], "application/vnd.wasm.component.v1+wasm");
    assert_eq!(m["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(m["layers"][0]["size"], std::fs::metadata(wasm("disk_usage")).unwrap().len());
    assert_eq!(m["layers"][1]["mediaType"], "application/vnd.moat.plugin.permissions.v1+toml");
    // The signature, where cosign keeps it.
    let sig: Value = reg
        .http()
        .get(format!(
            "http://{}/v2/tools/disk_usage/manifests/sha256-{}.sig",
            reg.addr,
            digest.strip_prefix("sha256:").unwrap()
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sig["layers"][0]["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    assert!(sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    // Signing again with the same key adds nothing; with another key, a second layer.
    assert!(ok(dir, &["sign", &r, "--key", "release.key"]).contains("already signed"));
    ok(dir, &["sign", &r, "--key", "other.key"]);

    // Pulled and verified, byte for byte; by tag or by digest.
    let out = ok(dir, &["pull", &r, "--verify-key", "release.pub", "--out", "pulled.wasm"]);
    assert!(out.contains(&digest) && out.contains("signature verified"), "{out}");
    assert_eq!(std::fs::read(dir.join("pulled.wasm")).unwrap(), std::fs::read(wasm("disk_usage")).unwrap());
    let by_digest = format!("{}/tools/disk_usage@{digest}", reg.addr);
    ok(dir, &["pull", &by_digest, "--verify-key", "other.pub", "--out", "pulled2.wasm"]);
    // `moat inspect` shows what it requests, what a sidecar grants, the difference.
    std::fs::write(dir.join("pulled.toml"), "[grants]\nenv = [\"HOME\", \"LANG\"]\n").unwrap();
    let out = ok(dir, &["inspect", "pulled.wasm"]);
    assert!(out.contains("requested but not granted:"), "{out}");
    assert!(out.contains("- directory / (read-only)") && out.contains("- memory_mb = 256 (granted 64)"), "{out}");
    assert!(out.contains("+ environment variable LANG") && !out.contains("- environment variable HOME"), "{out}");

    // Refusals name what is wrong.
    let (success, _, err) =
        cli(dir, &["pull", &r, "--verify-key", "release.pub", "--insecure-unsigned", "--out", "x.wasm"]);
    assert!(!success && err.contains("contradict"), "{err}");
    let (success, _, err) =
        cli(dir, &["pull", &reg.reference("tools/none:1"), "--verify-key", "release.pub", "--out", "x.wasm"]);
    assert!(!success && err.contains("not found"), "{err}");
    let (success, _, err) = cli(dir, &["push", "release.pub", &reg.reference("tools/junk:1")]);
    assert!(!success && err.contains("not a plugin moat can serve"), "{err}");
    let (success, _, err) = cli(dir, &["push", "v1.wasm", &format!("{}/Tools:1", reg.addr)]);
    assert!(!success && err.contains("lowercase"), "{err}");
    assert!(!dir.join("x.wasm").exists());

    // Served from the registry by a real server.
    let s = serve_from(&source(&r, "poll_s = 60"), dir);
    wait_for("disk_usage from the registry", Duration::from_secs(30), async || version(&s).await == Ok(1)).await;
    let st = oci_status(&s).await;
    assert_eq!(st["digest"], digest.as_str());
    assert_eq!(st["name"], "disk_usage");
    assert!(st["signer"].as_str().unwrap().len() == 16, "{st}");
    // What it asks for and the operator's sidecar does not grant.
    let missing: Vec<&str> =
        st["requested_not_granted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        missing.contains(&"environment variable HOME") && missing.contains(&"memory_mb = 256 (granted 64)"),
        "{missing:?}"
    );
    assert!(!missing.iter().any(|m| m.contains("directory")), "the sidecar grants / ({missing:?})");
    let plugins = readyz(&s).await["plugins"].clone();
    assert!(plugins.as_array().unwrap().iter().any(|p| p["name"] == "disk_usage"), "{plugins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moved_tag_is_a_hot_reload_under_load_with_no_failed_call() {
    let reg = Registry::start();
    let w = workspace();
    let dir = w.path();
    let r = reg.reference("tools/disk_usage:stable");
    ok(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]);
    let s = Arc::new(serve_from(&source(&r, "poll_s = 1"), dir));
    wait_for("v1 served", Duration::from_secs(30), async || version(&s).await == Ok(1)).await;

    type Calls = Vec<(Instant, Instant, Result<u8, String>)>;
    let log: Arc<Mutex<Calls>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (s, stop, log) = (s.clone(), stop.clone(), log.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = version(&s).await;
                    log.lock().unwrap().push((started, Instant::now(), outcome));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The tag moves to a new signed build: picked up by the next poll.
    let (pushed, _, err) = cli(dir, &["push", "v2.wasm", &r, "--sign-key", "release.key"]);
    assert!(pushed, "{err}");
    let moved = Instant::now();
    let first_v2 =
        || log.lock().unwrap().iter().filter(|(st, _, o)| *st > moved && *o == Ok(2)).map(|(st, _, _)| *st).min();
    wait_for("a call answered by v2", Duration::from_secs(30), async || first_v2().is_some()).await;
    let latency = first_v2().unwrap() - moved;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // And back, by POST /reload (checks the registry now, then rescans).
    ok(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]);
    let back = Instant::now();
    let report = reload(&s).await;
    let by_admin = back.elapsed();
    assert_eq!(version(&s).await, Ok(1), "after POST /reload returns, the new version serves: {report}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    let failed: Vec<_> = log.iter().filter_map(|(_, _, o)| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} calls failed: {:?}", failed.len(), log.len(), &failed[..failed.len().min(3)]);
    assert!(log.len() > 50, "the load ran ({} calls)", log.len());
    let first = first_v2_of(&log, moved);
    for (started, _, outcome) in log.iter() {
        if *started > first && *started < back {
            assert_eq!(*outcome, Ok(2), "a call after the first v2 answer ran v1");
        }
    }
    let st = oci_status(&s).await;
    assert!(st["checks"]["updated"].as_u64().unwrap() >= 2, "{st}");
    println!(
        "oci reload: tag moved → first call on the new version {:.0} ms (poll_s = 1); POST /reload → served {:.0} ms; last update (pull + verify + compile) {:.1} ms",
        latency.as_secs_f64() * 1e3,
        by_admin.as_secs_f64() * 1e3,
        st["last_update_ms"].as_f64().unwrap()
    );
}

fn first_v2_of(log: &[(Instant, Instant, Result<u8, String>)], after: Instant) -> Instant {
    log.iter().filter(|(st, _, o)| *st > after && *o == Ok(2)).map(|(_, end, _)| *end).min().unwrap()
}

/// Moves the tag to something that must be refused, checks the registry now,
/// and asserts the refusal (kind and words) while v1 keeps serving.
async fn assert_refused(s: &Server, serving: &str, kind: &str, words: &str) {
    reload(s).await;
    let st = oci_status(s).await;
    assert_eq!(st["digest"], serving, "the serving version stays: {st}");
    let last = st["refused"].as_array().unwrap().last().cloned().unwrap_or_default();
    assert_eq!(last["kind"], kind, "{st}");
    assert!(last["error"].as_str().unwrap().contains(words), "{words}: {st}");
    assert_eq!(version(s).await, Ok(1), "v1 keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsigned_wrongly_signed_and_tampered_versions_are_refused_and_the_old_one_serves() {
    let reg = Registry::start();
    let w = workspace();
    let dir = w.path();
    let r = reg.reference("tools/disk_usage:1");
    let v1 = pushed_digest(&ok(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]));
    let s = serve_from(&source(&r, "poll_s = 3600\nmax_size_mb = 1"), dir);
    wait_for("v1 served", Duration::from_secs(30), async || version(&s).await == Ok(1)).await;

    // 1. Unsigned.
    ok(dir, &["push", "v2.wasm", &r]);
    assert_refused(&s, &v1, "unsigned", "is not signed").await;
    // Asked again, it is not logged again (one line per refused digest).
    reload(&s).await;
    assert_eq!(s.log().matches("refused a new version").count(), 1, "{}", s.log());

    // 2. Signed with a key the server does not trust.
    ok(dir, &["sign", &r, "--key", "other.key"]);
    assert_refused(&s, &v1, "bad_signature", "none of its 1 signature(s) verifies").await;

    // 3. A trusted signature, but of another digest (v1's signature copied to
    //    the new digest's signature tag).
    let v2 = reg.digest("tools/disk_usage", "1").await;
    let sig_of = |d: &str| format!("http://{}/v2/tools/disk_usage/manifests/sha256-{}.sig", reg.addr, &d[7..]);
    let v1_sig = reg
        .http()
        .get(sig_of(&v1))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let put = reg
        .http()
        .put(sig_of(&v2))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(v1_sig)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_refused(&s, &v1, "bad_signature", "over a different digest").await;

    // 4. Signed properly, but the registry's storage serves other bytes for the
    //    component layer than its digest names.
    ok(dir, &["sign", &r, "--key", "release.key"]);
    let manifest: Value = reg
        .http()
        .get(format!("http://{}/v2/tools/disk_usage/manifests/{v2}", reg.addr))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer = reg.blob_file(manifest["layers"][0]["digest"].as_str().unwrap());
    let good = std::fs::read(&layer).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 0xff;
    std::fs::write(&layer, &bad).unwrap();
    assert_refused(&s, &v1, "digest_mismatch", "does not match its digest").await;
    std::fs::write(&layer, &good).unwrap();

    // 5. A component over the source's cap (1 MiB here).
    // (A 1.9 MiB TypeScript build, compiled from the tests' shared cache.)
    std::fs::copy(wasm("word_count_ts"), dir.join("big.wasm")).unwrap();
    let cache = std::env::var("MOAT_TEST_CACHE_HOME")
        .unwrap_or_else(|_| format!("{}/../target/moat-cache-home", env!("CARGO_MANIFEST_DIR")));
    let (pushed, out, err) =
        cli_env(dir, &["push", "big.wasm", &r, "--sign-key", "release.key"], &[("XDG_CACHE_HOME", &cache)]);
    assert!(pushed, "{out}{err}");
    assert_refused(&s, &v1, "too_large", "cap").await;

    // Every refusal is counted, by reason.
    let m = metrics(&s).await;
    for reason in ["unsigned", "bad_signature", "digest_mismatch", "too_large"] {
        assert!(
            m.contains(&format!("moat_oci_refusals_total{{source=\"disk_usage\",reason=\"{reason}\"}}")),
            "{reason}:\n{m}"
        );
    }
    // Fixed: the properly signed v2 with its true bytes is taken.
    ok(dir, &["push", "v2.wasm", &r, "--sign-key", "release.key"]);
    reload(&s).await;
    assert_eq!(version(&s).await, Ok(2));
    assert_eq!(oci_status(&s).await["digest"], v2.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_registry_down_the_last_verified_version_serves_and_checks_back_off() {
    let reg = Registry::start();
    let w = workspace();
    let dir = w.path();
    let r = reg.reference("tools/disk_usage:1");
    ok(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]);
    let mut s = serve_from(&source(&r, "poll_s = 1"), dir);
    wait_for("v1 served", Duration::from_secs(30), async || version(&s).await == Ok(1)).await;

    // Down later: calls go on; checks fail, are counted, and back off.
    let (storage, addr, auth) = reg.stop();
    wait_for("three failed checks", Duration::from_secs(30), async || {
        oci_status(&s).await["consecutive_failures"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    let st = oci_status(&s).await;
    assert!(st["retry_in_s"].as_f64().unwrap() >= 3.0, "the retry waits grow: {st}");
    assert!(st["last_error"].as_str().unwrap().contains("the manifest"), "{st}");
    assert_eq!(version(&s).await, Ok(1));
    assert!(metrics(&s).await.contains("moat_oci_consecutive_failures{source=\"disk_usage\"} "));
    // A short log: one line when it went down, then one per doubling.
    assert!(s.log().matches("cannot check the registry").count() <= 3, "{}", s.log());

    // Restarted with the registry still down: the stored version serves at once.
    s.terminate();
    let dir2 = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let s = Server::restart_in(dir2, &["--config", "moat.toml", "--admin-listen", "127.0.0.1:0"]);
    assert_eq!(version(&s).await, Ok(1), "served from the store with the registry down");
    assert!(oci_status(&s).await["last_error"].is_string());

    // The registry back: the server catches up with a moved tag.
    let reg = Registry::restart(storage, &addr, auth);
    ok(dir, &["push", "v2.wasm", &r, "--sign-key", "release.key"]);
    wait_for("v2 after the registry came back", Duration::from_secs(30), async || version(&s).await == Ok(2)).await;
    assert_eq!(oci_status(&s).await["consecutive_failures"], 0);

    // A tampered store is not trusted at start: nothing serves from it.
    let mut s = s;
    s.terminate();
    let stored: Vec<PathBuf> = std::fs::read_dir(s.dir.path().join(".moat/oci/artifacts"))
        .unwrap()
        .map(|e| e.unwrap().path().join("component.wasm"))
        .collect();
    assert_eq!(stored.len(), 1, "only the pinned artifact is kept: {stored:?}");
    let mut bytes = std::fs::read(&stored[0]).unwrap();
    bytes[200] ^= 1;
    std::fs::write(&stored[0], bytes).unwrap();
    drop(reg);
    let dir3 = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let s = Server::restart_in(dir3, &["--config", "moat.toml", "--admin-listen", "127.0.0.1:0"]);
    assert!(version(&s).await.is_err(), "a tampered stored component must not serve");
    assert!(s.log().contains("does not match its layer digest"), "{}", s.log());
}

#[tokio::test]
async fn a_signature_made_by_python_cryptography_in_cosigns_format_verifies() {
    let reg = Registry::start();
    let w = workspace();
    let dir = w.path();
    let r = reg.reference("tools/disk_usage:py");
    let digest = pushed_digest(&ok(dir, &["push", "v1.wasm", &r]));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/cosign_sign.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--registry", &reg.addr, "--repo", "tools/disk_usage", "--digest", &digest])
        .args(["--public-key-out", &dir.join("python.pub").to_string_lossy()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ok(dir, &["pull", &r, "--verify-key", "python.pub", "--out", "py.wasm"]);
    assert!(out.contains("signature verified"), "{out}");
    // And moat's own key does not verify it.
    let (success, _, err) = cli(dir, &["pull", &r, "--verify-key", "release.pub", "--out", "no.wasm"]);
    assert!(!success && err.contains("none of its 1 signature(s) verifies"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_credentials_are_used_and_never_logged() {
    let password = "pw-7c1f0e2a-not-a-real-secret";
    let reg = Registry::start_with_user("ci", password);
    let w = workspace();
    let dir = w.path();
    let r = reg.reference("tools/disk_usage:1");
    // No credentials: refused, saying so.
    let (success, _, err) = cli(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]);
    assert!(!success && err.contains("refused the credentials (none were configured)"), "{err}");
    let env = [("MOAT_REGISTRY_USERNAME", "ci"), ("MOAT_REGISTRY_PASSWORD", password)];
    let (success, out, err) = cli_env(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"], &env);
    assert!(success, "{out}{err}");
    assert!(!out.contains(password) && !err.contains(password));
    let bad = [("MOAT_REGISTRY_USERNAME", "ci"), ("MOAT_REGISTRY_PASSWORD", "wrong")];
    let (success, _, err) = cli_env(dir, &["pull", &r, "--verify-key", "release.pub", "--out", "x.wasm"], &bad);
    assert!(!success && err.contains("refused the credentials") && !err.contains("wrong"), "{err}");

    // A server reads them from a docker-style config file named in moat.toml.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci:{password}"));
    std::fs::write(dir.join("docker.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr)).unwrap();
    let config = source(&r, &format!("auth_file = \"{}\"", dir.join("docker.json").display()));
    let s = serve_from(&config, dir);
    wait_for("v1 served", Duration::from_secs(30), async || version(&s).await == Ok(1)).await;
    let ready = readyz(&s).await.to_string();
    assert!(!s.log().contains(password) && !s.log().contains(&auth) && !ready.contains(password));
}

#[test]
fn bad_sources_are_refused_at_start_naming_the_problem() {
    let w = workspace();
    let dir = w.path();
    for (config, words) in [
        ("[[plugins.oci]]\nref = \"127.0.0.1:1/t:1\"\n", "needs `verify_keys`"),
        (
            "[[plugins.oci]]\nref = \"127.0.0.1:1/t:1\"\nverify_keys = [\"release.pub\"]\ninsecure_unsigned = true\n",
            "keep one",
        ),
        ("[[plugins.oci]]\nref = \"127.0.0.1:1/t:1\"\nverify_keys = [\"missing.pub\"]\n", "missing.pub"),
        ("[[plugins.oci]]\nref = \"127.0.0.1:1/t:1\"\nverify_keys = [\"release.key\"]\n", "not a `PUBLIC KEY`"),
        ("[[plugins.oci]]\nref = \"t:1\"\nverify_keys = [\"release.pub\"]\n", "name the registry"),
        ("[[plugins.oci]]\nref = \"127.0.0.1:1/t:1\"\nverify_keys = [\"release.pub\"]\npoll_s = 0\n", "poll_s"),
        (
            "[[plugins.oci]]\nref = \"127.0.0.1:1/a/t:1\"\nverify_keys = [\"release.pub\"]\n[[plugins.oci]]\nref = \"127.0.0.1:1/b/t:1\"\nverify_keys = [\"release.pub\"]\n",
            "both named `t`",
        ),
        (
            "[[plugins.oci]]\nref = \"127.0.0.1:1/t:1\"\nverify_keys = [\"release.pub\"]\nusername_env = \"U\"\n",
            "both `username_env` and `password_env`",
        ),
    ] {
        std::fs::write(dir.join("moat.toml"), config).unwrap();
        let (success, out, err) = cli(dir, &["check", "--config", "moat.toml"]);
        assert!(!success, "{config}: {out}");
        assert!(err.contains(words) || out.contains(words), "{config}\nwanted {words}:\n{out}{err}");
    }
}

/// A registry that sends without end (a compromised or broken one: a real
/// registry refuses to serve a manifest over 4 MiB itself): every answer is an
/// endless chunked body. Returns its address and how many bytes it sent.
async fn endless_registry() -> (String, Arc<std::sync::atomic::AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, " ".repeat(64 << 10));
                // At most 256 MiB, so a broken cap still ends the test.
                for _ in 0..4096 {
                    if conn.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(64 << 10, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (addr, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_manifest_is_cut_at_the_cap() {
    let w = workspace();
    let (addr, sent) = endless_registry().await;
    let dir = w.path().to_owned();
    let r = format!("{addr}/tools/x:1");
    let (success, _, err) =
        tokio::task::spawn_blocking(move || cli(&dir, &["pull", &r, "--verify-key", "release.pub", "--out", "x.wasm"]))
            .await
            .unwrap();
    assert!(!success && err.contains("larger than the 4194304-byte cap"), "{err}");
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 64 << 20, "moat stopped reading soon after the cap ({sent} bytes sent)");
    assert!(!w.path().join("x.wasm").exists());
}

/// A token service for [`Registry::start_with_token_auth`]: Basic
/// `user:password` in, a JWT granting the asked repository scope out, signed
/// ES256 with the certificate in its `x5c` header. Returns (realm URL,
/// certificate path, tokens issued).
async fn token_service(dir: &Path, user: &str, password: &str) -> (String, PathBuf, Arc<std::sync::atomic::AtomicU64>) {
    // A key and a self-signed certificate, made with Python's cryptography.
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moat test token issuer")])
now = datetime.datetime.utcnow()
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
open(sys.argv[1] + "/token.key", "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[1] + "/token.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
"#;
    let out = Command::new("python3").args(["-c", script, &dir.to_string_lossy()]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cert_pem = std::fs::read_to_string(dir.join("token.crt")).unwrap();
    let der = pem::parse(&cert_pem).unwrap().into_contents();
    use base64::Engine as _;
    let x5c = base64::engine::general_purpose::STANDARD.encode(der);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(dir.join("token.key")).unwrap()).unwrap();
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = issued.clone();
    let handler = move |headers: axum::http::HeaderMap,
                        query: axum::extract::Query<std::collections::HashMap<String, String>>| {
        let (key, x5c, expected, count) = (key.clone(), x5c.clone(), expected.clone(), count.clone());
        async move {
            use axum::response::IntoResponse as _;
            let given = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if given != expected {
                return (axum::http::StatusCode::UNAUTHORIZED, "bad credentials").into_response();
            }
            let access: Vec<Value> = query
                .get("scope")
                .into_iter()
                .flat_map(|s| s.split(' '))
                .filter_map(|scope| {
                    let mut parts = scope.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                })
                .collect();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let claims = json!({
                "iss": TOKEN_ISSUER, "sub": "ci", "aud": TOKEN_SERVICE, "exp": now + 300, "nbf": now - 10,
                "iat": now, "jti": format!("t{}", count.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
                "access": access,
            });
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.x5c = Some(vec![x5c]);
            let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
            axum::Json(json!({"token": token})).into_response()
        }
    };
    let app = axum::Router::new().route("/token", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/token"), dir.join("token.crt"), issued)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_with_token_auth_is_spoken_to_with_bearer_tokens() {
    let password = "tok-3b9e51d0-not-a-real-secret";
    let w = workspace();
    let dir = w.path();
    let (realm, cert, issued) = token_service(dir, "ci", password).await;
    let reg = Registry::start_with_token_auth(&realm, &cert);
    let r = reg.reference("tools/disk_usage:1");
    // Without credentials the token service says no.
    let (success, _, err) =
        tokio::task::block_in_place(|| cli(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"]));
    assert!(!success && err.contains("refused the credentials"), "{err}");
    let env = [("MOAT_REGISTRY_USERNAME", "ci"), ("MOAT_REGISTRY_PASSWORD", password)];
    let before = issued.load(std::sync::atomic::Ordering::Relaxed);
    let (success, out, err) =
        tokio::task::block_in_place(|| cli_env(dir, &["push", "v1.wasm", &r, "--sign-key", "release.key"], &env));
    assert!(success, "{out}{err}");
    let tokens = issued.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!((1..=4).contains(&tokens), "a token is reused across requests ({tokens} issued for one push)");
    let (success, out, err) = tokio::task::block_in_place(|| {
        cli_env(dir, &["pull", &r, "--verify-key", "release.pub", "--out", "t.wasm"], &env)
    });
    assert!(success && out.contains("signature verified"), "{out}{err}");

    // A server with the credentials in environment variables named in moat.toml.
    let config = source(&r, "username_env = \"REG_USER\"\npassword_env = \"REG_TOKEN\"");
    let keys = dir.to_owned();
    let s = Server::start_with_env(
        &["--config", "moat.toml", "--admin-listen", "127.0.0.1:0"],
        &[("REG_USER", "ci"), ("REG_TOKEN", password)],
        |plugins| {
            let root = plugins.parent().unwrap();
            std::fs::remove_file(plugins.join("disk_usage.wasm")).unwrap();
            std::fs::write(root.join("moat.toml"), &config).unwrap();
            std::fs::copy(keys.join("release.pub"), root.join("release.pub")).unwrap();
            std::fs::write(root.join("disk_usage.toml"), "[grants]\ndirs = [{ host = \".\", guest = \"/\" }]\n")
                .unwrap();
        },
    );
    wait_for("v1 served", Duration::from_secs(30), async || version(&s).await == Ok(1)).await;
    assert!(!s.log().contains(password));
}
