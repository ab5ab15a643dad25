//! Plugins written in Python and TypeScript (`moat build`), served by a real
//! `moat serve` and tested as the Rust plugins are: listed and called over MCP
//! with the rmcp client and stateless requests, bad arguments refused before
//! the plugin runs, an exception, a deadline and the memory cap each ending only
//! their call, granted directories, hot reload under load, and the build and
//! check commands themselves.
//!
//! The components are built by `cargo xtask build-plugins` and compiled once
//! into a cache the servers here share (`MOAT_TEST_CACHE_HOME`): a Python
//! component takes tens of seconds to compile, a cache hit milliseconds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion, ReadResourceRequestParams, object};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::common::{moat, stderr, stdout, wasm};
use crate::server::{Server, modern_request};

/// `XDG_CACHE_HOME` of the servers here: the compiled-component cache that
/// `cargo xtask build-plugins` filled.
fn cache_home() -> PathBuf {
    std::env::var_os("MOAT_TEST_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moat-cache-home"))
}

/// A dev server with `plugins` (component names) copied in beside the default
/// ones, and `files` (name, text) written into its plugins folder.
fn serve(plugins: &[&str], files: &[(&str, String)]) -> Server {
    let home = cache_home();
    std::fs::create_dir_all(&home).unwrap();
    let home = home.to_string_lossy().into_owned();
    Server::start_with_env(&[], &[("XDG_CACHE_HOME", &home)], |dir| {
        for p in plugins {
            std::fs::copy(wasm(p), dir.join(format!("{p}.wasm"))).unwrap();
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    })
}

/// A stateless (2026-07-28) request; the JSON-RPC response.
async fn request(s: &Server, method: &str, params: Value) -> Value {
    let r = modern_request(&s.url, &s.token, method, params).send().await.unwrap();
    r.json().await.unwrap()
}

async fn call(s: &Server, tool: &str, arguments: Value) -> Value {
    request(s, "tools/call", json!({"name": tool, "arguments": arguments})).await
}

/// The text of a tool error result, or a panic showing what came back.
fn tool_error(reply: &Value) -> String {
    assert_eq!(reply["result"]["isError"], json!(true), "expected a tool error: {reply}");
    reply["result"]["content"][0]["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn python_and_typescript_tools_list_and_call_over_mcp() {
    let s = serve(&["word_count_py", "word_count_ts"], &[]);
    // The session era, through the rmcp client.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.url.clone()).auth_header(s.token.clone()),
    );
    let client =
        ClientConfig::default().with_protocol_version(ProtocolVersion::V_2025_11_25).serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    for lang in ["py", "ts"] {
        let name = format!("{lang}_word_count");
        let t = tools.iter().find(|t| t.name == name.as_str()).unwrap_or_else(|| panic!("{name} listed"));
        let input = serde_json::to_value(&*t.input_schema).unwrap();
        assert_eq!(input["properties"]["text"]["type"], "string", "{name}: {input}");
        assert_eq!(input["properties"]["unique"]["type"], "boolean", "{name}: {input}");
        assert_eq!(input["properties"]["unique"]["default"], false, "{name}: {input}");
        assert_eq!(input["required"], json!(["text"]), "{name}: only text is required: {input}");
        assert!(!t.description.as_deref().unwrap_or_default().is_empty(), "{name} has a description");
        let output = serde_json::to_value(t.output_schema.as_deref().expect("an output schema")).unwrap();
        for field in ["words", "lines", "chars", "unique_words"] {
            let ty = &output["properties"][field]["type"];
            assert!(ty == "integer" || ty == &json!(["integer", "null"]), "{name}.{field}: {output}");
        }
        assert_eq!(output["required"], json!(["words", "lines", "chars"]), "{name}: {output}");
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!((a.read_only_hint, a.idempotent_hint), (Some(true), Some(true)), "{name}");

        let text = "The cat saw the Cat\nand THE dog ünïcode\n";
        let r = client
            .call_tool(CallToolRequestParams::new(name.clone()).with_arguments(object(json!({"text": text}))))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{name}: {r:?}");
        assert_eq!(r.structured_content, Some(json!({"words": 9, "lines": 2, "chars": 40})), "{name}");
        let r = client
            .call_tool(
                CallToolRequestParams::new(name.clone()).with_arguments(object(json!({"text": text, "unique": true}))),
            )
            .await
            .unwrap();
        assert_eq!(
            r.structured_content,
            Some(json!({"words": 9, "lines": 2, "chars": 40, "unique_words": 6})),
            "{name}: the, cat, saw, and, dog, ünïcode"
        );
        // The resource and the prompt.
        let uri = format!("wordcount://{lang}/about");
        let read = client.read_resource(ReadResourceRequestParams::new(uri.clone())).await.unwrap();
        let body = serde_json::to_value(&read.contents[0]).unwrap();
        assert_eq!(body["uri"], uri.as_str());
        assert!(body["text"].as_str().is_some_and(|t| !t.is_empty()), "{uri}: {body}");
        let prompt =
            request(&s, "prompts/get", json!({"name": format!("{lang}_summarize"), "arguments": {"text": "a b c"}}))
                .await;
        let message = &prompt["result"]["messages"][0];
        assert_eq!(message["role"], "user", "{prompt}");
        assert!(message["content"]["text"].as_str().unwrap().contains("a b c"), "{prompt}");
    }
    client.cancel().await.unwrap();

    // Bad arguments are refused by the host (-32602 naming the field), so the
    // plugin never runs; the tools keep answering.
    for tool in ["py_word_count", "ts_word_count"] {
        for (args, field) in
            [(json!({}), "text"), (json!({"text": 5}), "text"), (json!({"text": "a", "unique": "yes"}), "unique")]
        {
            let r = call(&s, tool, args.clone()).await;
            assert_eq!(r["error"]["code"], -32602, "{tool} {args}: {r}");
            assert!(r["error"]["message"].as_str().unwrap().contains(field), "{tool} {args}: {r}");
        }
        let r = call(&s, tool, json!({"text": "still here"})).await;
        assert_eq!(r["result"]["structuredContent"]["words"], 2, "{tool}: {r}");
    }
}

/// The Python test plugin with a granted directory, a short deadline and a
/// memory cap.
fn probe_server(data: &Path) -> Server {
    let sidecar = format!(
        "[grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"ro\" }}]\n[limits]\ntimeout_ms = 1500\nmemory_mb = 160\n",
        data.display()
    );
    serve(&["py_probe"], &[("py_probe.toml", sidecar)])
}

#[tokio::test]
async fn a_python_plugin_keeps_to_the_sandbox_and_each_failure_ends_only_its_call() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("note.txt"), "granted text").unwrap();
    let s = probe_server(data.path());
    // Granted directories work, and nothing else is visible.
    let r = call(&s, "py_probe_read", json!({"path": "/data/note.txt"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "granted text", "{r}");
    let outside = tool_error(&call(&s, "py_probe_read", json!({"path": "/etc/passwd"})).await);
    assert!(outside.contains("FileNotFoundError") || outside.contains("No such file"), "{outside}");

    // An exception is a tool error with its message.
    let raised = tool_error(&call(&s, "py_probe_raise", json!({"message": "boom 42"})).await);
    assert!(raised.contains("ValueError") && raised.contains("boom 42"), "{raised}");

    // The deadline stops a loop that never yields.
    let started = Instant::now();
    let spun = tool_error(&call(&s, "py_probe_spin", json!({})).await);
    assert!(spun.contains("timed out after 1500 ms"), "{spun}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped near its deadline: {:?}", started.elapsed());

    // The memory cap: 64 MiB fits, 400 MiB does not.
    let r = call(&s, "py_probe_alloc", json!({"mb": 64})).await;
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    let capped = tool_error(&call(&s, "py_probe_alloc", json!({"mb": 400})).await);
    assert!(capped.contains("memory limit of 160 MiB"), "{capped}");

    // After each of those, the next call gets a fresh instance and works.
    let r = call(&s, "py_probe_version", json!({})).await;
    assert_eq!(r["result"]["structuredContent"], json!({"version": 1}), "{r}");
    let r = call(&s, "disk_usage", json!({})).await;
    assert!(r["result"]["structuredContent"]["total_bytes"].as_u64().is_some(), "{r}");
}

/// Which build of the Python probe answered: 1 or 2.
async fn probe_version(s: &Server) -> Result<u64, String> {
    let r = modern_request(&s.url, &s.token, "tools/call", json!({"name": "py_probe_version", "arguments": {}}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("{status}: {e}"))?;
    body["result"]["structuredContent"]["version"].as_u64().ok_or_else(|| format!("{status}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_plugin_replaced_under_load_loses_no_call() {
    let data = tempfile::tempdir().unwrap();
    let s = Arc::new(probe_server(data.path()));
    let target = s.plugins().join("py_probe.wasm");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Every call: (started, ended, outcome).
    type Calls = Vec<(Instant, Instant, Result<u64, String>)>;
    let log: Arc<Mutex<Calls>> = Arc::default();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (s, stop, log) = (s.clone(), stop.clone(), log.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = probe_version(&s).await;
                    log.lock().unwrap().push((started, Instant::now(), outcome));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The next build, renamed over the file.
    let swapped = Instant::now();
    let tmp = s.plugins().join(".py_probe.wasm.tmp");
    std::fs::copy(wasm("py_probe_next"), &tmp).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // When the first call answered by the new build ended.
    let first_new = loop {
        let found = log.lock().unwrap().iter().filter(|(_, _, o)| *o == Ok(2)).map(|(_, end, _)| *end).min();
        if let Some(t) = found {
            break t;
        }
        assert!(Instant::now() < deadline, "the new build never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap();
    let failed: Vec<_> = log.iter().filter_map(|(_, _, o)| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} calls failed: {:?}", failed.len(), log.len(), &failed[..failed.len().min(3)]);
    let before = log.iter().filter(|(t, _, _)| *t < swapped).count();
    let after = log.iter().filter(|(t, _, o)| *t > first_new && *o == Ok(2)).count();
    assert!(before > 5 && after > 5, "calls ran before ({before}) and after ({after}) the swap");
    // Once a call was answered by the new build, every call started after it is too.
    for (started, _, outcome) in log.iter() {
        if *started > first_new {
            assert_eq!(*outcome, Ok(2), "a call after the swap ran the old build");
        }
    }
    println!(
        "py_probe hot reload: {} calls, first on the new build {:?} after the rename",
        log.len(),
        first_new - swapped
    );
}

#[test]
fn moat_check_and_inspect_know_python_and_typescript_plugins() {
    let dir = tempfile::tempdir().unwrap();
    for p in ["word_count_py", "word_count_ts"] {
        std::fs::copy(wasm(p), dir.path().join(format!("{p}.wasm"))).unwrap();
    }
    let out = moat(&cache_home()).args(["check", "--plugins"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "moat check: {}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("word_count_py.wasm  (1 tools, 1 resources, 1 prompts)"), "{text}");
    assert!(text.contains("word_count_ts.wasm  (1 tools, 1 resources, 1 prompts)"), "{text}");
    let out = moat(&cache_home()).args(["inspect", "--json"]).arg(wasm("word_count_py")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["tools"][0]["name"], "py_word_count", "{info}");
    // `moat compile` of what is already compiled is a cache hit; of a file
    // that is not a component, an error naming it.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let out = moat(&cache_home()).arg("compile").arg(wasm("word_count_ts")).arg(&junk).output().unwrap();
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("cached") && text.contains("word_count_ts.wasm"), "{text}");
    assert!(text.contains("error") && text.contains("junk.wasm"), "{text}");
}

#[test]
fn moat_compile_fills_the_cache_a_server_then_hits() {
    let dir = tempfile::tempdir().unwrap();
    let out = moat(dir.path()).arg("compile").arg(wasm("disk_usage")).arg(wasm("trivial")).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("compiled").count(), 2, "{text}");
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("moat/components")).unwrap().collect();
    assert_eq!(cached.len(), 2, "two artifacts");
    let out = moat(dir.path()).arg("compile").arg(wasm("disk_usage")).output().unwrap();
    assert!(stdout(&out).starts_with("cached"), "{}", stdout(&out));
}

#[test]
fn moat_build_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("tool.txt");
    std::fs::write(&txt, "hello").unwrap();
    let out = moat(dir.path()).arg("build").arg(&txt).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("takes a Python module (.py) or a TypeScript"), "{}", stderr(&out));
    let missing = dir.path().join("absent.py");
    let out = moat(dir.path()).arg("build").arg(&missing).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("absent.py cannot be read"), "{}", stderr(&out));
    // A Python module that fails at import: the toolchain's error is shown, and
    // nothing is left where the component would go.
    let bad = dir.path().join("broken.py");
    std::fs::write(
        &bad,
        "from moat import tool\n\n@tool\ndef f(x: int) -> int:\n    \"\"\"Echoes x.\"\"\"\n    return x\n\nraise RuntimeError('broken at import')\n",
    )
    .unwrap();
    let build = || {
        moat(dir.path())
            .env("MOAT_TOOLCHAIN_DIR", toolchain_dir())
            .arg("build")
            .arg(&bad)
            .arg("--out")
            .arg(dir.path().join("out/broken.wasm"))
            .output()
            .unwrap()
    };
    let out = build();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("broken at import"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().collect();
    assert!(left.is_empty(), "no component and no temporary file left: {left:?}");
    // A declaration the SDK refuses fails the build naming the tool.
    std::fs::write(&bad, "from moat import tool\n\n@tool\ndef f(x: int) -> int:\n    return x\n").unwrap();
    let out = build();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tool 'f' needs a description"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Stack backtrace"), "no toolchain backtrace: {}", stderr(&out));
}

/// Where `cargo xtask` installed the toolchains.
fn toolchain_dir() -> PathBuf {
    std::env::var_os("MOAT_TOOLCHAIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/toolchains"))
}

#[test]
fn the_python_sdk_unit_tests_pass() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python");
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "-v"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&sdk)
        .output()
        .expect("python3 runs");
    let report = stderr(&out);
    assert!(out.status.success(), "{report}");
    let ran: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("Ran ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()))
        .expect("unittest reports a count");
    assert!(ran >= 40, "the SDK's tests ran ({ran})");
}

/// `moat check` with `config` (a `moat.toml`) over `plugins` and `files`
/// written beside them: (success, stdout).
fn check_with(config: &str, plugins: &[&str], files: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("plugins");
    std::fs::create_dir(&folder).unwrap();
    for p in plugins {
        std::fs::copy(wasm(p), folder.join(format!("{p}.wasm"))).unwrap();
    }
    for (name, text) in files {
        std::fs::write(folder.join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("moat.toml"), config).unwrap();
    let out = moat(&cache_home()).arg("check").arg("--config").arg(dir.path().join("moat.toml")).output().unwrap();
    (out.status.success(), stdout(&out) + &stderr(&out))
}

#[test]
fn a_plugin_that_cannot_fit_the_instance_pool_is_refused_at_load() {
    // A Python component holds 14 core instances: a pool slot of 8 cannot take it.
    let (ok, text) = check_with("[plugins.defaults]\nmax_core_instances = 8\n", &["word_count_py", "disk_usage"], &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("ok     ") && text.contains("disk_usage.wasm"), "the Rust plugin fits: {text}");
    let line = text.lines().find(|l| l.starts_with("error") && l.contains("word_count_py.wasm")).unwrap_or_default();
    assert!(line.contains("14 core module instances") && line.contains("raise max_core_instances"), "{text}");
    // The default slot takes it.
    let (ok, text) = check_with("", &["word_count_py"], &[]);
    assert!(ok, "{text}");
    // Its memory starts above a cap of 8 MiB.
    let (ok, text) = check_with("", &["word_count_py"], &[("word_count_py.toml", "[limits]\nmemory_mb = 8\n")]);
    assert!(!ok && text.contains("starts at 14 MiB, above the plugin's memory cap of 8 MiB"), "{text}");
    // More calls at once than the pool runs.
    let (ok, text) = check_with("[plugins.defaults]\npool_instances = 8\n", &["disk_usage"], &[]);
    assert!(!ok && text.contains("max_concurrency = 16 but the instance pool runs 7 calls"), "{text}");
    let (ok, text) = check_with("[plugins.defaults]\npool_instances = 8\nmax_concurrency = 4\n", &["disk_usage"], &[]);
    assert!(ok, "{text}");
    // The pool is shared: a sidecar cannot size it.
    let (ok, text) = check_with("", &["disk_usage"], &[("disk_usage.toml", "[limits]\nmax_tables = 100\n")]);
    assert!(!ok && text.contains("max_tables: the instance pool is shared"), "{text}");
}

#[tokio::test]
async fn a_typescript_plugin_keeps_to_the_sandbox_and_each_failure_ends_only_its_call() {
    let sidecar = "[limits]\ntimeout_ms = 1500\nmemory_mb = 48\n".to_owned();
    let s = serve(&["ts_probe", "word_count_ts"], &[("ts_probe.toml", sidecar)]);
    // A thrown error is a tool error with its name and message.
    let thrown = tool_error(&call(&s, "ts_probe_throw", json!({"message": "boom 42"})).await);
    assert!(thrown.contains("TypeError: boom 42"), "{thrown}");
    // The deadline stops a loop that never yields.
    let started = Instant::now();
    let spun = tool_error(&call(&s, "ts_probe_spin", json!({})).await);
    assert!(spun.contains("timed out after 1500 ms"), "{spun}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped near its deadline: {:?}", started.elapsed());
    // The memory cap: 8 MiB fits, 100 MiB does not.
    let r = call(&s, "ts_probe_alloc", json!({"mb": 8})).await;
    assert_eq!(r["result"]["content"][0]["text"], "8", "{r}");
    let capped = tool_error(&call(&s, "ts_probe_alloc", json!({"mb": 100})).await);
    assert!(capped.contains("memory limit of 48 MiB"), "{capped}");
    // Endless recursion ends the call, not the server.
    let deep = tool_error(&call(&s, "ts_probe_recurse", json!({})).await);
    assert!(deep.to_lowercase().contains("stack"), "{deep}");
    // The schema's bound is the host's to check: the plugin never runs.
    let r = call(&s, "ts_probe_alloc", json!({"mb": -1})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // After each of those, the next call gets a fresh instance and works.
    let r = call(&s, "ts_probe_alloc", json!({"mb": 1})).await;
    assert_eq!(r["result"]["content"][0]["text"], "1", "{r}");
    let r = call(&s, "ts_word_count", json!({"text": "one two"})).await;
    assert_eq!(r["result"]["structuredContent"]["words"], 2, "{r}");
}

/// `tsc` as `moat build` installed it (the folder is named by the lock's hash).
fn tsc() -> PathBuf {
    use sha2::Digest as _;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lock = std::fs::read(root.join("sdk/js/toolchain/package-lock.json")).unwrap();
    let tag = hex::encode(&sha2::Sha256::digest(&lock)[..4]);
    let tsc = toolchain_dir().join(format!("jco-1.35.0-{tag}/node_modules/.bin/tsc"));
    assert!(tsc.is_file(), "{} is missing: run `cargo xtask build-plugins`", tsc.display());
    tsc
}

#[test]
fn typescript_plugins_type_check_strictly_and_the_sdk_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for project in ["plugins/word_count_ts", "tests/plugins/ts_probe", "sdk/js"] {
        let out = std::process::Command::new(tsc()).arg("-p").arg(root.join(project)).arg("--noEmit").output().unwrap();
        assert!(out.status.success(), "tsc -p {project} --strict: {}{}", stdout(&out), stderr(&out));
    }
    let out =
        std::process::Command::new("sh").arg(root.join("sdk/js/scripts/test.sh")).env("TSC", tsc()).output().unwrap();
    let report = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{report}");
    let passed: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("# pass ").and_then(|n| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("node --test reports a count: {report}"));
    assert!(passed >= 20, "the SDK's tests ran ({passed})");
}
