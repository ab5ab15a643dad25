//! `tools/list` and `tools/call`.

use std::time::Instant;

use rmcp::RoleServer;
use rmcp::model::*;
use rmcp::service::RequestContext;
use serde_json::Value;

use super::call::Target;
use super::{MoatServer, convert};
use crate::errors::{CallOutcome, McpError, outcome_label, tool_failure};
use crate::runtime::CallError;

impl MoatServer {
    /// Only what the caller may call: the list varies by token, not by connection.
    pub(super) fn tools_list(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: &RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let (tools, next) = self.visible_page(cx, &r, |c| &c.tools)?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    pub(super) async fn tools_call(
        &self,
        r: CallToolRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let who = self.principal(cx)?;
        let snapshot = self.admitted(cx, &who, Target::Tool(r.name.to_string())).await?;
        let Some(tool) = snapshot.registry.tool(&r.name) else {
            return Err(McpError::UnknownTool(r.name.to_string()));
        };
        let plugin = tool.plugin;
        let arguments = Value::Object(r.arguments.unwrap_or_default());
        let inputs = self.open_inputs(&r.name, &who, r.request_state.as_deref(), r.input_responses.as_ref())?;
        let call = self.prepare(cx, &who, inputs);
        let started = Instant::now();
        let runtime = &self.state().runtime;
        let result = self.run_call(cx, call.events, runtime.call_tool(plugin, &r.name, &arguments, &call.ctx)).await?;
        let took = started.elapsed();
        let outcome = outcome_label(&result);
        self.state().metrics.tool_call(&r.name, outcome, took);
        tracing::info!(
            target: "moat::audit",
            subject = ?who.subject(),
            client_id = ?who.caller().and_then(|c| c.client_id.as_deref()).unwrap_or("-"),
            tool = %r.name,
            plugin = %plugin.name,
            plugin_sha256 = %&plugin.hash[..16],
            outcome,
            duration_ms = took.as_secs_f64() * 1e3,
            "tool call"
        );
        match result {
            Ok(out) => Ok(convert::tool_result(out).into()),
            Err(CallError::InputRequired) => Ok(self.input_required(&r.name, &who, call.input.as_deref())?.into()),
            Err(e) => match tool_failure(e) {
                CallOutcome::ToolError(message) => Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into()),
                CallOutcome::Protocol(e) => Err(e),
            },
        }
    }
}
