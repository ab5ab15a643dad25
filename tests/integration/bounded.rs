//! Issue 10: a plugin cannot hurt the host. Each test loads a hostile plugin
//! (mostly `mimic`, whose catalogue and behaviour the test writes) into a real
//! `moat serve`, checks what becomes of the attack, and checks that disk_usage,
//! another plugin, keeps answering promptly meanwhile.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::wasm;
use crate::server::{Server, modern_request};

/// What "promptly" means here: far below the stalls these attacks caused (15 s
/// and more), far above a loaded CI machine's worst call.
const PROMPT: Duration = Duration::from_secs(3);

/// Installs `mimic.wasm` as `plugins/NAME.wasm` with `spec` in a directory it is
/// granted as `/spec`, plus `sidecar` (more TOML for its sidecar).
fn mimic(plugins: &Path, name: &str, spec: &Value, sidecar: &str) {
    let dir = plugins.parent().unwrap().join(format!("spec-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spec.json"), spec.to_string()).unwrap();
    std::fs::write(
        plugins.join(format!("{name}.toml")),
        format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/spec\", mode = \"ro\" }}]\n{sidecar}", dir.display()),
    )
    .unwrap();
    std::fs::copy(wasm("mimic"), plugins.join(format!("{name}.wasm"))).unwrap();
}

/// A tool spec for mimic.
fn tool(name: &str, what: &str, input: Value) -> Value {
    json!({"name": name, "do": what, "input": input})
}

fn server(prepare: impl FnOnce(&Path)) -> Server {
    Server::start_with(&["--admin-listen", "127.0.0.1:0"], prepare)
}

struct Reply {
    status: u16,
    body: Value,
    /// Every JSON-RPC message of an SSE reply (the last one is the response).
    messages: Vec<Value>,
    bytes: usize,
}

/// A 2026-07-28 request (with a progress token when `params` has `_progress`);
/// SSE replies are split into their messages.
async fn request(s: &Server, method: &str, params: Value) -> Reply {
    let r = modern_request_for(s, method, params)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}; the server logged:\n{}", s.log()));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let messages: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect(),
    };
    let body = messages.last().cloned().unwrap_or(Value::Null);
    Reply { status, body, messages, bytes: text.len() }
}

/// [`modern_request`], keeping a `progressToken` given as `params._progress`.
fn modern_request_for(s: &Server, method: &str, mut params: Value) -> reqwest::RequestBuilder {
    let token = params.as_object_mut().and_then(|p| p.remove("_progress"));
    match &token {
        None => modern_request(&s.url, &s.token, method, params),
        Some(_) => {
            // modern_request writes `_meta`; build the same body with the token in it.
            let mut body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
            body["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "progressToken": token,
            });
            let name = body["params"]["name"].as_str().unwrap_or_default().to_owned();
            reqwest::Client::new()
                .post(&s.url)
                .bearer_auth(&s.token)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json, text/event-stream")
                .header("MCP-Protocol-Version", "2026-07-28")
                .header("Mcp-Method", method)
                .header("Mcp-Name", name)
                .body(body.to_string())
        }
    }
}

async fn call(s: &Server, tool: &str, arguments: Value) -> Reply {
    request(s, "tools/call", json!({"name": tool, "arguments": arguments})).await
}

/// The text of a tool result (or of a JSON-RPC error).
fn text(r: &Reply) -> String {
    r.body["result"]["content"][0]["text"]
        .as_str()
        .or(r.body["error"]["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn is_error(r: &Reply) -> bool {
    r.body["result"]["isError"] == json!(true)
}

/// disk_usage answers correctly, and within [`PROMPT`].
async fn disk_usage_answers_promptly(s: &Server) {
    let started = Instant::now();
    let r = call(s, "disk_usage", json!({"path": "/"})).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["result"]["structuredContent"]["total_bytes"].as_u64().is_some(), "{:?}", r.body);
    assert!(took < PROMPT, "disk_usage took {took:?} while another plugin misbehaved; the server logged:\n{}", s.log());
}

/// Keeps calling disk_usage while `attack` runs; every call must answer promptly.
async fn meanwhile<T>(s: &Server, attack: impl Future<Output = T>) -> T {
    let mut attack = std::pin::pin!(attack);
    let mut calls = 0;
    loop {
        tokio::select! {
            out = attack.as_mut() => {
                disk_usage_answers_promptly(s).await;
                return out;
            }
            () = disk_usage_answers_promptly(s) => {
                calls += 1;
                assert!(calls < 10_000);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn readyz(s: &Server) -> Value {
    let admin = s.admin.as_ref().expect("started with an admin listener");
    reqwest::get(format!("{admin}/readyz?verbose")).await.unwrap().json().await.unwrap()
}

/// The load error recorded for `plugins/NAME.wasm`.
async fn load_error(s: &Server, name: &str) -> String {
    let file = format!("{name}.wasm");
    let ready = readyz(s).await;
    let failed = ready["failed"].as_array().unwrap();
    failed
        .iter()
        .find(|f| Path::new(f["file"].as_str().unwrap()).file_name().is_some_and(|n| *n == *file))
        .unwrap_or_else(|| panic!("{name} should have failed to load: {ready}"))["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn serving(s: &Server, name: &str) -> bool {
    readyz(s).await["plugins"].as_array().unwrap().iter().any(|p| p["name"] == name)
}

async fn metric(s: &Server, name: &str) -> f64 {
    let admin = s.admin.as_ref().unwrap();
    let text = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// `$defs` chained so each level uses the next twice: 2^depth subschemas in a
/// few hundred bytes.
fn doubling_schema(depth: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for i in 0..depth {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(format!("d{i}"), json!({"anyOf": [next.clone(), {"allOf": [next]}]}));
    }
    defs.insert(format!("d{depth}"), json!({"type": "string", "minLength": 100}));
    json!({"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/d0"}}})
}

#[tokio::test]
async fn argument_validation_runs_under_a_budget() {
    let all: Vec<Value> = (0..60).map(|_| json!({"type": "integer"})).collect();
    let s = server(|p| {
        mimic(p, "exponential", &json!({"tools": [tool("exp", "ok", doubling_schema(30))]}), "");
        let lookaround = json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?=a)a$"}}});
        mimic(p, "lookaround", &json!({"tools": [tool("look", "ok", lookaround)]}), "");
        let backtracks = json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a|a)+$"}}});
        let heavy = json!({"type": "object", "properties": {"xs": {"type": "array", "items": {"allOf": all}}}});
        mimic(
            p,
            "costly",
            &json!({"tools": [tool("regex", "ok", backtracks), tool("heavy", "ok", heavy)]}),
            "[limits]\nmax_argument_bytes = 100000\n",
        );
    });
    // Exponential to check: refused at load, with the reason.
    let e = load_error(&s, "exponential").await;
    assert!(e.contains("too costly to check") && e.contains("subschemas"), "{e}");
    // A pattern that needs backtracking: refused at load.
    let e = load_error(&s, "lookaround").await;
    assert!(e.contains("linear-time"), "{e}");

    // A pattern that backtracks exponentially elsewhere runs in linear time here.
    let mut long = "a".repeat(30_000);
    long.push('!');
    let r = meanwhile(&s, call(&s, "regex", json!({"s": long}))).await;
    assert_eq!(r.body["error"]["code"], -32602, "{:?}", r.body);
    assert!(text(&r).contains("`s`"), "{}", text(&r));

    // Within the load limits, but each of 20,000 items passes through 61
    // subschemas: the check stops at its step budget, concurrently with others.
    let xs = vec![1; 20_000];
    let calls = (0..4).map(|_| call(&s, "heavy", json!({"xs": xs})));
    for r in meanwhile(&s, futures_util::future::join_all(calls)).await {
        assert_eq!(r.body["error"]["code"], -32602, "{:?}", r.body);
        assert!(text(&r).contains("budget"), "{}", text(&r));
    }
    // Small valid arguments still pass; the argument size cap holds.
    let r = call(&s, "heavy", json!({"xs": [1, 2, 3]})).await;
    assert_eq!(text(&r), "ok", "{:?}", r.body);
    let r = call(&s, "heavy", json!({"xs": vec![1; 50_000]})).await;
    assert_eq!(r.body["error"]["code"], -32602, "{:?}", r.body);
    assert!(text(&r).contains("max_argument_bytes"), "{}", text(&r));
}

/// `trivial.wasm` with `n` more core instances of a module holding a linear
/// memory: a component that would take `n` memory slots of the pool per call.
fn with_memories(n: u32) -> Vec<u8> {
    use wasm_encoder::{InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection};
    let mut bytes = std::fs::read(wasm("trivial")).unwrap();
    let modules = wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .filter(|p| matches!(p, Ok(wasmparser::Payload::ModuleSection { .. })))
        .count() as u32;
    let mut memory = MemorySection::new();
    memory.memory(MemoryType { minimum: 1, maximum: Some(1), memory64: false, shared: false, page_size_log2: None });
    let mut module = Module::new();
    module.section(&memory);
    let mut extra = wasm_encoder::Component::new();
    extra.section(&ModuleSection(&module));
    let mut instances = InstanceSection::new();
    for _ in 0..n {
        instances.instantiate(modules, Vec::<(&str, ModuleArg)>::new());
    }
    extra.section(&instances);
    // Sections only: drop the new component's 8-byte header.
    bytes.extend_from_slice(&extra.finish()[8..]);
    bytes
}

#[tokio::test]
async fn one_plugin_cannot_take_the_instance_pool() {
    let s = server(|p| {
        std::fs::write(p.join("memories.wasm"), with_memories(300)).unwrap();
        mimic(
            p,
            "busy",
            &json!({"tools": [tool("nap", "sleep", json!({"type": "object"}))]}),
            "[limits]\nmax_concurrency = 2\n",
        );
    });
    // Hundreds of linear memories: refused at load, naming the limit.
    let e = load_error(&s, "memories").await;
    assert!(e.contains("4 linear memories") && e.contains("exceeds the configured maximum"), "{e}");

    // Two calls of `busy` run at once; the others wait briefly, then hear "busy".
    let naps = (0..6).map(|_| call(&s, "nap", json!({"ms": 2500})));
    let replies = meanwhile(&s, futures_util::future::join_all(naps)).await;
    let awake = replies.iter().filter(|r| text(r) == "awake").count();
    let busy: Vec<&Reply> = replies.iter().filter(|r| text(r).contains("is busy")).collect();
    assert_eq!((awake, busy.len()), (2, 4), "{:?}", replies.iter().map(text).collect::<Vec<_>>());
    assert!(busy.iter().all(|r| is_error(r) && text(r).contains("max_concurrency")));
}

#[tokio::test]
async fn events_are_budgeted_by_bytes_and_never_stall_a_call() {
    let s = server(|p| {
        let flood = json!({"tools": [tool("flood", "progress", json!({"type": "object"})),
                                       tool("spin", "spin", json!({"type": "object"}))]});
        mimic(p, "flood", &flood, "[limits]\ntimeout_ms = 1500\n");
    });
    // 64 MiB of progress text asked for; the client gets about the 1 MiB budget.
    let params = json!({"name": "flood", "arguments": {"n": 4096, "bytes": 16384}, "_progress": "p1"});
    let r = meanwhile(&s, request(&s, "tools/call", params)).await;
    assert_eq!(text(&r), "sent 4096", "{:?}", r.body);
    let progress = r.messages.iter().filter(|m| m["method"] == "notifications/progress").count();
    assert!(progress > 0 && progress < 70, "{progress} progress notifications");
    assert!(r.bytes < 2 << 20, "{} bytes sent for one call", r.bytes);

    // A client that stops reading: the call still ends at its deadline.
    let params = json!({"name": "spin", "arguments": {}, "_progress": "p2"});
    let unread = modern_request_for(&s, "tools/call", params).send();
    let started = Instant::now();
    let _held = tokio::spawn(unread);
    tokio::time::sleep(Duration::from_millis(200)).await;
    loop {
        if metric(&s, "moat_calls_in_flight").await == 0.0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(6), "the call outlived its 1.5 s deadline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    disk_usage_answers_promptly(&s).await;
}

#[tokio::test]
async fn questions_are_capped_per_round_and_per_call() {
    let s = server(|p| {
        let spec = json!({"tools": [tool("many", "ask_many", json!({"type": "object"}))]});
        mimic(p, "asker", &spec, "");
    });
    // One 2026-07-28 round of 1,000 questions: refused inside the call.
    let r = call(&s, "many", json!({"n": 1000})).await;
    assert!(text(&r).contains("1000 questions in one round") && text(&r).contains("at most 16"), "{:?}", r.body);
    disk_usage_answers_promptly(&s).await;
}

/// A 2025-11-25 client that answers roots at once and elicitations after `delay`.
#[derive(Clone)]
struct Answers {
    delay: Duration,
}

impl rmcp::ClientHandler for Answers {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut c =
            rmcp::model::ClientConfig::default().with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25);
        c.capabilities.roots = Some(Default::default());
        c.capabilities.elicitation = Some(Default::default());
        c
    }

    async fn create_elicitation(
        &self,
        _request: rmcp::model::ElicitRequestParams,
        _cx: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        tokio::time::sleep(self.delay).await;
        Ok(rmcp::model::ElicitResult::new(rmcp::model::ElicitationAction::Decline))
    }
}

async fn session_call(s: &Server, delay: Duration, tool: &str, args: Value) -> (String, Duration) {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.url.clone()).auth_header(s.token.clone()),
    );
    let client = Answers { delay }.serve(transport).await.unwrap();
    let started = Instant::now();
    let params = rmcp::model::CallToolRequestParams::new(tool.to_owned())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    let r = client.call_tool(params).await.unwrap();
    let took = started.elapsed();
    let _ = client.cancel().await;
    let text = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
    (text, took)
}

#[tokio::test]
async fn waiting_for_answers_cannot_extend_a_call_forever() {
    let s = server(|p| {
        let spec = json!({"tools": [tool("roots", "ask_roots", json!({"type": "object"})),
                                    tool("form", "elicit", json!({"type": "object"}))]});
        mimic(p, "asker", &spec, "[limits]\ntimeout_ms = 1000\nmax_wall_ms = 4000\n");
    });
    // Auto-answered questions in a loop: capped per call, on the call's deadline.
    let (text, _) = meanwhile(&s, session_call(&s, Duration::ZERO, "roots", json!({"n": 100_000}))).await;
    assert!(text.contains("answered 64, then") && text.contains("at most 64 questions"), "{text}");
    // A person answering a form after 1.5 s: the 1 s deadline waits for them.
    let (text, _) = session_call(&s, Duration::from_millis(1500), "form", json!({})).await;
    assert_eq!(text, "answered");
    // One who never answers: the 4 s wall-clock ceiling ends the call.
    let (text, took) = meanwhile(&s, session_call(&s, Duration::from_secs(60), "form", json!({}))).await;
    assert!(text.contains("timed out after 4000 ms"), "{text}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[tokio::test]
async fn output_caps_count_every_item_on_every_path() {
    let s = server(|p| {
        let spec = json!({
            "tools": [tool("items", "items", json!({"type": "object"}))],
            "prompts": [{"name": "huge", "arguments": [{"name": "n"}, {"name": "bytes"}]}],
        });
        mimic(p, "shapes", &spec, "");
    });
    // 100,000 empty items: no payload, but 100,000 items to encode and send.
    let r = meanwhile(&s, call(&s, "items", json!({"n": 100_000}))).await;
    assert!(is_error(&r) && text(&r).contains("exceeds the limit of 1048576 bytes"), "{:?}", r.body);
    let r = call(&s, "items", json!({"n": 3})).await;
    assert_eq!(r.body["result"]["content"].as_array().map(Vec::len), Some(3), "{:?}", r.body);
    // Prompts are capped too.
    let r = request(&s, "prompts/get", json!({"name": "huge", "arguments": {"n": "100", "bytes": "20000"}})).await;
    assert!(text(&r).contains("exceeds the limit"), "{:?}", r.body);
    let r = request(&s, "prompts/get", json!({"name": "huge", "arguments": {"n": "2", "bytes": "10"}})).await;
    assert_eq!(r.body["result"]["messages"].as_array().map(Vec::len), Some(2), "{:?}", r.body);
}

#[tokio::test]
async fn catalogues_are_capped_and_listed_page_by_page() {
    let s = server(|p| {
        mimic(p, "hundred_k", &json!({"generate_tools": {"count": 100_000}}), "");
        mimic(p, "wordy", &json!({"generate_tools": {"count": 1, "description_bytes": 10 << 20}}), "");
        mimic(p, "many", &json!({"generate_tools": {"count": 250}}), "");
    });
    let e = load_error(&s, "hundred_k").await;
    assert!(e.contains("declares 100000 tools; the limit is 256"), "{e}");
    let e = load_error(&s, "wordy").await;
    assert!(e.contains("description is 10485760 bytes; the limit is 8192"), "{e}");
    // 250 tools (within the limit) come in pages of 100.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = request(&s, "tools/list", params).await;
        let tools = r.body["result"]["tools"].as_array().unwrap();
        assert!(tools.len() <= 100);
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match r.body["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(names.iter().filter(|n| n.starts_with("gen_")).count(), 250);
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no tool listed twice");
    disk_usage_answers_promptly(&s).await;
}

#[tokio::test]
async fn names_uris_and_texts_are_validated_for_everything() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("esc_prompt", json!({"prompts": [{"name": "p\u{1b}[31m"}]}), "prompt name"),
        ("nul_uri", json!({"resources": [{"uri": "a://x\u{0}y", "name": "x"}]}), "cannot hold"),
        ("empty_template", json!({"templates": [{"uri_template": "", "name": "t"}]}), "resource template"),
        ("long_prompt", json!({"prompts": [{"name": "p".repeat(10_000)}]}), "prompt name"),
        ("zero_width", json!({"resources": [{"uri": "a://z", "name": "dis\u{200B}k"}]}), "U+200B"),
        ("bidi_title", json!({"tools": [{"name": "t", "title": "ok\u{202E}txt.exe"}]}), "U+202E"),
        ("look_alike", json!({"tools": [{"name": "Disk_Usage"}]}), "already provided"),
        ("bad_operator", json!({"templates": [{"uri_template": "a://{?q}", "name": "t"}]}), "not supported"),
    ];
    let s = server(|p| {
        for (name, spec, _) in &cases {
            mimic(p, name, spec, "");
        }
    });
    for (name, _, needle) in &cases {
        let e = load_error(&s, name).await;
        assert!(e.contains(needle), "{name}: {e}");
        assert!(!e.contains('\u{1b}') && !e.contains('\u{0}'), "{name}: the error shows the text escaped: {e:?}");
    }
    disk_usage_answers_promptly(&s).await;
}

#[tokio::test]
async fn a_template_cannot_answer_another_plugins_resources() {
    let s = server(|_| {});
    let read = async |uri: &str| request(&s, "resources/read", json!({"uri": uri})).await;
    let before = read("test://template/7/data").await;
    assert!(before.body["result"]["contents"][0]["text"].is_string(), "{:?}", before.body);
    // A catch-all template dropped in later overlaps everything's template.
    mimic(&s.plugins(), "catchall", &json!({"templates": [{"uri_template": "{+all}", "name": "all"}]}), "");
    let deadline = Instant::now() + Duration::from_secs(20);
    while readyz(&s).await["failed"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the catch-all should have been refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = load_error(&s, "catchall").await;
    assert!(e.contains("resource template `{+all}` overlaps") && e.contains("refusing"), "{e}");
    assert!(!serving(&s, "catchall").await);
    assert_eq!(read("test://template/7/data").await.body, before.body, "still answered by its own plugin");
    // A URI of 500 KB is refused before any template sees it.
    let huge = format!("test://template/{}/data", "7".repeat(500 << 10));
    let r = meanwhile(&s, read(&huge)).await;
    assert_eq!(r.body["error"]["code"], -32602, "{:?}", r.body);
}

#[tokio::test]
async fn plugin_log_lines_are_capped_and_escaped() {
    let forged = "x\n2026-12-01T00:00:00.000000Z  INFO moat::audit: tool call subject=\"admin\" outcome=\"ok\"";
    let s = server(|p| {
        mimic(p, "chatty", &json!({"tools": [tool("chat", "log", json!({"type": "object"}))]}), "");
    });
    let r = meanwhile(&s, call(&s, "chat", json!({"n": 50_000, "text": forged}))).await;
    assert_eq!(text(&r), "logged 50000", "{:?}", r.body);
    let log = s.log();
    let lines = log.lines().filter(|l| l.contains("plugin log") && !l.contains("left out")).count();
    assert!((1..=50).contains(&lines), "{lines} plugin lines in the host log");
    assert!(log.contains("plugin log lines left out of the host log") && log.contains("49950"), "{log}");
    assert!(
        !log.lines().any(|l| l.contains("INFO moat::audit") && !l.contains("plugin log")),
        "a plugin forged a log line:\n{log}"
    );
}

#[tokio::test]
async fn a_slow_catalogue_neither_blocks_start_nor_other_plugins() {
    let started = Instant::now();
    let s = server(|p| {
        mimic(
            p,
            "slow",
            &json!({"list_sleep_ms": 60_000, "tools": [tool("slow", "ok", json!({"type": "object"}))]}),
            "",
        );
    });
    // The catalogue read has its own 2 s deadline; plugins load concurrently.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "start took {took:?}");
    let e = load_error(&s, "slow").await;
    assert!(e.contains("timed out after 2000 ms"), "{e}");
    disk_usage_answers_promptly(&s).await;
}

#[tokio::test]
async fn the_listener_opens_before_the_plugins_are_loaded() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    // A catalogue read of 1.5 s: within its deadline, so the plugin loads.
    mimic(
        &plugins,
        "leisurely",
        &json!({"list_sleep_ms": 1500, "tools": [tool("late", "ok", json!({"type": "object"}))]}),
        "",
    );
    let child = crate::common::moat(&dir.path().join("cache"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(&plugins)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = crate::common::Stopped(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines().map_while(Result::ok);
    let listening = lines.find(|l| l.starts_with("moat: listening on ")).expect("the listening line");
    let base = listening.trim_start_matches("moat: listening on ").split(';').next().unwrap().to_owned();
    let early = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(early.status(), 503, "still loading");
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200, "alive meanwhile");
    let serving = lines.find(|l| l.starts_with("moat: serving MCP at ")).expect("the serving line");
    assert!(serving.contains("(1 plugins"), "{serving}");
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn structured_results_must_match_the_output_schema() {
    let output = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    // Recursion through a combinator: looking for the error the usual way would
    // try 2^40 paths for a value nested 40 deep.
    let branching = json!({"type": "object", "$ref": "#/$defs/n", "$defs": {"n": {"anyOf": [
        {"properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["x"]},
        {"properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["y"]}]}}});
    let s = server(|p| {
        let spec = json!({"tools": [{"name": "shape", "do": "structured", "output": output},
                                    {"name": "deep", "do": "structured", "output": branching}]});
        mimic(p, "shaped", &spec, "");
    });
    let mut deep = json!({});
    for _ in 0..40 {
        deep = json!({"x": 1, "a": deep});
    }
    let r = meanwhile(&s, call(&s, "deep", json!({"value": deep}))).await;
    assert!(is_error(&r) && text(&r).contains("output schema"), "{:?}", r.body);
    let r = call(&s, "shape", json!({"value": {"n": 3}})).await;
    assert_eq!(r.body["result"]["structuredContent"], json!({"n": 3}), "{:?}", r.body);
    let r = call(&s, "shape", json!({"value": [1, 2]})).await;
    assert!(is_error(&r) && text(&r).contains("must be a JSON object"), "{:?}", r.body);
    let r = call(&s, "shape", json!({"value": {"n": "three"}})).await;
    assert!(is_error(&r) && text(&r).contains("`n`") && text(&r).contains("output schema"), "{:?}", r.body);
    let r = call(&s, "shape", json!({"value": {}})).await;
    assert!(is_error(&r) && text(&r).contains("output schema"), "{:?}", r.body);
}

#[tokio::test]
async fn a_path_swapped_for_a_link_is_never_followed_out_of_the_grant() {
    // `sub` flips between a directory and a link to /proc (another filesystem:
    // its statvfs says 0 bytes) while the plugin asks for its stats: a check
    // by name followed by a use by name would sometimes stat /proc.
    let s = server(|p| {
        std::fs::copy(wasm("hostile"), p.join("hostile.wasm")).unwrap();
        let data = p.parent().unwrap().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(
            p.join("hostile.toml"),
            format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"rw\" }}]\n", data.display()),
        )
        .unwrap();
    });
    let data = s.dir.path().join("data");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, data) = (stop.clone(), data.clone());
        std::thread::spawn(move || {
            let (dir, link, tmp) = (data.join("sub"), data.join(".sub-link"), data.join(".sub-dir"));
            let mut flips = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Swap in a link by rename, then a directory again.
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink("/proc", &link).unwrap();
                std::fs::rename(&dir, &tmp).unwrap();
                std::fs::rename(&link, &dir).unwrap();
                std::fs::rename(&dir, &link).unwrap();
                std::fs::rename(&tmp, &dir).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let (mut inside, mut refused) = (0, 0);
    let calls = async {
        for _ in 0..300 {
            let r = call(&s, "stat", json!({"path": "/data/sub"})).await;
            match r.body["result"]["structuredContent"]["total_bytes"].as_u64() {
                Some(0) => panic!("the plugin was given the statistics of /proc: {:?}", r.body),
                Some(_) => inside += 1,
                None => {
                    assert!(is_error(&r), "{:?}", r.body);
                    refused += 1;
                }
            }
        }
    };
    meanwhile(&s, calls).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips > 10 && inside > 0, "flips {flips}, answered inside {inside}, refused {refused}");
}

#[tokio::test]
async fn a_session_holds_a_bounded_set_of_subscriptions() {
    use rmcp::ServiceExt;
    use rmcp::model::SubscribeRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    // A template matches endless URIs; each subscription is kept per session.
    let s = server(|_| {});
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.url.clone()).auth_header(s.token.clone()),
    );
    let client = Answers { delay: Duration::ZERO }.serve(transport).await.unwrap();
    #[allow(deprecated)]
    for i in 0..1024 {
        client.peer().subscribe(SubscribeRequestParams::new(format!("test://template/{i}/data"))).await.unwrap();
    }
    #[allow(deprecated)]
    let again = client.peer().subscribe(SubscribeRequestParams::new("test://template/7/data")).await;
    assert!(again.is_ok(), "a URI already held may be subscribed again: {again:?}");
    #[allow(deprecated)]
    let more = client.peer().subscribe(SubscribeRequestParams::new("test://template/1024/data")).await;
    let e = format!("{:?}", more.unwrap_err());
    assert!(e.contains("at most 1024 resource subscriptions"), "{e}");
    let _ = client.cancel().await;
    disk_usage_answers_promptly(&s).await;
}
