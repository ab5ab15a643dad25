//! What `#[tool]`, `#[resource]`, `#[prompt]` and `plugin!` generate.

use moat_sdk::testing;
use moat_sdk::{CallError, Content, Json, LogLevel, Plugin, PromptMessage, UriVars, log, prompt, resource, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// First number.
    a: i64,
    /// Second number.
    b: i64,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Sum {
    sum: i64,
}

/// Adds two numbers.
///
/// Overflow is an error.
#[tool(read_only, idempotent, title = "Add")]
fn add(args: AddArgs) -> Result<Json<Sum>, String> {
    log(LogLevel::Debug, "adding");
    moat_sdk::progress(1.0, Some(1.0), None);
    args.a.checked_add(args.b).map(|sum| Json(Sum { sum })).ok_or_else(|| "overflow".to_string())
}

/// Says hello.
#[tool(name = "hello.world")]
fn hello() -> Vec<Content> {
    vec![Content::text("hello"), Content::image(vec![1, 2, 3], "image/png")]
}

/// A greeting resource.
#[resource(uri = "greeting://en", mime_type = "text/plain")]
fn greeting() -> String {
    "hello".into()
}

/// Per-user files.
#[resource(template = "users://{user}/files/{+path}")]
fn user_file(vars: &UriVars) -> Result<String, String> {
    Ok(format!("{}:{}", vars.get("user").unwrap(), vars.get("path").unwrap()))
}

#[derive(Deserialize, JsonSchema)]
struct ReviewArgs {
    /// Code to review.
    code: String,
    /// Focus area.
    focus: Option<String>,
}

/// Reviews code.
#[prompt(title = "Code review")]
fn review(args: ReviewArgs) -> Vec<PromptMessage> {
    vec![
        PromptMessage::user(format!("Review: {}", args.code)),
        PromptMessage::assistant(args.focus.unwrap_or_else(|| "general".into())),
    ]
}

moat_sdk::plugin!(Demo { tools: [add, hello], resources: [greeting, user_file], prompts: [review] });

#[test]
fn tool_metadata_comes_from_the_function() {
    let tools = Demo::tools();
    let add = &tools[0];
    assert_eq!(add.name, "add");
    assert_eq!(add.title, Some("Add"));
    assert_eq!(add.description, "Adds two numbers.\n\nOverflow is an error.");
    assert!(add.annotations.read_only && add.annotations.idempotent && !add.annotations.destructive);
    let input = (add.input_schema)();
    assert_eq!(input["properties"]["a"]["description"], "First number.");
    assert_eq!(input["required"], json!(["a", "b"]));
    assert!(input.get("title").is_none());
    assert_eq!((add.output_schema)().unwrap()["properties"]["sum"]["type"], "integer");
    assert_eq!(tools[1].name, "hello.world");
    assert_eq!((tools[1].output_schema)(), None);
    assert_eq!((tools[1].input_schema)(), json!({"type": "object", "properties": {}}));
}

#[test]
fn tools_run_natively() {
    let out = testing::call_tool::<Demo>("add", json!({"a": 2, "b": 3})).unwrap();
    assert_eq!(out.structured, Some(json!({"sum": 5})));
    assert_eq!(out.text(), r#"{"sum":5}"#);
    assert_eq!(testing::take_logs(), vec![(LogLevel::Debug, "adding".to_string())]);
    assert_eq!(testing::take_progress(), vec![(1.0, Some(1.0), None)]);
    let err = testing::call_tool::<Demo>("add", json!({"a": i64::MAX, "b": 1})).unwrap_err();
    assert_eq!(err, CallError::Failed("overflow".into()));
    let err = testing::call_tool::<Demo>("add", json!({"a": "x", "b": 1})).unwrap_err();
    assert!(matches!(err, CallError::InvalidArguments(_)), "{err:?}");
    let err = testing::call_tool::<Demo>("nope", json!({})).unwrap_err();
    assert!(matches!(err, CallError::NotFound(_)));
    assert_eq!(testing::call_tool::<Demo>("hello.world", json!({})).unwrap().content.len(), 2);
}

#[test]
fn resources_and_templates() {
    assert_eq!(
        testing::read_resource::<Demo>("greeting://en").unwrap().body,
        moat_sdk::ResourceBody::Text("hello".into())
    );
    let r = testing::read_resource::<Demo>("users://ann/files/a/b.txt").unwrap();
    assert_eq!(r.body, moat_sdk::ResourceBody::Text("ann:a/b.txt".into()));
    assert!(matches!(testing::read_resource::<Demo>("users://ann"), Err(CallError::NotFound(_))));
}

#[test]
fn prompt_arguments_come_from_the_type() {
    let prompts = Demo::prompts();
    let args = (prompts[0].arguments)();
    assert_eq!(args.len(), 2);
    let code = args.iter().find(|a| a.name == "code").unwrap();
    assert!(code.required);
    assert_eq!(code.description.as_deref(), Some("Code to review."));
    assert!(!args.iter().find(|a| a.name == "focus").unwrap().required);
    let p = testing::get_prompt::<Demo>("review", &[("code", "fn main() {}")]).unwrap();
    assert_eq!(p.messages[0].content.as_text(), Some("Review: fn main() {}"));
    assert_eq!(p.messages[1].content.as_text(), Some("general"));
    assert!(matches!(testing::get_prompt::<Demo>("review", &[]), Err(CallError::InvalidArguments(_))));
}
