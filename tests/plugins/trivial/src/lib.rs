//! One tool, `noop`, written on the raw WIT bindings without the SDK: the
//! smallest component the host can run, used as the benchmark baseline.

#[cfg(target_arch = "wasm32")]
mod plugin {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "moat:plugin/plugin@0.1.0" });

    use exports::moat::plugin::{prompts, resources, tools};
    use moat::plugin::types::*;

    struct Trivial;

    impl tools::Guest for Trivial {
        fn list_tools() -> Vec<Tool> {
            vec![Tool {
                name: "noop".into(),
                title: None,
                description: "Does nothing.".into(),
                input_schema: r#"{"type":"object"}"#.into(),
                output_schema: None,
                annotations: ToolAnnotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            }]
        }
        fn call_tool(_name: String, _arguments: String) -> Result<ToolOutput, CallError> {
            Ok(ToolOutput { content: vec![Content::Text("ok".into())], structured: None })
        }
    }

    impl resources::Guest for Trivial {
        fn list_resources() -> Vec<Resource> {
            Vec::new()
        }
        fn list_resource_templates() -> Vec<ResourceTemplate> {
            Vec::new()
        }
        fn read_resource(uri: String) -> Result<Vec<ResourceContents>, CallError> {
            Err(CallError::NotFound(uri))
        }
    }

    impl prompts::Guest for Trivial {
        fn list_prompts() -> Vec<Prompt> {
            Vec::new()
        }
        fn get_prompt(name: String, _arguments: Vec<(String, String)>) -> Result<PromptResult, CallError> {
            Err(CallError::NotFound(name))
        }
    }

    export!(Trivial);
}
