//! Hot reload against a running `moat serve`: files dropped, rewritten, renamed,
//! symlinked and deleted in its plugins folder while clients call and listen.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{ClientConfig, ProtocolVersion, SubscriptionFilter};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::common::{moat, stdout, wasm};
use crate::server::{Server, modern_request};

/// Which build of disk_usage answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// `plugins/disk_usage`.
    Base,
    /// `tests/plugins/disk_usage_next`: the same plus `used_percent`.
    Next,
}

/// Calls disk_usage (2026-07-28, stateless) and tells which build answered.
async fn disk_usage(s: &Server) -> Result<Version, String> {
    let call = json!({"name": "disk_usage", "arguments": {}});
    let r = modern_request(&s.url, &s.token, "tools/call", call).send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("{status}: {e}"))?;
    let st = &body["result"]["structuredContent"];
    if status != 200 || st["total_bytes"].as_u64().is_none() || body["result"]["isError"] == json!(true) {
        return Err(format!("{status}: {body}"));
    }
    Ok(if st.get("used_percent").is_some() { Version::Next } else { Version::Base })
}

async fn tool_names(s: &Server) -> Vec<String> {
    let r = modern_request(&s.url, &s.token, "tools/list", json!({})).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

/// Polls `check` every 20 ms until it holds; panics naming `what` after 15 s.
async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_version(s: &Server, want: Version) {
    wait_for(&format!("disk_usage {want:?}"), async || disk_usage(s).await == Ok(want)).await;
}

/// Copies `src` beside `dst` under a hidden name, then renames it over `dst`.
fn replace_atomically(src: &Path, dst: &Path) {
    replace_atomically_bytes(dst, &std::fs::read(src).unwrap());
}

/// Writes `bytes` beside `dst` under a hidden name, then renames it over `dst`.
fn replace_atomically_bytes(dst: &Path, bytes: &[u8]) {
    let tmp = dst.with_file_name(format!(".{}.tmp", dst.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

fn admin_server() -> Server {
    Server::start_with(&["--admin-listen", "127.0.0.1:0"], |_| {})
}

async fn metrics(s: &Server) -> String {
    let admin = s.admin.as_ref().expect("started with an admin listener");
    reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap()
}

/// The value of one series, e.g. `moat_plugin_loads_total{outcome="failed"}`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

async fn readyz(s: &Server) -> Value {
    let admin = s.admin.as_ref().expect("started with an admin listener");
    reqwest::get(format!("{admin}/readyz?verbose")).await.unwrap().json().await.unwrap()
}

/// The `/readyz` failure entry for `file`, if any.
async fn failure(s: &Server, file: &str) -> Option<Value> {
    let ready = readyz(s).await;
    ready["failed"].as_array().unwrap().iter().find(|f| f["file"].as_str().unwrap().ends_with(file)).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_a_plugin_under_load_loses_no_call() {
    let s = Arc::new(Server::start());
    let target = s.plugins().join("disk_usage.wasm");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Every call: (started, ended, outcome).
    type Calls = Vec<(Instant, Instant, Result<Version, String>)>;
    let log: Arc<Mutex<Calls>> = Arc::default();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (s, stop, log) = (s.clone(), stop.clone(), log.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = disk_usage(&s).await;
                    log.lock().unwrap().push((started, Instant::now(), outcome));
                }
            })
        })
        .collect();
    let seen = |v: Version, after: Instant| {
        log.lock().unwrap().iter().filter(|(st, _, o)| *st > after && *o == Ok(v)).map(|(_, end, _)| *end).min()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1. An atomic rename of the next build over the file.
    let renamed = Instant::now();
    replace_atomically(&wasm("disk_usage_next"), &target);
    wait_for("a call answered by the new build", async || seen(Version::Next, renamed).is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 2. The old build written back in place (truncate, write, close).
    let rewritten = Instant::now();
    std::fs::write(&target, std::fs::read(wasm("disk_usage")).unwrap()).unwrap();
    wait_for("a call answered by the rewritten build", async || seen(Version::Base, rewritten).is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let first_next = seen(Version::Next, renamed).unwrap();
    let first_base_again = seen(Version::Base, rewritten).unwrap();
    let log = log.lock().unwrap();
    let failed: Vec<_> = log.iter().filter_map(|(_, _, o)| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} calls failed: {:?}", failed.len(), log.len(), &failed[..failed.len().min(3)]);
    assert!(log.len() > 100, "the load ran ({} calls)", log.len());
    // Once a call was answered by the new build, every call started after it is too.
    // (A call still running when the old build was written back may see either:
    // on a loaded machine its request can reach the server after that swap.)
    for (started, ended, outcome) in log.iter() {
        if *started > first_next && *ended < rewritten {
            assert_eq!(*outcome, Ok(Version::Next), "a call after the swap ran the old build");
        }
        if *started > first_base_again {
            assert_eq!(*outcome, Ok(Version::Base), "a call after the rewrite ran the replaced build");
        }
    }
    let (before, between) = (
        log.iter().filter(|(st, _, _)| *st < renamed).count(),
        log.iter().filter(|(st, _, _)| *st > first_next && *st < rewritten).count(),
    );
    assert!(before > 10 && between > 10, "calls ran before ({before}) and between ({between}) the swaps");
}

#[tokio::test]
async fn a_component_written_in_chunks_is_loaded_only_once_complete() {
    use std::io::Write as _;
    let s = admin_server();
    let target = s.plugins().join("disk_usage.wasm");
    let loads_before = metric(&metrics(&s).await, "moat_plugin_loads_total{outcome=\"ok\"}");
    let next = std::fs::read(wasm("disk_usage_next")).unwrap();
    // Written in place (truncated first) in eight chunks, 150 ms apart, one file
    // handle: for a second the file on disk is a broken component.
    let mut f = std::fs::File::create(&target).unwrap();
    for chunk in next.chunks(next.len().div_ceil(8)) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(disk_usage(&s).await, Ok(Version::Base), "the loaded build keeps serving while the file is written");
    }
    drop(f);
    wait_for_version(&s, Version::Next).await;
    let m = metrics(&s).await;
    assert_eq!(metric(&m, "moat_plugin_loads_total{outcome=\"failed\"}"), 0.0, "no half-written load was attempted");
    assert_eq!(metric(&m, "moat_plugin_loads_total{outcome=\"ok\"}"), loads_before + 1.0, "loaded once, complete");
    assert!(readyz(&s).await["failed"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_new_version_leaves_the_previous_one_serving() {
    let s = admin_server();
    let plugins = s.plugins();
    let base_hash = readyz(&s).await["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "disk_usage").unwrap()
        ["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = std::fs::read(wasm("disk_usage_next")).unwrap();
    let bad_versions: [(&str, &str, Vec<u8>, &str); 5] = [
        ("corrupt bytes", "disk_usage.wasm", b"\0asm garbage, not a component".to_vec(), "not a"),
        ("a truncated component", "disk_usage.wasm", next[..next.len() / 2].to_vec(), "component"),
        (
            "a wrong-world component",
            "disk_usage.wasm",
            std::fs::read(wasm("wrong_world")).unwrap(),
            "moat:plugin/tools",
        ),
        ("a sidecar that does not parse", "disk_usage.toml", b"[grants\ndirs = 3".to_vec(), "sidecar"),
        (
            "a tool name another plugin serves",
            "everything.wasm",
            std::fs::read(wasm("clash")).unwrap(),
            "already provided",
        ),
    ];
    let good: Vec<(&str, Vec<u8>)> = ["disk_usage.wasm", "disk_usage.toml", "everything.wasm"]
        .into_iter()
        .map(|f| (f, std::fs::read(plugins.join(f)).unwrap()))
        .collect();
    for (i, (what, file, bytes, reason)) in bad_versions.into_iter().enumerate() {
        let failed_before = metric(&metrics(&s).await, "moat_plugin_loads_total{outcome=\"failed\"}");
        replace_atomically_bytes(&plugins.join(file), &bytes);
        // A failure is reported against the component; a sidecar's names the sidecar.
        let component = file.replace(".toml", ".wasm");
        wait_for(&format!("{what} to be reported"), async || failure(&s, &component).await.is_some()).await;
        let f = failure(&s, &component).await.unwrap();
        let error = f["error"].as_str().unwrap();
        assert!(error.contains(reason), "{what}: the reason names the problem: {error}");
        assert!(component == file || error.contains(file), "{what}: the reason names the sidecar: {error}");
        assert!(f["serving"].is_string(), "{what}: the previous version is still serving: {f}");
        if file == "disk_usage.wasm" {
            assert_eq!(f["serving"], base_hash.as_str());
        }
        assert_eq!(disk_usage(&s).await, Ok(Version::Base), "{what}: disk_usage still answers");
        assert!(tool_names(&s).await.contains(&"test_simple_text".to_owned()), "{what}: other plugins still serve");
        let m = metrics(&s).await;
        assert!(metric(&m, "moat_plugin_loads_total{outcome=\"failed\"}") > failed_before, "{what}: counted\n{m}");
        assert_eq!(metric(&m, "moat_plugins{state=\"failed\"}"), 1.0, "{what}");
        assert!(s.log().contains(file), "{what}: logged\n{}", s.log());
        if i == 0 {
            let out = moat(&s.dir.path().join("cache")).args(["check", "--plugins"]).arg(&plugins).output().unwrap();
            assert!(!out.status.success(), "moat check fails");
            assert!(stdout(&out).contains("disk_usage.wasm") && stdout(&out).contains("error"), "{}", stdout(&out));
        }
        // Put the good file back: the failure clears.
        let (_, good_bytes) = good.iter().find(|(f, _)| *f == file).unwrap();
        replace_atomically_bytes(&plugins.join(file), good_bytes);
        wait_for(&format!("{what} to be cleared"), async || failure(&s, &component).await.is_none()).await;
        assert_eq!(disk_usage(&s).await, Ok(Version::Base));
    }
}

#[tokio::test]
async fn deleting_a_plugin_removes_its_tools_after_calls_in_flight_finish() {
    let s = Server::start_with(&["--admin-listen", "127.0.0.1:0"], |plugins| {
        std::fs::copy(wasm("hostile"), plugins.join("hostile.wasm")).unwrap();
    });
    let slow =
        modern_request(&s.url, &s.token, "tools/call", json!({"name": "sleep", "arguments": {"n": 1500}})).send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_file(s.plugins().join("hostile.wasm")).unwrap();
    wait_for("hostile's tools to go", async || !tool_names(&s).await.contains(&"sleep".to_owned())).await;
    let reply: Value = slow.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "awake", "the call in flight finished on its version: {reply}");
    let again = modern_request(&s.url, &s.token, "tools/call", json!({"name": "sleep", "arguments": {"n": 1}}));
    let again: Value = again.send().await.unwrap().json().await.unwrap();
    assert!(again["error"]["message"].as_str().unwrap_or_default().contains("unknown tool"), "{again}");
    // The removed version is dropped once its last call is done.
    wait_for("the removed version to be freed", async || {
        metric(&metrics(&s).await, "moat_plugin_versions_alive") == 2.0
    })
    .await;
    assert!(readyz(&s).await["plugins"].as_array().unwrap().iter().all(|p| p["name"] != "hostile"));
}

#[tokio::test]
async fn sidecar_changes_reload_grants_scopes_and_limits() {
    let s = admin_server();
    let sidecar = s.plugins().join("disk_usage.toml");
    let grant = std::fs::read_to_string(&sidecar).unwrap();
    let loads = async || metric(&metrics(&s).await, "moat_plugin_loads_total{outcome=\"ok\"}");
    let before = loads().await;

    // Scopes: a scope the dev token lacks hides and locks the tool.
    std::fs::write(&sidecar, format!("{grant}[tools.disk_usage]\nscopes = [\"ops:disk\"]\n")).unwrap();
    wait_for("disk_usage to need ops:disk", async || !tool_names(&s).await.contains(&"disk_usage".to_owned())).await;
    let r = modern_request(&s.url, &s.token, "tools/call", json!({"name": "disk_usage", "arguments": {}}));
    assert_eq!(r.send().await.unwrap().status(), 403);
    assert_eq!(loads().await, before + 1.0, "one load for one sidecar change");
    assert_eq!(readyz(&s).await["failed"], json!([]));

    // A rate limit.
    std::fs::write(&sidecar, format!("{grant}[tools.disk_usage]\nrate_limit = {{ per_minute = 1, burst = 1 }}\n"))
        .unwrap();
    wait_for("disk_usage to be listed again", async || tool_names(&s).await.contains(&"disk_usage".to_owned())).await;
    let statuses = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let r = modern_request(&s.url, &s.token, "tools/call", json!({"name": "disk_usage", "arguments": {}}));
            v.push(r.send().await.unwrap().status().as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 429, 429], "the new rate limit applies");

    // Grants: without the sidecar, disk_usage has no directory to look at.
    std::fs::remove_file(&sidecar).unwrap();
    wait_for("disk_usage to lose its grant", async || {
        disk_usage(&s).await.is_err_and(|e| e.contains("\"isError\":true") && !e.contains("429"))
    })
    .await;
    std::fs::write(&sidecar, &grant).unwrap();
    wait_for_version(&s, Version::Base).await;
    assert!(!s.log().contains("ERROR"), "valid sidecars log no error:\n{}", s.log());
}

/// Records the list_changed notifications a 2025-11-25 session receives, and
/// the URIs of `resources/updated` ones.
#[derive(Clone, Default)]
struct Listener(Arc<Mutex<Vec<&'static str>>>, Arc<Mutex<Vec<String>>>);

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::default().with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_tool_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.0.lock().unwrap().push("tools");
    }

    async fn on_resource_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.0.lock().unwrap().push("resources");
    }

    async fn on_prompt_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.0.lock().unwrap().push("prompts");
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        self.1.lock().unwrap().push(params.uri);
    }
}

#[tokio::test]
#[allow(deprecated)] // resources/subscribe is what 2025-11-25 sessions use
async fn subscribed_resources_hear_when_the_plugin_serving_them_changes() {
    let s = Server::start();
    let legacy = Listener::default();
    let session = legacy.clone().serve(transport(&s)).await.unwrap();
    let watched = "test://static-text";
    session.peer().subscribe(rmcp::model::SubscribeRequestParams::new(watched)).await.unwrap();
    // Let the session's GET stream open before anything changes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let updates = || legacy.1.lock().unwrap().clone();

    // A change to another plugin says nothing about this resource.
    let grant =
        format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", s.dir.path().display());
    std::fs::write(s.plugins().join("disk_usage.toml"), format!("{grant}[limits]\ntimeout_ms = 20000\n")).unwrap();
    // (A reload takes tens of milliseconds here.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(updates().is_empty(), "{:?}", updates());

    // A new configuration of the plugin serving it: updated.
    std::fs::write(s.plugins().join("everything.toml"), "[limits]\ntimeout_ms = 20000\n").unwrap();
    wait_for("resources/updated", async || !updates().is_empty()).await;
    assert_eq!(updates(), [watched]);

    // The plugin goes away: updated again (the resource is gone).
    std::fs::remove_file(s.plugins().join("everything.wasm")).unwrap();
    wait_for("resources/updated on removal", async || updates().len() == 2).await;
    assert_eq!(updates(), [watched, watched]);

    // Served again: updated once more.
    std::fs::copy(wasm("everything"), s.plugins().join(".everything.tmp")).unwrap();
    std::fs::rename(s.plugins().join(".everything.tmp"), s.plugins().join("everything.wasm")).unwrap();
    wait_for("resources/updated when it is back", async || updates().len() == 3).await;
    assert_eq!(updates(), [watched, watched, watched]);
    session.cancel().await.unwrap();
}

fn transport(s: &Server) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.url.clone()).auth_header(s.token.clone()),
    )
}

#[tokio::test]
async fn listening_clients_hear_list_changed_once_per_burst_in_both_eras() {
    // Kubernetes ConfigMap layout: plugin files are links into `..data`, itself a
    // link to a timestamped folder that is swapped by one rename.
    let s = Server::start_with(&[], |plugins| {
        for name in ["cleanup", "hostile", "trivial"] {
            std::os::unix::fs::symlink(format!("..data/{name}.wasm"), plugins.join(format!("{name}.wasm"))).unwrap();
        }
    });
    let plugins = s.plugins();
    let legacy = Listener::default();
    let session = legacy.clone().serve(transport(&s)).await.unwrap();
    let modern = ClientConfig::default()
        .serve_with_lifecycle(
            transport(&s),
            ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] },
        )
        .await
        .unwrap();
    let mut sub = modern
        .peer()
        .listen(
            SubscriptionFilter::builder().tools_list_changed().resources_list_changed().prompts_list_changed().build(),
        )
        .await
        .unwrap();
    // Let the legacy session's GET stream open before anything changes (rmcp
    // does not replay what was sent before it opened).
    tokio::time::sleep(Duration::from_secs(1)).await;

    // One rename brings three plugins at once.
    let version = plugins.join("..2026_11_26_a");
    std::fs::create_dir(&version).unwrap();
    for name in ["cleanup", "hostile", "trivial"] {
        std::fs::copy(wasm(name), version.join(format!("{name}.wasm"))).unwrap();
    }
    std::os::unix::fs::symlink("..2026_11_26_a", plugins.join("..data_tmp")).unwrap();
    std::fs::rename(plugins.join("..data_tmp"), plugins.join("..data")).unwrap();

    let first = tokio::time::timeout(Duration::from_secs(15), sub.next()).await.expect("a notification").unwrap();
    assert!(
        matches!(first, Some(rmcp::model::ServerNotification::ToolListChangedNotification(_))),
        "2026-07-28 listener: {first:?}"
    );
    let tools = tool_names(&s).await;
    for t in ["cleanup", "sleep", "noop"] {
        assert!(tools.contains(&t.to_owned()), "{t} listed after the swap: {tools:?}");
    }
    wait_for("the session to hear it", async || legacy.0.lock().unwrap().contains(&"tools")).await;
    // Settle, then count: one burst, one notification of each kind that changed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*legacy.0.lock().unwrap(), ["tools"], "2025-11-25 session: once per burst");
    let more = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(more.is_err(), "2026-07-28 listener: once per burst, got {more:?}");

    // Removing a plugin that serves prompts and resources tells about all three.
    std::fs::remove_file(plugins.join("everything.wasm")).unwrap();
    wait_for("the session to hear of the prompts", async || legacy.0.lock().unwrap().contains(&"prompts")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut heard = legacy.0.lock().unwrap().clone();
    heard.sort();
    assert_eq!(heard, ["prompts", "resources", "tools", "tools"]);
    let mut modern_heard = Vec::new();
    while let Ok(Ok(Some(n))) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        modern_heard.push(format!("{n:?}").split('(').next().unwrap().to_owned());
    }
    modern_heard.sort();
    assert_eq!(
        modern_heard,
        ["PromptListChangedNotification", "ResourceListChangedNotification", "ToolListChangedNotification"]
    );
    sub.cancel().await.unwrap();
    session.cancel().await.unwrap();
    modern.cancel().await.unwrap();
}

#[tokio::test]
async fn editor_and_temp_files_do_not_reload_anything() {
    let s = admin_server();
    let plugins = s.plugins();
    let loads = async || metric(&metrics(&s).await, "moat_plugin_loads_total{outcome=\"ok\"}");
    let before = loads().await;
    let rescans = async || {
        let m = metrics(&s).await;
        let series = "moat_reloads_total{trigger=\"watch\",result=\"ok\"}";
        if m.contains(series) { metric(&m, series) } else { 0.0 }
    };
    // The watcher rescans once when it starts; count from there.
    wait_for("the watcher's first rescan", async || rescans().await >= 1.0).await;
    let start = rescans().await;
    for name in [".disk_usage.toml.swp", "disk_usage.toml~", "4913", "notes.txt", ".disk_usage.wasm.part"] {
        std::fs::write(plugins.join(name), b"scratch").unwrap();
    }
    // Touching a component (same content, new mtime) reloads nothing either.
    let component = std::fs::File::options().append(true).open(plugins.join("disk_usage.wasm")).unwrap();
    component.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
    drop(component);
    wait_for("a rescan (for the touched component)", async || rescans().await > start).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_scratch = rescans().await;
    assert_eq!(loads().await, before, "scratch files and a touched component load nothing");
    // Vim's save: rename the original away, write the new one, delete the backup.
    let sidecar = plugins.join("disk_usage.toml");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::rename(&sidecar, plugins.join("disk_usage.toml~")).unwrap();
    std::fs::write(&sidecar, format!("{text}[limits]\ntimeout_ms = 3000\n")).unwrap();
    std::fs::remove_file(plugins.join("disk_usage.toml~")).unwrap();
    wait_for("the sidecar to load", async || loads().await == before + 1.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(loads().await, before + 1.0, "one save, one load");
    assert!(rescans().await > after_scratch);
    assert_eq!(disk_usage(&s).await, Ok(Version::Base));
    assert_eq!(readyz(&s).await["failed"], json!([]));
}

#[tokio::test]
async fn without_watching_sighup_and_moat_reload_rescan() {
    let s = Server::start_with(&["--admin-listen", "127.0.0.1:0", "--no-watch"], |_| {});
    let target = s.plugins().join("disk_usage.wasm");
    assert_eq!(readyz(&s).await["reload"]["watching"], false);
    replace_atomically(&wasm("disk_usage_next"), &target);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(disk_usage(&s).await, Ok(Version::Base), "--no-watch: nothing reloads by itself");

    let admin = s.admin.clone().unwrap();
    let out = moat(&s.dir.path().join("cache")).args(["reload", "--admin", &admin]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("replaced") && stdout(&out).contains("disk_usage.wasm"), "{}", stdout(&out));
    assert_eq!(disk_usage(&s).await, Ok(Version::Next), "moat reload returns after the swap");

    replace_atomically(&wasm("disk_usage"), &target);
    let out = moat(&s.dir.path().join("cache")).args(["reload", "--pid", &s.pid().to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for_version(&s, Version::Base).await;

    // A sidecar-only change reuses the compiled component (the report says how).
    let sidecar = s.plugins().join("disk_usage.toml");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::write(&sidecar, format!("{text}[limits]\ntimeout_ms = 3000\n")).unwrap();
    let out = moat(&s.dir.path().join("cache")).args(["reload", "--admin", &admin]).output().unwrap();
    let line = stdout(&out).lines().find(|l| l.contains("disk_usage.wasm")).map(str::to_owned);
    assert!(line.as_deref().is_some_and(|l| l.starts_with("replaced") && l.contains("(settings,")), "{}", stdout(&out));

    // A web page cannot trigger it from a browser.
    let r = reqwest::Client::new().post(format!("{admin}/reload")).header("Origin", "https://evil.example").send();
    assert_eq!(r.await.unwrap().status(), 403);

    // A failure makes `moat reload` exit non-zero, naming the file.
    std::fs::write(s.plugins().join("broken.wasm"), b"nope").unwrap();
    let out = moat(&s.dir.path().join("cache")).args(["reload", "--admin", &admin]).output().unwrap();
    assert!(!out.status.success());
    assert!(stdout(&out).contains("broken.wasm"), "{}", stdout(&out));
}

/// Open file descriptors and resident memory (KiB) of a process.
fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (fds, rss)
}

#[tokio::test]
async fn a_hundred_reloads_leak_nothing() {
    let s = admin_server();
    let target = s.plugins().join("disk_usage.wasm");
    let builds = [(wasm("disk_usage_next"), Version::Next), (wasm("disk_usage"), Version::Base)];
    let reload = async |i: usize| {
        let (file, version) = &builds[i % 2];
        replace_atomically(file, &target);
        wait_for_version(&s, *version).await;
    };
    // Allocator arenas and the instance pool grow over the first few dozen
    // reloads, then stay flat (600 reloads in release: +11 MiB by 100, +0 after).
    for i in 0..60 {
        reload(i).await;
    }
    let (fds_before, rss_before) = usage(s.pid());
    for i in 60..160 {
        reload(i).await;
    }
    let (fds_after, rss_after) = usage(s.pid());
    let m = metrics(&s).await;
    assert_eq!(metric(&m, "moat_plugin_versions_alive"), 2.0, "only the two serving versions are in memory");
    assert_eq!(metric(&m, "moat_calls_in_flight"), 0.0);
    assert!(fds_after <= fds_before + 2, "file descriptors: {fds_before} after 60 reloads, {fds_after} after 160");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "resident memory: {rss_before} KiB after 60 reloads, {rss_after} KiB after 160"
    );
    eprintln!("after 60 reloads: {fds_before} fds, {rss_before} KiB; after 160: {fds_after} fds, {rss_after} KiB");
}

#[tokio::test]
async fn a_replaced_or_recreated_plugins_directory_is_followed() {
    // Release-style layout: `plugins` is a symlink to a release folder.
    let s = Server::start_with(&["--admin-listen", "127.0.0.1:0"], |plugins| {
        std::fs::rename(plugins, plugins.with_file_name("release-1")).unwrap();
        std::os::unix::fs::symlink("release-1", plugins).unwrap();
    });
    let root = s.dir.path();
    assert_eq!(disk_usage(&s).await, Ok(Version::Base));
    // A new release, swapped in by one rename of the symlink.
    std::fs::create_dir(root.join("release-2")).unwrap();
    for f in ["disk_usage.toml", "everything.wasm"] {
        std::fs::copy(root.join("release-1").join(f), root.join("release-2").join(f)).unwrap();
    }
    std::fs::copy(wasm("disk_usage_next"), root.join("release-2/disk_usage.wasm")).unwrap();
    std::os::unix::fs::symlink("release-2", root.join("plugins.tmp")).unwrap();
    std::fs::rename(root.join("plugins.tmp"), root.join("plugins")).unwrap();
    wait_for_version(&s, Version::Next).await;
    // The old release is no longer watched: changing it changes nothing.
    std::fs::remove_file(root.join("release-1/everything.wasm")).unwrap();
    // Deleted: the loaded plugins keep serving. Recreated: watched and loaded again.
    std::fs::remove_file(root.join("plugins")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(disk_usage(&s).await, Ok(Version::Next), "a missing folder unloads nothing");
    assert!(tool_names(&s).await.contains(&"test_simple_text".to_owned()));
    std::fs::create_dir(root.join("plugins")).unwrap();
    for f in ["disk_usage.toml", "disk_usage.wasm"] {
        std::fs::copy(root.join("release-1").join(f), root.join("plugins").join(f)).unwrap();
    }
    wait_for_version(&s, Version::Base).await;
    wait_for("everything.wasm (absent from the new folder) to go", async || {
        !tool_names(&s).await.contains(&"test_simple_text".to_owned())
    })
    .await;
    // And the recreated folder is watched.
    replace_atomically(&wasm("disk_usage_next"), &root.join("plugins/disk_usage.wasm"));
    wait_for_version(&s, Version::Next).await;
    // Idle, nothing rescans (our own reads of the folder are not changes).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let count = async || {
        let m = metrics(&s).await;
        m.lines()
            .filter(|l| l.starts_with("moat_reloads_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    let before = count().await;
    assert!(before > 0.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, before, "no rescans while nothing changes");
}
