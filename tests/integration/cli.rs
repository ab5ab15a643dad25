//! The `moat` command line: call, inspect and check, on real components.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

#[test]
fn call_disk_usage_on_root_equals_statvfs() {
    let home = tempfile::tempdir().unwrap();
    let (_, _, avail_before) = statvfs(Path::new("/"));
    let out = moat(home.path())
        .args(["call"])
        .arg(wasm("disk_usage"))
        .args(["disk_usage", r#"{"path": "/"}"#, "--dir", "/:/:ro"])
        .output()
        .unwrap();
    let (total, _, avail_after) = statvfs(Path::new("/"));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["isError"], false);
    let s = &v["structuredContent"];
    assert_eq!(s["total_bytes"].as_u64(), Some(total));
    let free = s["free_bytes"].as_u64().unwrap();
    assert!(avail_before.min(avail_after) <= free && free <= avail_before.max(avail_after));
    assert_eq!(v["content"][0]["type"], "text");
}

#[test]
fn call_reports_tool_errors_on_stderr_with_failure_exit() {
    let home = tempfile::tempdir().unwrap();
    let out = moat(home.path())
        .arg("call")
        .arg(wasm("hostile"))
        .args(["spin", "{}", "--timeout-ms", "200"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("timed out after 200 ms"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let out = moat(home.path())
        .arg("call")
        .arg(wasm("hostile"))
        .args(["touch", r#"{"path": 1, "count": 1}"#])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("`path`"), "{}", stderr(&out));
}

#[test]
fn call_passes_only_named_env_vars() {
    let home = tempfile::tempdir().unwrap();
    let run = |name: &str, grant: Option<&str>| {
        let mut c = moat(home.path());
        c.arg("call").arg(wasm("hostile")).args(["env", &format!(r#"{{"name": "{name}"}}"#)]);
        if let Some(g) = grant {
            c.args(["--env", g]);
        }
        let out = c.env("MOAT_TEST_GRANTED", "visible").env("MOAT_TEST_HIDDEN", "hidden").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["content"][0]["text"].as_str().unwrap().to_owned()
    };
    assert_eq!(run("MOAT_TEST_GRANTED", Some("MOAT_TEST_GRANTED")), "visible");
    assert_eq!(run("MOAT_TEST_HIDDEN", Some("MOAT_TEST_GRANTED")), "<unset>");
    assert_eq!(run("MOAT_TEST_GRANTED", None), "<unset>");
}

/// A plugin built against WIT 0.1.0 (before the `client` import) still loads and runs.
#[test]
fn plugins_built_against_wit_0_1_0_still_load() {
    let home = tempfile::tempdir().unwrap();
    let out = moat(home.path()).arg("inspect").arg(wasm("trivial")).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["wit"], "moat:plugin@0.1.0");
    let out = moat(home.path()).arg("call").arg(wasm("trivial")).arg("noop").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn inspect_describes_the_plugin() {
    let home = tempfile::tempdir().unwrap();
    let out = moat(home.path()).arg("inspect").arg(wasm("disk_usage")).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["wit"], "moat:plugin@0.1.2");
    let tool = &v["tools"][0];
    assert_eq!(tool["name"], "disk_usage");
    assert_eq!(tool["annotations"]["readOnly"], true);
    assert!(tool["description"].as_str().unwrap().contains("filesystem"));
    assert_eq!(tool["inputSchema"]["type"], "object");
    assert!(tool["outputSchema"]["properties"]["free_gb"].is_object());
    assert_eq!(v["resources"][0]["uri"], "config://limits");
    assert_eq!(v["prompts"][0]["name"], "triage");
    let imports: Vec<&str> = v["imports"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(imports.iter().any(|i| i.starts_with("moat:plugin/volume-stats@0.1")), "{imports:?}");
    assert!(!imports.iter().any(|i| i.starts_with("wasi:sockets") || i.starts_with("wasi:http")), "{imports:?}");

    let out = moat(home.path()).arg("inspect").arg(wasm("disk_usage")).output().unwrap();
    assert!(stdout(&out).contains("disk_usage — Disk usage  [read-only, idempotent]"), "{}", stdout(&out));
}

#[test]
fn check_names_each_bad_file_and_loads_the_rest() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::copy(wasm("disk_usage"), p.join("disk_usage.wasm")).unwrap();
    std::fs::copy(wasm("cleanup"), p.join("cleanup.wasm")).unwrap();
    std::fs::copy(wasm("clash"), p.join("e_clash.wasm")).unwrap();
    std::fs::copy(wasm("leaky"), p.join("leaky.wasm")).unwrap();
    std::fs::copy(wasm("wrong_world"), p.join("command.wasm")).unwrap();
    std::fs::write(p.join("notes.wasm"), "this is not wasm").unwrap();
    std::fs::write(p.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let good = std::fs::read(wasm("disk_usage")).unwrap();
    std::fs::write(p.join("corrupt.wasm"), &good[..good.len() / 2]).unwrap();
    std::fs::write(p.join("cleanup.toml"), "[grants]\ndirs = [{ host = \"/definitely/not/here\" }]\n").unwrap();

    let out = moat(home.path()).arg("check").arg("--plugins").arg(p).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |file: &str| {
        text.lines()
            .find(|l| l.contains(&format!("/{file}")))
            .unwrap_or_else(|| panic!("no line for {file}:\n{text}"))
            .to_owned()
    };
    assert!(line("disk_usage.wasm").starts_with("ok "), "{text}");
    let clash = line("e_clash.wasm");
    assert!(
        clash.starts_with("error") && clash.contains("tool `disk_usage`") && clash.contains("disk_usage.wasm"),
        "{clash}"
    );
    assert!(line("leaky.wasm").contains("private key"), "{text}");
    assert!(
        line("command.wasm").contains("not a moat plugin") && line("command.wasm").contains("wasi:cli/run"),
        "{text}"
    );
    assert!(line("notes.wasm").contains("magic bytes"), "{text}");
    assert!(line("core.wasm").contains("core WebAssembly module"), "{text}");
    assert!(line("corrupt.wasm").starts_with("error"), "{text}");
    assert!(line("cleanup.wasm").contains("/definitely/not/here"), "{text}");
    assert!(stderr(&out).contains("7 of 8 plugins failed"), "{}", stderr(&out));

    // Fix the sidecar and drop the bad files: check passes.
    for f in ["e_clash", "leaky", "command", "notes", "core", "corrupt"] {
        std::fs::remove_file(p.join(format!("{f}.wasm"))).unwrap();
    }
    std::fs::write(
        p.join("cleanup.toml"),
        format!("[grants]\ndirs = [{{ host = \"{}\", mode = \"rw\" }}]\n", p.display()),
    )
    .unwrap();
    let out = moat(home.path()).arg("check").arg("--plugins").arg(p).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn check_rejects_a_bad_config() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("moat.toml");
    std::fs::write(&cfg, "[plugins]\ndir = \"p\"\nwatch = \"sometimes\"\n").unwrap();
    let out = moat(home.path()).arg("check").arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("watch"), "{}", stderr(&out));
}

#[test]
fn check_warns_about_wildcard_grants_and_unset_secrets_and_refuses_bad_ones() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::copy(wasm("http_get"), p.join("http_get.wasm")).unwrap();
    std::fs::write(
        p.join("http_get.toml"),
        "[grants]\nhttp = [\"https://*\", \"https://api.example.com\"]\n[[grants.http_headers]]\n\
         origin = \"https://api.example.com\"\nheader = \"X-Api-Key\"\nvalue_env = \"MOAT_TEST_UNSET_SECRET\"\n",
    )
    .unwrap();
    let out =
        moat(home.path()).arg("check").arg("--plugins").arg(p).env_remove("MOAT_TEST_UNSET_SECRET").output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "warnings do not fail the check: {text}");
    assert!(
        text.lines().any(|l| l.starts_with("warn") && l.contains("`https://*`") && l.contains("every public host")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("warn") && l.contains("$MOAT_TEST_UNSET_SECRET")), "{text}");
    // A bare `*`, a grant without a scheme, and a secret for an origin not granted are refused.
    for (bad, why) in [
        ("[grants]\nhttp = [\"*\"]\n", "bare `*`"),
        ("[grants]\nhttp = [\"api.example.com\"]\n", "give the scheme"),
        (
            "[grants]\nhttp = [\"https://a.example.com\"]\n[[grants.http_headers]]\norigin = \"https://b.example.com\"\nheader = \"X-Key\"\nvalue_env = \"K\"\n",
            "not granted",
        ),
    ] {
        std::fs::write(p.join("http_get.toml"), bad).unwrap();
        let out = moat(home.path()).arg("check").arg("--plugins").arg(p).output().unwrap();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{bad}: {text}");
        assert!(text.lines().any(|l| l.starts_with("error") && l.contains(why)), "{bad}: {text}");
    }
}
