//! `prompts/list`, `prompts/get` and completions (which WIT 0.1 cannot offer).

use rmcp::RoleServer;
use rmcp::model::*;
use rmcp::service::RequestContext;
use serde_json::Value;

use super::call::Target;
use super::{MoatServer, convert};
use crate::errors::McpError;
use crate::runtime::CallError;

impl MoatServer {
    pub(super) fn prompts_list(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: &RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let (items, next) = self.visible_page(cx, &r, |c| &c.prompts)?;
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    pub(super) async fn prompts_get(
        &self,
        r: GetPromptRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let who = self.principal(cx)?;
        let snapshot = self.admitted(cx, &who, Target::Prompt(r.name.clone())).await?;
        let Some(prompt) = snapshot.registry.prompt(&r.name) else {
            return Err(McpError::UnknownPrompt(r.name));
        };
        let given = r.arguments.clone().unwrap_or_default();
        let missing: Vec<&str> = prompt
            .item
            .arguments
            .iter()
            .filter(|a| a.required && !given.contains_key(&a.name))
            .map(|a| &*a.name)
            .collect();
        if !missing.is_empty() {
            return Err(McpError::MissingPromptArguments { prompt: r.name.clone(), missing: missing.join(", ") });
        }
        let args: Vec<(String, String)> = given
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        let inputs = self.open_inputs(&r.name, &who, r.request_state.as_deref(), r.input_responses.as_ref())?;
        let call = self.prepare(cx, &who, inputs);
        let runtime = &self.state().runtime;
        match self.run_call(cx, call.events, runtime.get_prompt(prompt.plugin, &r.name, &args, &call.ctx)).await? {
            Ok(p) => Ok(convert::prompt_result(&p).into()),
            Err(CallError::InputRequired) => Ok(self.input_required(&r.name, &who, call.input.as_deref())?.into()),
            Err(e) => Err(McpError::Call(e)),
        }
    }

    /// WIT 0.1 has no completion export: check the reference, offer nothing.
    pub(super) fn completion(&self, r: CompleteRequestParams) -> Result<CompleteResult, McpError> {
        let snapshot = self.state().snapshot();
        let registry = &snapshot.registry;
        let known = match &r.r#ref {
            Reference::Prompt(p) => {
                registry.prompt(&p.name).is_some_and(|pr| pr.item.arguments.iter().any(|a| a.name == r.argument.name))
            }
            Reference::Resource(t) => {
                registry.plugins().iter().any(|pl| pl.resource_templates.iter().any(|rt| rt.uri_template == t.uri))
            }
            _ => false,
        };
        if !known {
            return Err(McpError::NoCompletionTarget);
        }
        let info = CompletionInfo::new(Vec::new()).map_err(|e| McpError::Internal(e.into()))?;
        Ok(CompleteResult::new(info))
    }
}
