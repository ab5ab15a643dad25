//! The plugin author's loop: call the tools natively with `moat_sdk::testing`.

use disk_usage::DiskUsage;
use moat_sdk::testing;
use serde_json::{Value, json};

#[test]
fn reports_the_root_filesystem() {
    let usage: Value = testing::call_structured::<DiskUsage, _>("disk_usage", json!({})).unwrap();
    assert_eq!(usage["path"], "/");
    let total = usage["total_bytes"].as_u64().unwrap();
    assert!(total > 0);
    assert!(usage["used_bytes"].as_u64().unwrap() <= total);
    assert_eq!(usage["total_gb"].as_f64().unwrap(), (total as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0);
}

#[test]
fn missing_paths_are_tool_errors() {
    let err = testing::call_tool::<DiskUsage>("disk_usage", json!({"path": "/no/such/dir"})).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}

#[test]
fn schemas_and_prompt() {
    let input = testing::input_schema::<DiskUsage>("disk_usage").unwrap();
    assert_eq!(input["type"], "object");
    assert!(input["properties"]["path"]["description"].as_str().unwrap().contains("granted"));
    assert!(testing::output_schema::<DiskUsage>("disk_usage").unwrap()["required"].as_array().unwrap().len() == 7);
    let p = testing::get_prompt::<DiskUsage>("triage", &[("host", "db1")]).unwrap();
    assert_eq!(p.messages[0].content.as_text(), Some("Check db1 for disk pressure. Summarise the risk in 3 lines."));
    let r = testing::read_resource::<DiskUsage>("config://limits").unwrap();
    assert_eq!(r.mime_type.as_deref(), Some("application/json"));
}
