//! Between the runtime's types and MCP's wire types (rmcp's `model`), and the
//! JSON shapes of client questions and answers shared by both protocol eras.

use base64::Engine as _;
use rmcp::model::{
    ContentBlock, JsonObject, Prompt, PromptArgument as McpPromptArgument, PromptMessage as McpMessage, Resource,
    ResourceContents as McpContents, ResourceTemplate, Role as McpRole, Tool, ToolAnnotations,
};
use serde_json::{Value, json};

use crate::runtime::types::{
    Answer, Content, ElicitAction, PromptInfo, PromptResult, Question, ResourceBody, ResourceContents, ResourceInfo,
    ResourceTemplateInfo, Role, Root, ToolInfo, ToolOutput,
};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn object(v: &Value) -> JsonObject {
    v.as_object().cloned().unwrap_or_default()
}

pub fn tool(t: &ToolInfo) -> Tool {
    let a = t.annotations;
    let mut tool = Tool::new(t.name.clone(), t.description.clone(), object(&t.input_schema)).with_annotations(
        ToolAnnotations::new()
            .read_only(a.read_only)
            .destructive(a.destructive)
            .idempotent(a.idempotent)
            .open_world(a.open_world),
    );
    if let Some(title) = &t.title {
        tool = tool.with_title(title.clone());
    }
    if let Some(schema) = &t.output_schema {
        tool = tool.with_raw_output_schema(object(schema).into());
    }
    tool
}

pub fn resource(r: &ResourceInfo) -> Resource {
    let mut res = Resource::new(r.uri.clone(), r.name.clone());
    res.title = r.title.clone();
    res.description = r.description.clone();
    res.mime_type = r.mime_type.clone();
    res
}

pub fn resource_template(r: &ResourceTemplateInfo) -> ResourceTemplate {
    let mut res = ResourceTemplate::new(r.uri_template.clone(), r.name.clone());
    res.title = r.title.clone();
    res.description = r.description.clone();
    res.mime_type = r.mime_type.clone();
    res
}

pub fn prompt(p: &PromptInfo) -> Prompt {
    let args: Vec<McpPromptArgument> = p
        .arguments
        .iter()
        .map(|a| {
            let mut arg = McpPromptArgument::new(a.name.clone()).with_required(a.required);
            if let Some(d) = &a.description {
                arg = arg.with_description(d.clone());
            }
            arg
        })
        .collect();
    let mut prompt = Prompt::new(p.name.clone(), p.description.clone(), (!args.is_empty()).then_some(args));
    if let Some(t) = &p.title {
        prompt = prompt.with_title(t.clone());
    }
    prompt
}

pub fn contents(c: &ResourceContents) -> McpContents {
    let mime = c.mime_type.clone();
    let contents = match &c.body {
        ResourceBody::Text(t) => McpContents::text(t.clone(), c.uri.clone()),
        ResourceBody::Blob(b) => McpContents::blob(b64(b), c.uri.clone()),
    };
    match mime {
        Some(m) => contents.with_mime_type(m),
        None => contents,
    }
}

/// Like [`content`], moving text instead of copying it.
/// A tool's output as MCP's `CallToolResult` (what `tools/call` answers and
/// `moat call` prints).
pub fn tool_result(out: ToolOutput) -> rmcp::model::CallToolResult {
    let mut result = rmcp::model::CallToolResult::success(out.content.into_iter().map(into_content).collect());
    result.structured_content = out.structured;
    result
}

pub fn into_content(c: Content) -> ContentBlock {
    match c {
        Content::Text(t) => ContentBlock::text(t),
        other => content(&other),
    }
}

pub fn content(c: &Content) -> ContentBlock {
    match c {
        Content::Text(t) => ContentBlock::text(t.clone()),
        Content::Image { data, mime_type } => ContentBlock::image(b64(data), mime_type.clone()),
        Content::Audio { data, mime_type } => ContentBlock::audio(b64(data), mime_type.clone()),
        Content::Resource(r) => ContentBlock::resource(contents(r)),
    }
}

pub fn prompt_result(p: &PromptResult) -> rmcp::model::GetPromptResult {
    let messages = p
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => McpRole::User,
                Role::Assistant => McpRole::Assistant,
            };
            McpMessage::new(role, content(&m.content))
        })
        .collect();
    let mut r = rmcp::model::GetPromptResult::new(messages);
    if let Some(d) = &p.description {
        r = r.with_description(d.clone());
    }
    r
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// A question as an MCP request: method and params.
pub fn question(q: &Question) -> (&'static str, Value) {
    match q {
        Question::Elicit { message, requested_schema } => {
            ("elicitation/create", json!({"mode": "form", "message": message, "requestedSchema": requested_schema}))
        }
        Question::Sample(r) => {
            let messages: Vec<Value> = r
                .messages
                .iter()
                .map(|m| {
                    let content = serde_json::to_value(content(&m.content)).unwrap_or(Value::Null);
                    json!({"role": role_name(m.role), "content": content})
                })
                .collect();
            let mut params = json!({"messages": messages, "maxTokens": r.max_tokens});
            if let Some(s) = &r.system_prompt {
                params["systemPrompt"] = json!(s);
            }
            if let Some(t) = r.temperature {
                params["temperature"] = json!(t);
            }
            if !r.model_hints.is_empty() {
                let hints: Vec<Value> = r.model_hints.iter().map(|h| json!({"name": h})).collect();
                params["modelPreferences"] = json!({"hints": hints});
            }
            ("sampling/createMessage", params)
        }
        Question::ListRoots => ("roots/list", json!({})),
    }
}

/// Reads the client's answer (an `ElicitResult`, `CreateMessageResult` or
/// `ListRootsResult` as JSON) to `q`.
pub fn answer(q: &Question, v: &Value) -> Result<Answer, String> {
    let field = |name: &str| v.get(name).ok_or_else(|| format!("the answer has no `{name}`"));
    match q {
        Question::Elicit { .. } => {
            let action = match field("action")?.as_str() {
                Some("accept") => ElicitAction::Accept,
                Some("decline") => ElicitAction::Decline,
                Some("cancel") => ElicitAction::Cancel,
                _ => return Err("`action` must be accept, decline or cancel".into()),
            };
            let content = match v.get("content") {
                None | Some(Value::Null) => None,
                Some(c @ Value::Object(_)) => Some(c.clone()),
                Some(_) => return Err("`content` must be an object".into()),
            };
            if action == ElicitAction::Accept && content.is_none() {
                return Err("an accepted elicitation needs `content`".into());
            }
            Ok(Answer::Elicit { action, content })
        }
        Question::Sample(_) => {
            let role = match field("role")?.as_str() {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                _ => return Err("`role` must be user or assistant".into()),
            };
            let c = match field("content")? {
                Value::Array(items) => items.first().cloned().ok_or("`content` is empty")?,
                c => c.clone(),
            };
            let content = sampled_content(&c)?;
            let model = field("model")?.as_str().ok_or("`model` must be a string")?.to_owned();
            let stop_reason = v.get("stopReason").and_then(Value::as_str).map(str::to_owned);
            Ok(Answer::Sample { role, content, model, stop_reason })
        }
        Question::ListRoots => {
            let roots = field("roots")?.as_array().ok_or("`roots` must be an array")?;
            roots
                .iter()
                .map(|r| {
                    let uri = r.get("uri").and_then(Value::as_str).ok_or("a root has no `uri`")?;
                    let name = r.get("name").and_then(Value::as_str).map(str::to_owned);
                    Ok(Root { uri: uri.to_owned(), name })
                })
                .collect::<Result<_, String>>()
                .map(Answer::Roots)
        }
    }
}

fn sampled_content(c: &Value) -> Result<Content, String> {
    let text = |k: &str| c.get(k).and_then(Value::as_str).ok_or_else(|| format!("sampled content has no `{k}`"));
    let bytes = || {
        base64::engine::general_purpose::STANDARD
            .decode(text("data")?)
            .map_err(|e| format!("sampled content `data` is not base64: {e}"))
    };
    match c.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Content::Text(text("text")?.to_owned())),
        Some("image") => Ok(Content::Image { data: bytes()?, mime_type: text("mimeType")?.to_owned() }),
        Some("audio") => Ok(Content::Audio { data: bytes()?, mime_type: text("mimeType")?.to_owned() }),
        other => Err(format!("sampled content of type {other:?} is not supported")),
    }
}
