//! Questions to the MCP client from inside a tool call: elicitation (ask the user
//! to fill in a form) and sampling (ask the client's model).
//!
//! In the 2026-07-28 protocol moat answers these by running the tool again from
//! the start with the answers gathered so far, so code before a question must be
//! safe to repeat. Natively (in `cargo test`) answers come from
//! [`crate::testing::queue_client_answer`].

use std::fmt;

use serde_json::Value;

use crate::content::{Content, PromptMessage, Role};

/// What the user did with an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElicitAction {
    Accept,
    Decline,
    Cancel,
}

impl ElicitAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ElicitAction::Accept => "accept",
            ElicitAction::Decline => "decline",
            ElicitAction::Cancel => "cancel",
        }
    }
}

/// The user's answer to [`elicit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Elicitation {
    pub action: ElicitAction,
    /// The submitted form, when accepted.
    pub content: Option<Value>,
}

/// What the client declared it can answer. Asking anything else ends the call
/// with MCP error -32021 (missing client capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub elicitation: bool,
    pub sampling: bool,
    pub roots: bool,
}

/// A request for [`create_message`].
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRequest {
    pub messages: Vec<PromptMessage>,
    pub system_prompt: Option<String>,
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    /// Model names the client may prefer, in order.
    pub model_hints: Vec<String>,
}

impl SamplingRequest {
    /// One user message of text.
    pub fn user(text: impl Into<String>, max_tokens: u32) -> Self {
        SamplingRequest {
            messages: vec![PromptMessage::user(text)],
            system_prompt: None,
            max_tokens,
            temperature: None,
            model_hints: Vec::new(),
        }
    }
}

/// The client model's answer to [`create_message`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub role: Role,
    pub content: Content,
    pub model: String,
    pub stop_reason: Option<String>,
}

/// A root the client exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub uri: String,
    pub name: Option<String>,
}

/// One question for [`ask`].
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    Elicit { message: String, requested_schema: Value },
    Sample(SamplingRequest),
    ListRoots,
}

/// The answer to one [`Question`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Elicitation(Elicitation),
    Sampled(Sampled),
    Roots(Vec<Root>),
}

/// The client refused, or its answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError(pub String);

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the client could not answer: {}", self.0)
    }
}

impl std::error::Error for ClientError {}

/// What the client declared it can answer.
pub fn capabilities() -> Capabilities {
    imp::capabilities()
}

/// Asks several questions at once, each under a key unique within the call (in
/// the 2026-07-28 protocol the key names the question on the wire, and answers
/// are matched to questions by it). Answers come back in order.
pub fn ask(questions: &[(&str, Question)]) -> Result<Vec<Answer>, ClientError> {
    imp::ask(questions)
}

fn one(key: &str, q: Question) -> Result<Answer, ClientError> {
    ask(&[(key, q)])?.pop().ok_or_else(|| ClientError("no answer".into()))
}

/// Asks the user to fill in a form. `requested_schema` is a JSON Schema object
/// whose properties are strings, numbers, integers, booleans or enums.
pub fn elicit(key: &str, message: &str, requested_schema: &Value) -> Result<Elicitation, ClientError> {
    match one(key, Question::Elicit { message: message.into(), requested_schema: requested_schema.clone() })? {
        Answer::Elicitation(e) => Ok(e),
        other => Err(ClientError(format!("expected an elicitation answer, got {other:?}"))),
    }
}

/// Asks the client's model for a completion.
pub fn create_message(key: &str, request: &SamplingRequest) -> Result<Sampled, ClientError> {
    match one(key, Question::Sample(request.clone()))? {
        Answer::Sampled(s) => Ok(s),
        other => Err(ClientError(format!("expected a sampling answer, got {other:?}"))),
    }
}

/// Asks the client for its roots.
pub fn list_roots(key: &str) -> Result<Vec<Root>, ClientError> {
    match one(key, Question::ListRoots)? {
        Answer::Roots(r) => Ok(r),
        other => Err(ClientError(format!("expected a roots answer, got {other:?}"))),
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::wasm::bindings::moat::plugin::client as wit;
    use crate::wasm::bindings::moat::plugin::types::Role as WitRole;
    use crate::wasm::{from_wit_content, wit_content};

    pub fn capabilities() -> Capabilities {
        let c = wit::capabilities();
        Capabilities { elicitation: c.elicitation, sampling: c.sampling, roots: c.roots }
    }

    pub fn ask(questions: &[(&str, Question)]) -> Result<Vec<Answer>, ClientError> {
        let questions: Vec<(String, wit::Question)> = questions
            .iter()
            .map(|(k, q)| {
                let q = match q {
                    Question::Elicit { message, requested_schema } => wit::Question::Elicit(wit::ElicitRequest {
                        message: message.clone(),
                        requested_schema: requested_schema.to_string(),
                    }),
                    Question::Sample(r) => wit::Question::Sample(wit::SamplingRequest {
                        messages: r
                            .messages
                            .iter()
                            .map(|m| wit::SamplingMessage {
                                role: match m.role {
                                    Role::User => WitRole::User,
                                    Role::Assistant => WitRole::Assistant,
                                },
                                content: wit_content(m.content.clone()),
                            })
                            .collect(),
                        system_prompt: r.system_prompt.clone(),
                        max_tokens: r.max_tokens,
                        temperature: r.temperature,
                        model_hints: r.model_hints.clone(),
                    }),
                    Question::ListRoots => wit::Question::ListRoots,
                };
                ((*k).to_owned(), q)
            })
            .collect();
        let answers = wit::ask(&questions).map_err(ClientError)?;
        answers
            .into_iter()
            .map(|a| {
                Ok(match a {
                    wit::Answer::Elicit(e) => Answer::Elicitation(Elicitation {
                        action: match e.action {
                            wit::ElicitAction::Accept => ElicitAction::Accept,
                            wit::ElicitAction::Decline => ElicitAction::Decline,
                            wit::ElicitAction::Cancel => ElicitAction::Cancel,
                        },
                        content: match e.content {
                            None => None,
                            Some(s) => Some(
                                serde_json::from_str(&s)
                                    .map_err(|e| ClientError(format!("the answer is not JSON: {e}")))?,
                            ),
                        },
                    }),
                    wit::Answer::Sample(s) => Answer::Sampled(Sampled {
                        role: match s.role {
                            WitRole::User => Role::User,
                            WitRole::Assistant => Role::Assistant,
                        },
                        content: from_wit_content(s.content),
                        model: s.model,
                        stop_reason: s.stop_reason,
                    }),
                    wit::Answer::Roots(r) => {
                        Answer::Roots(r.into_iter().map(|r| Root { uri: r.uri, name: r.name }).collect())
                    }
                })
            })
            .collect()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;

    pub fn capabilities() -> Capabilities {
        crate::testing::client_capabilities()
    }

    pub fn ask(questions: &[(&str, Question)]) -> Result<Vec<Answer>, ClientError> {
        questions.iter().map(|_| crate::testing::next_client_answer()).collect()
    }
}
