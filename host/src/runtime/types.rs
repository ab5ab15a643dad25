//! What plugins declare and return, independent of the WIT version they were built
//! against. Only this module's converters know the generated binding types.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::bindings::v0_1::moat::plugin::types as w01;
use crate::schema::SchemaValidator;

/// Tool annotations, as MCP clients see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// A tool, validated at load time.
#[derive(Debug, Clone)]
pub struct ToolInfo {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub annotations: Annotations,
    pub(crate) validator: Arc<SchemaValidator>,
    /// Checks structured results, when the tool declares an output schema.
    pub(crate) output_validator: Option<Arc<SchemaValidator>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceInfo {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceTemplateInfo {
    pub uri_template: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptArgument {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptInfo {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgument>,
}

/// The body of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBody {
    Text(String),
    Blob(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceContents {
    pub uri: String,
    pub mime_type: Option<String>,
    pub body: ResourceBody,
}

/// One item of a tool result or prompt message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Image { data: Vec<u8>, mime_type: String },
    Audio { data: Vec<u8>, mime_type: String },
    Resource(ResourceContents),
}

/// The result of a successful tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    /// A JSON object matching the tool's output schema.
    pub structured: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptResult {
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

/// Something a plugin reported while a call ran.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginEvent {
    Log { level: LogLevel, message: String },
    Progress { progress: f64, total: Option<f64>, message: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

impl Content {
    /// Bytes this item takes on the wire, for the output cap: its payload as
    /// encoded (binary as base64) plus [`ITEM_OVERHEAD`], so that many empty
    /// items cost as much as they do to send.
    pub fn size(&self) -> usize {
        ITEM_OVERHEAD
            + match self {
                Content::Text(t) => t.len(),
                Content::Image { data, mime_type } | Content::Audio { data, mime_type } => {
                    base64_len(data.len()) + mime_type.len()
                }
                Content::Resource(r) => r.size(),
            }
    }
}

impl ResourceContents {
    /// Bytes on the wire, for the output cap (see [`Content::size`]).
    pub fn size(&self) -> usize {
        ITEM_OVERHEAD
            + self.uri.len()
            + self.mime_type.as_ref().map_or(0, String::len)
            + match &self.body {
                ResourceBody::Text(t) => t.len(),
                ResourceBody::Blob(b) => base64_len(b.len()),
            }
    }
}

impl PromptResult {
    /// Bytes on the wire, for the output cap.
    pub fn size(&self) -> usize {
        self.description.as_ref().map_or(0, String::len)
            + self.messages.iter().map(|m| ITEM_OVERHEAD + m.content.size()).sum::<usize>()
    }
}

/// What one item of a result costs beyond its payload: the JSON around it.
pub const ITEM_OVERHEAD: usize = 32;

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// A tool as the plugin declared it, before the catalogue checks.
pub struct RawTool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: String,
    pub output_schema: Option<String>,
    pub annotations: Annotations,
}

impl From<w01::Tool> for RawTool {
    fn from(t: w01::Tool) -> Self {
        RawTool {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema: t.input_schema,
            output_schema: t.output_schema,
            annotations: Annotations {
                read_only: t.annotations.read_only,
                destructive: t.annotations.destructive,
                idempotent: t.annotations.idempotent,
                open_world: t.annotations.open_world,
            },
        }
    }
}

// Conversions from the 0.1 bindings.

impl From<w01::ResourceContents> for ResourceContents {
    fn from(r: w01::ResourceContents) -> Self {
        ResourceContents {
            uri: r.uri,
            mime_type: r.mime_type,
            body: match r.body {
                w01::ResourceBody::Text(t) => ResourceBody::Text(t),
                w01::ResourceBody::Blob(b) => ResourceBody::Blob(b),
            },
        }
    }
}

impl From<w01::Content> for Content {
    fn from(c: w01::Content) -> Self {
        match c {
            w01::Content::Text(t) => Content::Text(t),
            w01::Content::Image(m) => Content::Image { data: m.data, mime_type: m.mime_type },
            w01::Content::Audio(m) => Content::Audio { data: m.data, mime_type: m.mime_type },
            w01::Content::Resource(r) => Content::Resource(r.into()),
        }
    }
}

impl From<w01::PromptResult> for PromptResult {
    fn from(p: w01::PromptResult) -> Self {
        PromptResult {
            description: p.description,
            messages: p
                .messages
                .into_iter()
                .map(|m| PromptMessage { role: m.role.into(), content: m.content.into() })
                .collect(),
        }
    }
}

impl From<w01::Resource> for ResourceInfo {
    fn from(r: w01::Resource) -> Self {
        ResourceInfo { uri: r.uri, name: r.name, title: r.title, description: r.description, mime_type: r.mime_type }
    }
}

impl From<w01::ResourceTemplate> for ResourceTemplateInfo {
    fn from(r: w01::ResourceTemplate) -> Self {
        ResourceTemplateInfo {
            uri_template: r.uri_template,
            name: r.name,
            title: r.title,
            description: r.description,
            mime_type: r.mime_type,
        }
    }
}

impl From<w01::Prompt> for PromptInfo {
    fn from(p: w01::Prompt) -> Self {
        PromptInfo {
            name: p.name,
            title: p.title,
            description: p.description,
            arguments: p
                .arguments
                .into_iter()
                .map(|a| PromptArgument { name: a.name, description: a.description, required: a.required })
                .collect(),
        }
    }
}

/// The verified caller of a request, as a plugin may see it (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
}

/// What the client declared it can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientCapabilities {
    pub elicitation: bool,
    pub sampling: bool,
    pub roots: bool,
}

/// A question a plugin asks the client in the middle of a tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    /// Ask the user to fill in a form described by a JSON Schema object.
    Elicit {
        message: String,
        requested_schema: Value,
    },
    /// Ask the client's model for a completion.
    Sample(SamplingRequest),
    ListRoots,
}

impl Question {
    /// The client capability the question needs.
    pub fn capability(&self) -> &'static str {
        match self {
            Question::Elicit { .. } => "elicitation",
            Question::Sample(_) => "sampling",
            Question::ListRoots => "roots",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRequest {
    pub messages: Vec<PromptMessage>,
    pub system_prompt: Option<String>,
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    pub model_hints: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElicitAction {
    Accept,
    Decline,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub uri: String,
    pub name: Option<String>,
}

/// The client's answer to a [`Question`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Elicit { action: ElicitAction, content: Option<Value> },
    Sample { role: Role, content: Content, model: String, stop_reason: Option<String> },
    Roots(Vec<Root>),
}

/// What became of a set of questions.
#[derive(Debug, Clone, PartialEq)]
pub enum AskOutcome {
    /// One answer per question, in order.
    Answered(Vec<Answer>),
    /// The client refused or answered with something unreadable.
    Failed(String),
    /// The client's answer does not fit the question: the call ends with -32602.
    BadAnswer(String),
    /// Not all answered yet: the call stops and asks (2026-07-28 input-required
    /// round trip); the bridge keeps the questions.
    NeedsInput,
}

/// Carries a plugin's questions to the MCP client. The MCP layer provides one per
/// call; without one the client is taken to declare nothing.
pub trait ClientBridge: Send + Sync {
    fn capabilities(&self) -> ClientCapabilities;
    fn ask(
        &self,
        questions: Vec<(String, Question)>,
    ) -> std::pin::Pin<Box<dyn Future<Output = AskOutcome> + Send + '_>>;
}

impl From<Role> for w01::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::User => w01::Role::User,
            Role::Assistant => w01::Role::Assistant,
        }
    }
}

impl From<w01::Role> for Role {
    fn from(r: w01::Role) -> Self {
        match r {
            w01::Role::User => Role::User,
            w01::Role::Assistant => Role::Assistant,
        }
    }
}

impl From<Content> for w01::Content {
    fn from(c: Content) -> Self {
        match c {
            Content::Text(t) => w01::Content::Text(t),
            Content::Image { data, mime_type } => w01::Content::Image(w01::Media { data, mime_type }),
            Content::Audio { data, mime_type } => w01::Content::Audio(w01::Media { data, mime_type }),
            Content::Resource(r) => w01::Content::Resource(w01::ResourceContents {
                uri: r.uri,
                mime_type: r.mime_type,
                body: match r.body {
                    ResourceBody::Text(t) => w01::ResourceBody::Text(t),
                    ResourceBody::Blob(b) => w01::ResourceBody::Blob(b),
                },
            }),
        }
    }
}
