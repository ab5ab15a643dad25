//! The fixtures of the MCP conformance suite's everything server, as a moat
//! plugin: fixed tool, resource and prompt names the suite calls, built with the
//! SDK and served by `moat serve` like any other plugin.

use std::time::Duration;

use moat_sdk::client::{self, Answer, Question, SamplingRequest};
use moat_sdk::{Content, LogLevel, PromptMessage, PromptResult, ResourceBody, ResourceContents, Role, UriVars};
use moat_sdk::{log, progress, prompt, resource, tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// A 1x1 red PNG.
const PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21, 196,
    137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 252, 207, 192, 240, 31, 0, 5, 5, 2, 0, 95, 200, 241, 210, 0, 0, 0,
    0, 73, 69, 78, 68, 174, 66, 96, 130,
];
/// A silent WAV.
const WAV: &[u8] = &[
    82, 73, 70, 70, 38, 0, 0, 0, 87, 65, 86, 69, 102, 109, 116, 32, 16, 0, 0, 0, 1, 0, 1, 0, 64, 31, 0, 0, 0, 125, 0,
    0, 2, 0, 16, 0, 100, 97, 116, 97, 2, 0, 0, 0,
];

fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}

/// Returns a fixed text.
#[tool(read_only)]
fn test_simple_text() -> &'static str {
    "This is a simple text response for testing."
}

/// Returns a PNG image.
#[tool(read_only)]
fn test_image_content() -> Content {
    Content::image(PNG, "image/png")
}

/// Returns a WAV clip.
#[tool(read_only)]
fn test_audio_content() -> Content {
    Content::audio(WAV, "audio/wav")
}

/// Returns an embedded text resource.
#[tool(read_only)]
fn test_embedded_resource() -> Content {
    Content::resource(ResourceContents::text("test://embedded-resource", "This is an embedded resource content."))
}

/// Returns text, an image and an embedded resource.
#[tool(read_only)]
fn test_multiple_content_types() -> Vec<Content> {
    vec![
        Content::text("Multiple content types test:"),
        Content::image(PNG, "image/png"),
        Content::resource(ResourceContents {
            uri: "test://mixed-content-resource".into(),
            mime_type: Some("application/json".into()),
            body: ResourceBody::Text(r#"{"test":"data","value":123}"#.into()),
        }),
    ]
}

/// Logs three messages, 50 ms apart.
#[tool(read_only)]
fn test_tool_with_logging() -> &'static str {
    for m in ["Tool execution started", "Tool processing data", "Tool execution completed"] {
        log(LogLevel::Info, m);
        pause();
    }
    "Logging test completed"
}

/// Logs one message (sent only to clients that asked for logs).
#[tool(read_only)]
fn test_logging_tool() -> &'static str {
    log(LogLevel::Info, "test_logging_tool ran");
    "Logged one message"
}

/// Reports progress 0, 50 and 100 of 100, 50 ms apart.
#[tool(read_only)]
fn test_tool_with_progress() -> &'static str {
    for p in [0.0, 50.0, 100.0] {
        progress(p, Some(100.0), Some(&format!("{p} of 100")));
        pause();
    }
    "Progress test completed"
}

/// Always fails, as a tool error the caller sees.
#[tool(read_only)]
fn test_error_handling() -> Result<String, String> {
    Err("This tool intentionally returns an error for testing".into())
}

#[derive(Deserialize, JsonSchema)]
struct PromptArg {
    /// What to ask the client's model.
    prompt: String,
}

/// Asks the client's model a question (sampling).
#[tool(read_only)]
fn test_sampling(args: PromptArg) -> Result<String, client::ClientError> {
    let reply = client::create_message("sample", &SamplingRequest::user(args.prompt, 100))?;
    Ok(format!("LLM response: {}", reply.content.as_text().unwrap_or("(not text)")))
}

#[derive(Deserialize, JsonSchema)]
struct MessageArg {
    /// What to ask the user.
    message: String,
}

fn describe(e: &client::Elicitation) -> String {
    format!(
        "User response: action={}, content={}",
        e.action.as_str(),
        e.content.as_ref().map_or("none".into(), Value::to_string)
    )
}

/// Asks the user for a username and an email (elicitation).
#[tool(read_only)]
fn test_elicitation(args: MessageArg) -> Result<String, client::ClientError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "Your username"},
            "email": {"type": "string", "description": "Your email address"}
        },
        "required": ["username", "email"]
    });
    Ok(describe(&client::elicit("user_info", &args.message, &schema)?))
}

/// Elicitation whose fields carry defaults (SEP-1034).
#[tool(read_only)]
fn test_elicitation_sep1034_defaults() -> Result<String, client::ClientError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        }
    });
    Ok(describe(&client::elicit("defaults", "Please review and update the form fields with defaults", &schema)?))
}

/// Elicitation with every enum form (SEP-1330).
#[tool(read_only)]
fn test_elicitation_sep1330_enums() -> Result<String, client::ClientError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Choose one", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Choose one", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}
            ]},
            "legacyEnum": {"type": "string", "description": "Choose one (legacy)", "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "description": "Choose several", "minItems": 1, "maxItems": 3,
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Choose several", "minItems": 1, "maxItems": 3,
                "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"}
                ]}}
        },
        "required": []
    });
    Ok(describe(&client::elicit("enums", "Please select options from the enum fields", &schema)?))
}

fn name_schema(field: &str) -> Value {
    json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
}

fn accepted_field(e: &client::Elicitation, field: &str) -> Result<String, String> {
    match (e.action, e.content.as_ref().and_then(|c| c.get(field))) {
        (client::ElicitAction::Accept, Some(v)) => Ok(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
        (action, _) => Err(format!("no {field}: the user chose {}", action.as_str())),
    }
}

/// Asks the user's name, then greets them (input-required round trip).
#[tool(read_only)]
fn test_input_required_result_elicitation() -> Result<String, String> {
    let e = client::elicit("user_name", "What is your name?", &name_schema("name")).map_err(|e| e.to_string())?;
    Ok(format!("Hello, {}!", accepted_field(&e, "name")?))
}

/// Asks the client's model the capital of France.
#[tool(read_only)]
fn test_input_required_result_sampling() -> Result<String, client::ClientError> {
    let r = client::create_message("capital_question", &SamplingRequest::user("What is the capital of France?", 100))?;
    Ok(format!("The model said: {}", r.content.as_text().unwrap_or("(not text)")))
}

/// Lists the client's roots.
#[tool(read_only)]
fn test_input_required_result_list_roots() -> Result<String, client::ClientError> {
    let roots = client::list_roots("client_roots")?;
    Ok(format!("Roots: {}", roots.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>().join(", ")))
}

fn confirm() -> Result<String, String> {
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
    let e = client::elicit("confirm", "Please confirm", &schema).map_err(|e| e.to_string())?;
    Ok(format!("state-ok: {}", accepted_field(&e, "ok")?))
}

/// Asks for a confirmation; the answer travels with the request state.
#[tool(read_only)]
fn test_input_required_result_request_state() -> Result<String, String> {
    confirm()
}

/// Like the request-state tool; used to check that a tampered state is refused.
#[tool(read_only)]
fn test_input_required_result_tampered_state() -> Result<String, String> {
    confirm()
}

/// Asks three questions at once: a name, a model greeting and the roots.
#[tool(read_only)]
fn test_input_required_result_multiple_inputs() -> Result<String, String> {
    let answers = client::ask(&[
        ("user_name", Question::Elicit { message: "What is your name?".into(), requested_schema: name_schema("name") }),
        ("greeting", Question::Sample(SamplingRequest::user("Say hello", 50))),
        ("client_roots", Question::ListRoots),
    ])
    .map_err(|e| e.to_string())?;
    let parts: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Answer::Elicitation(e) => accepted_field(e, "name").unwrap_or_else(|e| e),
            Answer::Sampled(s) => s.content.as_text().unwrap_or("(not text)").to_owned(),
            Answer::Roots(r) => format!("{} roots", r.len()),
        })
        .collect();
    Ok(format!("Got: {}", parts.join("; ")))
}

/// Asks a name, then a favourite colour: two rounds.
#[tool(read_only)]
fn test_input_required_result_multi_round() -> Result<String, String> {
    let name = client::elicit("step1", "What is your name?", &name_schema("name")).map_err(|e| e.to_string())?;
    let name = accepted_field(&name, "name")?;
    let color = client::elicit("step2", &format!("{name}, what is your favourite colour?"), &name_schema("color"))
        .map_err(|e| e.to_string())?;
    Ok(format!("{name} likes {}", accepted_field(&color, "color")?))
}

/// Asks only what the client declared: elicitation if it can, else sampling.
#[tool(read_only)]
fn test_input_required_result_capabilities() -> Result<String, String> {
    let caps = client::capabilities();
    if caps.elicitation {
        let e = client::elicit("user_name", "What is your name?", &name_schema("name")).map_err(|e| e.to_string())?;
        Ok(format!("Hello, {}!", accepted_field(&e, "name")?))
    } else if caps.sampling {
        let r =
            client::create_message("capital_question", &SamplingRequest::user("What is the capital of France?", 100))
                .map_err(|e| e.to_string())?;
        Ok(format!("The model said: {}", r.content.as_text().unwrap_or("(not text)")))
    } else {
        Ok("The client declared neither elicitation nor sampling".into())
    }
}

/// Needs sampling whatever the client declared (a client without it gets -32021).
#[tool(read_only)]
fn test_missing_capability() -> Result<String, client::ClientError> {
    let r = client::create_message("needs_sampling", &SamplingRequest::user("Say something", 10))?;
    Ok(r.content.as_text().unwrap_or("(not text)").to_owned())
}

/// Asks the user a question mid-call; in 2026-07-28 this is an input-required result.
#[tool(read_only)]
fn test_streaming_elicitation() -> Result<String, String> {
    let e = client::elicit("stream_input", "Anything to add?", &name_schema("note")).map_err(|e| e.to_string())?;
    Ok(format!("Noted: {}", accepted_field(&e, "note")?))
}

/// Returns a fixed text.
#[resource(uri = "test://static-text", mime_type = "text/plain")]
fn static_text() -> String {
    "This is the content of the static text resource.".into()
}

/// Returns a PNG image.
#[resource(uri = "test://static-binary", mime_type = "image/png")]
fn static_binary() -> Vec<u8> {
    PNG.to_vec()
}

/// A resource clients may subscribe to.
#[resource(uri = "test://watched-resource", mime_type = "text/plain")]
fn watched_resource() -> String {
    "Watched resource content".into()
}

/// Data for an id.
#[resource(template = "test://template/{id}/data", mime_type = "application/json")]
fn template_data(vars: &UriVars) -> String {
    let id = vars.get("id").unwrap_or_default();
    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()
}

/// A prompt with no arguments.
#[prompt]
fn test_simple_prompt() -> String {
    "This is a simple prompt for testing.".into()
}

#[derive(Deserialize, JsonSchema)]
struct TwoArgs {
    /// First argument.
    arg1: String,
    /// Second argument.
    arg2: String,
}

/// A prompt with two required arguments.
#[prompt]
fn test_prompt_with_arguments(args: TwoArgs) -> String {
    format!("Prompt with arguments: arg1='{}', arg2='{}'", args.arg1, args.arg2)
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ResourceUri {
    /// URI of the resource to embed.
    resource_uri: String,
}

/// A prompt that embeds a resource.
#[prompt]
fn test_prompt_with_embedded_resource(args: ResourceUri) -> Vec<PromptMessage> {
    vec![
        PromptMessage {
            role: Role::User,
            content: Content::resource(ResourceContents::text(
                args.resource_uri,
                "Embedded resource content for testing.",
            )),
        },
        PromptMessage::user("Please process the embedded resource above."),
    ]
}

/// A prompt with an image.
#[prompt]
fn test_prompt_with_image() -> Vec<PromptMessage> {
    vec![
        PromptMessage { role: Role::User, content: Content::image(PNG, "image/png") },
        PromptMessage::user("Please analyze the image above."),
    ]
}

/// A prompt that first asks the user for context (input-required round trip).
#[prompt]
fn test_input_required_result_prompt() -> Result<PromptResult, String> {
    let schema = json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]});
    let e =
        client::elicit("user_context", "What context should the prompt use?", &schema).map_err(|e| e.to_string())?;
    let context = accepted_field(&e, "context")?;
    Ok(PromptResult {
        description: Some("A prompt built from the user's context".into()),
        messages: vec![PromptMessage::user(format!("Use this context: {context}"))],
    })
}

moat_sdk::plugin!(Everything {
    tools: [
        test_simple_text,
        test_image_content,
        test_audio_content,
        test_embedded_resource,
        test_multiple_content_types,
        test_tool_with_logging,
        test_logging_tool,
        test_tool_with_progress,
        test_error_handling,
        test_sampling,
        test_elicitation,
        test_elicitation_sep1034_defaults,
        test_elicitation_sep1330_enums,
        test_input_required_result_elicitation,
        test_input_required_result_sampling,
        test_input_required_result_list_roots,
        test_input_required_result_request_state,
        test_input_required_result_tampered_state,
        test_input_required_result_multiple_inputs,
        test_input_required_result_multi_round,
        test_input_required_result_capabilities,
        test_missing_capability,
        test_streaming_elicitation,
    ],
    resources: [static_text, static_binary, watched_resource, template_data],
    prompts: [
        test_simple_prompt,
        test_prompt_with_arguments,
        test_prompt_with_embedded_resource,
        test_prompt_with_image,
        test_input_required_result_prompt,
    ],
});
