//! How a plugin's questions reach the client: as server requests on a 2025-11-25
//! session ([`PeerBridge`]), or as an input-required round trip in 2026-07-28
//! ([`InputBridge`]: answers already given are replayed by key; the first
//! unanswered questions stop the call and go back to the client).

#![allow(deprecated)] // sampling (SEP-2577) is what 2025-11-25 clients use

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Mutex;

use rmcp::model::{ClientCapabilities as McpCaps, CreateMessageRequestParams, ElicitRequestParams};
use rmcp::{Peer, RoleServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::convert;
use crate::runtime::types::{AskOutcome, ClientBridge, ClientCapabilities, Question};

pub fn capabilities(caps: Option<McpCaps>) -> ClientCapabilities {
    caps.map(|c| ClientCapabilities {
        elicitation: c.elicitation.is_some(),
        sampling: c.sampling.is_some(),
        roots: c.roots.is_some(),
    })
    .unwrap_or_default()
}

/// What a request state carries between rounds: the answers so far, by key.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StateBlob {
    pub answers: BTreeMap<String, Value>,
}

/// Asks over a live session.
pub struct PeerBridge {
    peer: Peer<RoleServer>,
    caps: ClientCapabilities,
}

impl PeerBridge {
    pub fn new(peer: Peer<RoleServer>, caps: ClientCapabilities) -> Self {
        PeerBridge { peer, caps }
    }

    async fn ask_one(&self, key: &str, q: &Question) -> Result<crate::runtime::types::Answer, String> {
        let (_, params) = convert::question(q);
        let reply = match q {
            Question::Elicit { .. } => {
                let p: ElicitRequestParams =
                    serde_json::from_value(params).map_err(|e| format!("question `{key}` is not a valid form: {e}"))?;
                self.peer.create_elicitation(p).await.map(|r| serde_json::to_value(r).unwrap_or_default())
            }
            Question::Sample(_) => {
                let p: CreateMessageRequestParams = serde_json::from_value(params)
                    .map_err(|e| format!("question `{key}` is not a valid sampling request: {e}"))?;
                #[allow(deprecated)]
                self.peer.create_message(p).await.map(|r| serde_json::to_value(r).unwrap_or_default())
            }
            Question::ListRoots => self.peer.list_roots().await.map(|r| serde_json::to_value(r).unwrap_or_default()),
        };
        let reply = reply.map_err(|e| format!("the client refused `{key}`: {e}"))?;
        convert::answer(q, &reply).map_err(|e| format!("the answer to `{key}` cannot be read: {e}"))
    }
}

impl ClientBridge for PeerBridge {
    fn capabilities(&self) -> ClientCapabilities {
        self.caps
    }

    fn ask(&self, questions: Vec<(String, Question)>) -> Pin<Box<dyn Future<Output = AskOutcome> + Send + '_>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(questions.len());
            for (key, q) in &questions {
                match self.ask_one(key, q).await {
                    Ok(a) => answers.push(a),
                    Err(e) => return AskOutcome::Failed(e),
                }
            }
            AskOutcome::Answered(answers)
        })
    }
}

/// Answers from the request (input responses plus the sealed state); unanswered
/// questions are kept to send back.
pub struct InputBridge {
    caps: ClientCapabilities,
    given: BTreeMap<String, Value>,
    inner: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Answers the plugin used, carried into the next state.
    used: BTreeMap<String, Value>,
    pending: Vec<(String, Question)>,
}

impl InputBridge {
    pub fn new(caps: ClientCapabilities, given: BTreeMap<String, Value>) -> Self {
        InputBridge { caps, given, inner: Mutex::new(Progress::default()) }
    }

    /// The answers used so far and the questions still open.
    pub fn take(&self) -> (BTreeMap<String, Value>, Vec<(String, Question)>) {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut p.used), std::mem::take(&mut p.pending))
    }
}

impl ClientBridge for InputBridge {
    fn capabilities(&self) -> ClientCapabilities {
        self.caps
    }

    fn ask(&self, questions: Vec<(String, Question)>) -> Pin<Box<dyn Future<Output = AskOutcome> + Send + '_>> {
        Box::pin(async move {
            let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let mut answers = Vec::with_capacity(questions.len());
            for (key, q) in questions {
                match self.given.get(&key) {
                    Some(v) => match convert::answer(&q, v) {
                        Ok(a) => {
                            p.used.insert(key, v.clone());
                            answers.push(a);
                        }
                        Err(e) => return AskOutcome::BadAnswer(format!("inputResponses.{key}: {e}")),
                    },
                    None => p.pending.push((key, q)),
                }
            }
            if p.pending.is_empty() { AskOutcome::Answered(answers) } else { AskOutcome::NeedsInput }
        })
    }
}
