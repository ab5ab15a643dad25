//! `resources/list`, `resources/templates/list`, `resources/read` and
//! `resources/subscribe`.

use rmcp::RoleServer;
use rmcp::model::*;
use rmcp::service::RequestContext;

use super::call::Target;
use super::{MAX_SUBSCRIPTIONS, MoatServer, convert};
use crate::errors::{McpError, resource_failure};
use crate::runtime::CallError;
use crate::uri_template::MAX_URI_BYTES;

impl MoatServer {
    pub(super) fn resources_list(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: &RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let (items, next) = self.visible_page(cx, &r, |c| &c.resources)?;
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    pub(super) fn templates_list(
        &self,
        r: Option<PaginatedRequestParams>,
        cx: &RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let (items, next) = self.visible_page(cx, &r, |c| &c.templates)?;
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    pub(super) async fn resources_read(
        &self,
        r: ReadResourceRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if r.uri.len() > MAX_URI_BYTES {
            return Err(McpError::UriTooLong);
        }
        let who = self.principal(cx)?;
        let snapshot = self.admitted(cx, &who, Target::Resource(r.uri.clone())).await?;
        let Some(resource) = snapshot.registry.resource(&r.uri) else {
            return Err(McpError::NoResource(r.uri));
        };
        let inputs = self.open_inputs(&r.uri, &who, r.request_state.as_deref(), r.input_responses.as_ref())?;
        let call = self.prepare(cx, &who, inputs);
        let runtime = &self.state().runtime;
        match self.run_call(cx, call.events, runtime.read_resource(resource.plugin, &r.uri, &call.ctx)).await? {
            Ok(contents) => Ok(ReadResourceResult::new(contents.iter().map(convert::contents).collect()).into()),
            Err(CallError::InputRequired) => Ok(self.input_required(&r.uri, &who, call.input.as_deref())?.into()),
            Err(e) => Err(resource_failure(e, &r.uri)),
        }
    }

    /// Templates match endless URIs: a session holds a bounded set, of URIs
    /// the caller may read.
    pub(super) async fn resources_subscribe(
        &self,
        r: SubscribeRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if r.uri.len() > MAX_URI_BYTES {
            return Err(McpError::UriTooLong);
        }
        let who = self.principal(cx)?;
        let snapshot = self.state().snapshot();
        let Some(resource) = snapshot.registry.resource(&r.uri) else {
            return Err(McpError::NoResource(r.uri));
        };
        resource.access.admit(&who, &format!("resource `{}`", r.uri), &self.state().rate_limits).await?;
        let mut subscribed = self.session.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        if subscribed.len() >= MAX_SUBSCRIPTIONS && !subscribed.contains(&r.uri) {
            return Err(McpError::TooManySubscriptions(MAX_SUBSCRIPTIONS));
        }
        subscribed.insert(r.uri, resource.plugin);
        Ok(())
    }
}
