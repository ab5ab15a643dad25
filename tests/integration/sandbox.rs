//! Hostile plugins: every escape attempt is refused, every runaway call is ended
//! with a clear error, and the next call still works.

use std::path::Path;

use moat::config::DirMode;
use moat::runtime::types::ToolOutput;
use moat::runtime::{CallContext, CallError, LoadedPlugin};
use serde_json::{Value, json};

use crate::common::*;

async fn call(p: &LoadedPlugin, tool: &str, args: Value) -> Result<ToolOutput, CallError> {
    runtime().call_tool(p, tool, &args, &CallContext::default()).await
}

fn text(r: Result<ToolOutput, CallError>) -> String {
    match r {
        Ok(out) => out
            .content
            .iter()
            .map(|c| match c {
                moat::runtime::types::Content::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect(),
        Err(e) => panic!("expected success, got: {e}"),
    }
}

fn failed(r: Result<ToolOutput, CallError>) -> String {
    match r {
        Err(CallError::Failed(m)) => m,
        other => panic!("expected a tool failure, got {other:?}"),
    }
}

/// `root/granted` (granted as /data), `root/secret.txt` outside it, and a symlink
/// `granted/link` pointing at the secret.
struct Tree {
    root: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("granted")).unwrap();
        std::fs::write(root.path().join("granted/inside.txt"), "inside").unwrap();
        std::fs::write(root.path().join("secret.txt"), "TOP-SECRET").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.txt"), root.path().join("granted/link")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.path().join("granted/rel_link")).unwrap();
        Tree { root }
    }

    fn granted(&self) -> std::path::PathBuf {
        self.root.path().join("granted")
    }

    async fn plugin(&self, mode: DirMode) -> LoadedPlugin {
        let mut settings = limits(|_| {});
        settings.dirs.push(grant(&self.granted(), "/data", mode));
        load("hostile", settings).await
    }
}

#[tokio::test]
async fn granted_files_are_readable() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Ro).await;
    assert_eq!(text(call(&p, "read_file", json!({"path": "/data/inside.txt"})).await), "inside");
}

#[tokio::test]
async fn dotdot_cannot_leave_the_grant() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Ro).await;
    for path in ["/data/../secret.txt", "/data/../../etc/passwd", "../secret.txt", "/data/./../secret.txt"] {
        let msg = failed(call(&p, "read_file", json!({ "path": path })).await);
        assert!(!msg.contains("TOP-SECRET"), "{path}: {msg}");
    }
}

#[tokio::test]
async fn absolute_paths_outside_grants_do_not_exist() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Ro).await;
    for path in ["/etc/passwd", "/proc/self/environ", t.root.path().join("secret.txt").to_str().unwrap()] {
        failed(call(&p, "read_file", json!({ "path": path })).await);
    }
    failed(call(&p, "list_dir", json!({"path": "/"})).await);
}

#[tokio::test]
async fn symlinks_pointing_out_are_refused() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Ro).await;
    for path in ["/data/link", "/data/rel_link"] {
        let msg = failed(call(&p, "read_file", json!({ "path": path })).await);
        assert!(!msg.contains("TOP-SECRET"), "{msg}");
    }
}

#[tokio::test]
async fn read_only_grants_cannot_be_written() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Ro).await;
    failed(call(&p, "write_file", json!({"path": "/data/new.txt", "content": "x"})).await);
    failed(call(&p, "write_file", json!({"path": "/data/inside.txt", "content": "x"})).await);
    assert!(!t.granted().join("new.txt").exists());
    assert_eq!(std::fs::read_to_string(t.granted().join("inside.txt")).unwrap(), "inside");
}

#[tokio::test]
async fn read_write_grants_can_be_written() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Rw).await;
    assert_eq!(text(call(&p, "write_file", json!({"path": "/data/new.txt", "content": "hi"})).await), "written");
    assert_eq!(std::fs::read_to_string(t.granted().join("new.txt")).unwrap(), "hi");
    // Still no way out through a link.
    failed(call(&p, "write_file", json!({"path": "/data/link", "content": "x"})).await);
    assert_eq!(std::fs::read_to_string(t.root.path().join("secret.txt")).unwrap(), "TOP-SECRET");
}

#[tokio::test]
async fn volume_stats_only_inside_grants() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Ro).await;
    let ok = call(&p, "stat", json!({"path": "/data"})).await.expect("stat inside the grant");
    let (total, _, _) = statvfs(&t.granted());
    assert_eq!(ok.structured.unwrap()["total_bytes"], json!(total));
    for path in ["/", "/etc", "/data/..", "/data/../..", "/data/link", "/data/rel_link", "data", "/datax"] {
        let msg = failed(call(&p, "stat", json!({ "path": path })).await);
        assert!(msg.contains("not granted"), "{path}: {msg}");
    }
    let msg = failed(call(&p, "stat", json!({"path": "/data/missing"})).await);
    assert!(msg.contains("not found"), "{msg}");
}

#[tokio::test]
async fn nothing_is_visible_without_grants() {
    let p = load("hostile", limits(|_| {})).await;
    assert_eq!(text(call(&p, "env", json!({"name": "PATH"})).await), "<unset>");
    assert_eq!(text(call(&p, "env", json!({"name": "HOME"})).await), "<unset>");
    assert_eq!(text(call(&p, "env_names", json!({})).await), "");
    failed(call(&p, "read_file", json!({"path": "/etc/hostname"})).await);
    failed(call(&p, "list_dir", json!({"path": "."})).await);
    let msg = failed(call(&p, "stat", json!({"path": "/"})).await);
    assert!(msg.contains("not granted"), "{msg}");
}

#[tokio::test]
async fn no_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let p = load("hostile", limits(|_| {})).await;
    let msg = failed(call(&p, "connect", json!({ "name": addr })).await);
    assert!(msg.contains("connect failed"), "{msg}");
    assert!(listener.accept().is_err(), "the plugin reached the listener");
}

#[tokio::test]
async fn infinite_loop_ends_at_the_deadline() {
    let p = load("hostile", limits(|l| l.timeout_ms = 300)).await;
    let started = std::time::Instant::now();
    let err = call(&p, "spin", json!({})).await.unwrap_err();
    assert_eq!(err, CallError::Timeout(300));
    assert_eq!(err.to_string(), "timed out after 300 ms");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(text(call(&p, "ok", json!({})).await), "fine");
}

#[tokio::test]
async fn blocking_in_the_host_ends_at_the_deadline() {
    let p = load("hostile", limits(|l| l.timeout_ms = 200)).await;
    assert_eq!(call(&p, "sleep", json!({"n": 60_000})).await.unwrap_err(), CallError::Timeout(200));
    assert_eq!(text(call(&p, "sleep", json!({"n": 1})).await), "awake");
}

#[tokio::test]
async fn memory_cap_is_enforced() {
    let p = load("hostile", limits(|l| l.memory_bytes = 32 << 20)).await;
    match call(&p, "alloc", json!({"n": 64})).await {
        Err(CallError::MemoryLimit(m)) => assert!(m.contains("memory limit of 32 MiB"), "{m}"),
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    assert_eq!(text(call(&p, "alloc", json!({"n": 4})).await), "allocated 4 MiB");
}

#[tokio::test]
async fn traps_and_panics_end_one_call_only() {
    let p = load("hostile", limits(|_| {})).await;
    match call(&p, "trap", json!({})).await {
        Err(CallError::Crashed(m)) => assert!(m.contains("unreachable"), "{m}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(text(call(&p, "ok", json!({})).await), "fine");
    match call(&p, "panic", json!({"message": "boom at line 7"})).await {
        Err(CallError::Crashed(m)) => assert!(m.contains("panicked") && m.contains("boom at line 7"), "{m}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(text(call(&p, "ok", json!({})).await), "fine");
    // Runaway recursion ends the call whichever stack runs out first: the
    // engine's (a stack-overflow trap) or the plugin's own shadow stack in linear
    // memory (placed first, so overflowing it leaves memory: an out-of-bounds trap
    // rather than corrupted data).
    match call(&p, "recurse", json!({})).await {
        Err(CallError::Crashed(m)) => assert!(m.contains("stack overflow"), "{m}"),
        other => panic!("expected a stack overflow, got {other:?}"),
    }
    assert_eq!(text(call(&p, "ok", json!({})).await), "fine");
}

#[tokio::test]
async fn a_flood_on_stderr_does_not_kill_the_plugin() {
    let p = load("hostile", limits(|_| {})).await;
    assert_eq!(text(call(&p, "shout", json!({"n": 1 << 20})).await), "shouted");
}

#[tokio::test]
async fn output_cap_is_enforced() {
    let p = load("hostile", limits(|l| l.max_output_bytes = 1000)).await;
    let err = call(&p, "big_output", json!({"n": 5000})).await.unwrap_err();
    // The text plus the cost of one item on the wire.
    assert_eq!(err, CallError::OutputTooLarge { size: 5000 + moat::runtime::types::ITEM_OVERHEAD, limit: 1000 });
    assert!(err.to_string().contains("exceeds the limit of 1000 bytes"));
    assert_eq!(text(call(&p, "big_output", json!({"n": 10})).await).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_gets_a_fresh_instance() {
    let p = std::sync::Arc::new(load("hostile", limits(|_| {})).await);
    for _ in 0..3 {
        assert_eq!(text(call(&p, "counter", json!({})).await), "1");
    }
    // Concurrent calls: each has its own instance, so each counts to 1.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { call(&p, "counter", json!({})).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(text(t.await.unwrap()), "1");
    }
}

#[tokio::test]
async fn bad_arguments_are_refused_before_the_plugin_runs() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Rw).await;
    let cases = [
        (json!({"path": "/data/m1", "count": -1}), "count"),
        (json!({"path": "/data/m2", "count": "three"}), "count"),
        (json!({"path": 5, "count": 1}), "path"),
        (json!({"count": 1}), "path"),
    ];
    for (args, field) in cases {
        match call(&p, "touch", args.clone()).await {
            Err(CallError::InvalidArguments(m)) => assert!(m.contains(field), "{args}: {m}"),
            other => panic!("{args}: expected invalid arguments, got {other:?}"),
        }
    }
    let written: Vec<_> = std::fs::read_dir(t.granted()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!written.iter().any(|n| n.to_string_lossy().starts_with('m')), "the plugin ran: {written:?}");
    // The same tool with good arguments does run.
    assert_eq!(text(call(&p, "touch", json!({"path": "/data/m3", "count": 3})).await), "touched");
    assert!(Path::new(&t.granted().join("m3")).exists());
    assert!(matches!(call(&p, "no_such_tool", json!({})).await, Err(CallError::NotFound(_))));
}

#[tokio::test]
async fn plugin_logs_reach_the_caller() {
    let t = Tree::new();
    let p = t.plugin(DirMode::Rw).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(moat::runtime::EVENT_QUEUE);
    let ctx = CallContext { events: Some(tx), ..Default::default() };
    runtime().call_tool(&p, "touch", &json!({"path": "/data/x", "count": 1}), &ctx).await.unwrap();
    match rx.try_recv().expect("a log event") {
        moat::runtime::types::PluginEvent::Log { message, .. } => assert_eq!(message, "touching /data/x"),
        other => panic!("unexpected event {other:?}"),
    }
}
