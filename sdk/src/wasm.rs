//! The `moat:plugin` exports, implemented once for every [`Plugin`].

use std::marker::PhantomData;

use crate::content::{Content, ResourceBody, ResourceContents, Role};
use crate::plugin::{self, CallError, Plugin};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.2",
        world: "moat:plugin/plugin@0.1.2",
        pub_export_macro: true,
        export_macro_name: "__export_moat_plugin",
        default_bindings_module: "moat_sdk::wasm::bindings",
        runtime_path: "moat_sdk::wasm::__wit_bindgen_rt::rt",
    });
}

#[doc(hidden)]
pub use bindings::__export_moat_plugin;
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen_rt;

use bindings::exports::moat::plugin::{prompts, resources, tools};
use bindings::moat::plugin::types as wit;

/// Adapts a [`Plugin`] to the generated export traits.
pub struct Exports<P>(PhantomData<P>);

fn wit_error(e: CallError) -> wit::CallError {
    match e {
        CallError::Failed(m) => wit::CallError::Failed(m),
        CallError::InvalidArguments(m) => wit::CallError::InvalidArguments(m),
        CallError::NotFound(m) => wit::CallError::NotFound(m),
    }
}

fn wit_contents(c: ResourceContents) -> wit::ResourceContents {
    wit::ResourceContents {
        uri: c.uri,
        mime_type: c.mime_type,
        body: match c.body {
            ResourceBody::Text(t) => wit::ResourceBody::Text(t),
            ResourceBody::Blob(b) => wit::ResourceBody::Blob(b),
        },
    }
}

pub(crate) fn from_wit_content(c: wit::Content) -> Content {
    match c {
        wit::Content::Text(text) => Content::Text { text },
        wit::Content::Image(m) => Content::Image { data: m.data, mime_type: m.mime_type },
        wit::Content::Audio(m) => Content::Audio { data: m.data, mime_type: m.mime_type },
        wit::Content::Resource(r) => Content::Resource {
            resource: ResourceContents {
                uri: r.uri,
                mime_type: r.mime_type,
                body: match r.body {
                    wit::ResourceBody::Text(t) => ResourceBody::Text(t),
                    wit::ResourceBody::Blob(b) => ResourceBody::Blob(b),
                },
            },
        },
    }
}

pub(crate) fn wit_content(c: Content) -> wit::Content {
    match c {
        Content::Text { text } => wit::Content::Text(text),
        Content::Image { data, mime_type } => wit::Content::Image(wit::Media { data, mime_type }),
        Content::Audio { data, mime_type } => wit::Content::Audio(wit::Media { data, mime_type }),
        Content::Resource { resource } => wit::Content::Resource(wit_contents(resource)),
    }
}

impl<P: Plugin> tools::Guest for Exports<P> {
    fn list_tools() -> Vec<wit::Tool> {
        P::tools()
            .into_iter()
            .map(|t| wit::Tool {
                name: t.name.to_owned(),
                title: t.title.map(str::to_owned),
                description: t.description.to_owned(),
                input_schema: (t.input_schema)().to_string(),
                output_schema: (t.output_schema)().map(|s| s.to_string()),
                annotations: wit::ToolAnnotations {
                    read_only: t.annotations.read_only,
                    destructive: t.annotations.destructive,
                    idempotent: t.annotations.idempotent,
                    open_world: t.annotations.open_world,
                },
            })
            .collect()
    }

    fn call_tool(name: String, arguments: String) -> Result<wit::ToolOutput, wit::CallError> {
        let out = plugin::call_tool::<P>(&name, &arguments).map_err(wit_error)?;
        Ok(wit::ToolOutput {
            content: out.content.into_iter().map(wit_content).collect(),
            structured: out.structured.map(|v| v.to_string()),
        })
    }
}

impl<P: Plugin> resources::Guest for Exports<P> {
    fn list_resources() -> Vec<wit::Resource> {
        P::resources()
            .into_iter()
            .filter(|r| !r.is_template)
            .map(|r| wit::Resource {
                uri: r.uri.to_owned(),
                name: r.name.to_owned(),
                title: r.title.map(str::to_owned),
                description: r.description.map(str::to_owned),
                mime_type: r.mime_type.map(str::to_owned),
            })
            .collect()
    }

    fn list_resource_templates() -> Vec<wit::ResourceTemplate> {
        P::resources()
            .into_iter()
            .filter(|r| r.is_template)
            .map(|r| wit::ResourceTemplate {
                uri_template: r.uri.to_owned(),
                name: r.name.to_owned(),
                title: r.title.map(str::to_owned),
                description: r.description.map(str::to_owned),
                mime_type: r.mime_type.map(str::to_owned),
            })
            .collect()
    }

    fn read_resource(uri: String) -> Result<Vec<wit::ResourceContents>, wit::CallError> {
        let contents = plugin::read_resource::<P>(&uri).map_err(wit_error)?;
        Ok(vec![wit_contents(contents)])
    }
}

impl<P: Plugin> prompts::Guest for Exports<P> {
    fn list_prompts() -> Vec<wit::Prompt> {
        P::prompts()
            .into_iter()
            .map(|p| wit::Prompt {
                name: p.name.to_owned(),
                title: p.title.map(str::to_owned),
                description: p.description.map(str::to_owned),
                arguments: (p.arguments)()
                    .into_iter()
                    .map(|a| wit::PromptArgument { name: a.name, description: a.description, required: a.required })
                    .collect(),
            })
            .collect()
    }

    fn get_prompt(name: String, arguments: Vec<(String, String)>) -> Result<wit::PromptResult, wit::CallError> {
        let args = arguments.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        let result = plugin::get_prompt::<P>(&name, &args).map_err(wit_error)?;
        Ok(wit::PromptResult {
            description: result.description,
            messages: result
                .messages
                .into_iter()
                .map(|m| wit::PromptMessage {
                    role: match m.role {
                        Role::User => wit::Role::User,
                        Role::Assistant => wit::Role::Assistant,
                    },
                    content: wit_content(m.content),
                })
                .collect(),
        })
    }
}
