//! disk_usage and cleanup, as shipped, run in the sandbox.

use std::time::{Duration, SystemTime};

use moat::config::DirMode;
use moat::runtime::types::{Content, ResourceBody, Role};
use moat::runtime::{CallContext, CallError};
use serde_json::json;

use crate::common::*;

fn gib(bytes: u64) -> f64 {
    (bytes as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0
}

#[tokio::test]
async fn disk_usage_matches_statvfs() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = limits(|_| {});
    settings.dirs.push(grant(dir.path(), "/vol", DirMode::Ro));
    let p = load("disk_usage", settings).await;
    let (_, free_before, avail_before) = statvfs(dir.path());
    let out = runtime().call_tool(&p, "disk_usage", &json!({"path": "/vol"}), &CallContext::default()).await.unwrap();
    let (total, free_after, avail_after) = statvfs(dir.path());
    let s = out.structured.expect("structured content");
    assert_eq!(s["path"], "/vol");
    assert_eq!(s["total_bytes"], json!(total));
    let used = s["used_bytes"].as_u64().unwrap();
    let free = s["free_bytes"].as_u64().unwrap();
    // The filesystem is live: the plugin's numbers lie between two host readings.
    let between = |v: u64, a: u64, b: u64| a.min(b) <= v && v <= a.max(b);
    assert!(between(free, avail_before, avail_after), "free {free} vs {avail_before}..{avail_after}");
    assert!(between(used, total - free_before, total - free_after), "used {used}");
    assert_eq!(s["total_gb"], json!(gib(total)));
    assert_eq!(s["used_gb"], json!(gib(used)));
    assert_eq!(s["free_gb"], json!(gib(free)));
    // The text content carries the same JSON for clients without structured output.
    let Content::Text(t) = &out.content[0] else { panic!("expected text") };
    assert_eq!(serde_json::from_str::<serde_json::Value>(t).unwrap(), s);
    assert!(p.tool("disk_usage").unwrap().output_schema.is_some());
    assert!(p.tool("disk_usage").unwrap().annotations.read_only);
}

#[tokio::test]
async fn disk_usage_defaults_to_root_and_needs_a_grant() {
    let p = load("disk_usage", limits(|_| {})).await;
    match runtime().call_tool(&p, "disk_usage", &json!({}), &CallContext::default()).await {
        Err(CallError::Failed(m)) => assert!(m.contains("not granted"), "{m}"),
        other => panic!("expected refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn disk_usage_resource_and_prompt() {
    let p = load("disk_usage", limits(|_| {})).await;
    assert_eq!(p.resources[0].uri, "config://limits");
    let r = runtime().read_resource(&p, "config://limits", &CallContext::default()).await.unwrap();
    let ResourceBody::Text(t) = &r[0].body else { panic!("expected text") };
    let limits: serde_json::Value = serde_json::from_str(t).unwrap();
    assert_eq!(limits["critical_used_percent"], 90);
    assert_eq!(r[0].mime_type.as_deref(), Some("application/json"));
    assert!(matches!(
        runtime().read_resource(&p, "config://nope", &CallContext::default()).await,
        Err(CallError::NotFound(_))
    ));

    let prompt = &p.prompts[0];
    assert_eq!(
        (prompt.name.as_str(), prompt.arguments[0].name.as_str(), prompt.arguments[0].required),
        ("triage", "host", true)
    );
    let got =
        runtime().get_prompt(&p, "triage", &[("host".into(), "web1".into())], &CallContext::default()).await.unwrap();
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].role, Role::User);
    assert_eq!(
        got.messages[0].content,
        Content::Text("Check web1 for disk pressure. Summarise the risk in 3 lines.".into())
    );
    match runtime().get_prompt(&p, "triage", &[], &CallContext::default()).await {
        Err(CallError::InvalidArguments(m)) => assert!(m.contains("host"), "{m}"),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

fn age(path: &std::path::Path, days: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400)).unwrap();
}

#[tokio::test]
async fn cleanup_removes_only_old_regular_files() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::write(work.join("old.log"), vec![0u8; 1000]).unwrap();
    std::fs::write(work.join("sub/old2.log"), vec![0u8; 24]).unwrap();
    std::fs::write(work.join("new.log"), "new").unwrap();
    std::fs::write(root.path().join("outside.log"), "keep").unwrap();
    age(&work.join("old.log"), 10);
    age(&work.join("sub/old2.log"), 40);
    age(&root.path().join("outside.log"), 100);
    std::os::unix::fs::symlink(root.path().join("outside.log"), work.join("link.log")).unwrap();

    let mut settings = limits(|_| {});
    settings.dirs.push(grant(&work, "/work", DirMode::Rw));
    let p = load("cleanup", settings).await;
    assert!(p.tool("cleanup").unwrap().annotations.destructive);
    let ctx = CallContext::default();

    // Dry run is the default: it reports and removes nothing.
    let out = runtime().call_tool(&p, "cleanup", &json!({"path": "/work", "older_than_days": 7}), &ctx).await.unwrap();
    let s = out.structured.unwrap();
    assert_eq!(s["removed"], json!(["/work/old.log", "/work/sub/old2.log"]));
    assert_eq!(s["freed_bytes"], 1024);
    assert_eq!(s["dry_run"], true);
    assert!(work.join("old.log").exists());

    let args = json!({"path": "/work", "older_than_days": 30, "dry_run": false});
    let s = runtime().call_tool(&p, "cleanup", &args, &ctx).await.unwrap().structured.unwrap();
    assert_eq!(s["removed"], json!(["/work/sub/old2.log"]));
    assert!(!work.join("sub/old2.log").exists());
    assert!(work.join("old.log").exists() && work.join("new.log").exists());
    assert_eq!(std::fs::read_to_string(root.path().join("outside.log")).unwrap(), "keep");

    match runtime().call_tool(&p, "cleanup", &json!({"path": "/work", "older_than_days": -3}), &ctx).await {
        Err(CallError::InvalidArguments(m)) => assert!(m.contains("older_than_days"), "{m}"),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
    match runtime()
        .call_tool(&p, "cleanup", &json!({"path": "/etc", "older_than_days": 1, "dry_run": false}), &ctx)
        .await
    {
        Err(CallError::Failed(m)) => assert!(m.contains("/etc"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn cleanup_cannot_delete_through_a_read_only_grant() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("old.log"), "x").unwrap();
    age(&work.path().join("old.log"), 10);
    let mut settings = limits(|_| {});
    settings.dirs.push(grant(work.path(), "/work", DirMode::Ro));
    let p = load("cleanup", settings).await;
    let args = json!({"path": "/work", "older_than_days": 1, "dry_run": false});
    match runtime().call_tool(&p, "cleanup", &args, &CallContext::default()).await {
        Err(CallError::Failed(m)) => assert!(m.contains("cannot remove"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(work.path().join("old.log").exists());
}
