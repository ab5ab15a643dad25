//! A plugin that declares and does whatever `/spec/spec.json` (in the directory
//! the test grants it as `/spec`) says, on the raw 0.1.2 bindings with no SDK in
//! the way: so a hostile test can write the exact catalogue or behaviour it
//! needs (exponential schemas, 100,000 tools, control characters in names,
//! catch-all templates, a catalogue read that never ends, floods of events...).
//!
//! `spec.json`:
//! ```json
//! {
//!   "list_sleep_ms": 0,
//!   "tools": [{"name": "t", "description": "...", "title": null,
//!              "input": {"type": "object"}, "output": null, "do": "ok"}],
//!   "generate_tools": {"count": 0, "description_bytes": 10},
//!   "resources": [{"uri": "a://b", "name": "b"}],
//!   "templates": [{"uri_template": "a://{x}", "name": "x"}],
//!   "prompts": [{"name": "p", "description": null, "arguments": []}]
//! }
//! ```
//! What a tool does (`do`), reading its arguments:
//! - `ok`: returns "ok";
//! - `structured`: returns `value` as structured content;
//! - `progress`: `n` progress reports with messages of `bytes` bytes;
//! - `log`: `n` log lines of `text`;
//! - `ask_roots`: asks for the roots `n` times, one round each, and says how
//!   many rounds were answered;
//! - `ask_many`: one round of `n` roots questions;
//! - `elicit`: asks the user one (empty) form;
//! - `items`: `n` empty text items;
//! - `sleep`: sleeps `ms` milliseconds;
//! - `spin`: runs until stopped.
//!
//! Prompts return `n` messages of `bytes` bytes each, from their arguments.

#[cfg(target_arch = "wasm32")]
mod plugin {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.2", world: "moat:plugin/plugin@0.1.2" });

    use exports::moat::plugin::{prompts, resources, tools};
    use moat::plugin::types::*;
    use moat::plugin::{client, log, progress};
    use serde_json::Value;

    struct Mimic;

    fn spec() -> Value {
        std::fs::read_to_string("/spec/spec.json")
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    fn text(v: &Value, key: &str) -> Option<String> {
        v.get(key).and_then(Value::as_str).map(str::to_owned)
    }

    fn num(v: &Value, key: &str) -> u64 {
        v.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    fn list(v: &Value, key: &str) -> Vec<Value> {
        v.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
    }

    fn tool_of(t: &Value) -> Tool {
        Tool {
            name: text(t, "name").unwrap_or_default(),
            title: text(t, "title"),
            description: text(t, "description").unwrap_or_else(|| "A mimic tool.".into()),
            input_schema: t.get("input").map_or_else(|| r#"{"type":"object"}"#.into(), Value::to_string),
            output_schema: t.get("output").filter(|o| !o.is_null()).map(Value::to_string),
            annotations: ToolAnnotations { read_only: true, destructive: false, idempotent: true, open_world: false },
        }
    }

    impl tools::Guest for Mimic {
        fn list_tools() -> Vec<Tool> {
            let spec = spec();
            let sleep = num(&spec, "list_sleep_ms");
            if sleep > 0 {
                std::thread::sleep(std::time::Duration::from_millis(sleep));
            }
            let mut tools: Vec<Tool> = list(&spec, "tools").iter().map(tool_of).collect();
            if let Some(g) = spec.get("generate_tools") {
                let description = "d".repeat(num(g, "description_bytes").max(1) as usize);
                for i in 0..num(g, "count") {
                    tools.push(tool_of(&serde_json::json!({"name": format!("gen_{i}"), "description": description})));
                }
            }
            tools
        }

        fn call_tool(name: String, arguments: String) -> Result<ToolOutput, CallError> {
            let spec = spec();
            let tool = list(&spec, "tools").into_iter().find(|t| text(t, "name").as_deref() == Some(&name));
            let what = tool.as_ref().and_then(|t| text(t, "do")).unwrap_or_else(|| "ok".into());
            let args: Value = serde_json::from_str(&arguments).unwrap_or(Value::Null);
            let say = |s: String| Ok(ToolOutput { content: vec![Content::Text(s)], structured: None });
            match what.as_str() {
                "structured" => Ok(ToolOutput {
                    content: Vec::new(),
                    structured: Some(args.get("value").cloned().unwrap_or(Value::Null).to_string()),
                }),
                "progress" => {
                    let message = "p".repeat(num(&args, "bytes") as usize);
                    let n = num(&args, "n");
                    for i in 0..n {
                        progress::report(i as f64, Some(n as f64), Some(&message));
                    }
                    say(format!("sent {n}"))
                }
                "log" => {
                    let line = text(&args, "text").unwrap_or_default();
                    let n = num(&args, "n");
                    for _ in 0..n {
                        log::log(log::Level::Warning, &line);
                    }
                    say(format!("logged {n}"))
                }
                "ask_roots" => {
                    let mut answered = 0;
                    for i in 0..num(&args, "n") {
                        match client::ask(&[(format!("r{i}"), client::Question::ListRoots)]) {
                            Ok(_) => answered += 1,
                            Err(e) => return say(format!("answered {answered}, then: {e}")),
                        }
                    }
                    say(format!("answered {answered}"))
                }
                "ask_many" => {
                    let questions: Vec<(String, client::Question)> =
                        (0..num(&args, "n")).map(|i| (format!("q{i}"), client::Question::ListRoots)).collect();
                    match client::ask(&questions) {
                        Ok(a) => say(format!("answered {}", a.len())),
                        Err(e) => say(format!("refused: {e}")),
                    }
                }
                "elicit" => {
                    let form = client::ElicitRequest {
                        message: "Go on?".into(),
                        requested_schema: r#"{"type":"object","properties":{}}"#.into(),
                    };
                    match client::ask(&[("e".into(), client::Question::Elicit(form))]) {
                        Ok(_) => say("answered".into()),
                        Err(e) => say(format!("refused: {e}")),
                    }
                }
                "items" => Ok(ToolOutput {
                    content: (0..num(&args, "n")).map(|_| Content::Text(String::new())).collect(),
                    structured: None,
                }),
                "sleep" => {
                    std::thread::sleep(std::time::Duration::from_millis(num(&args, "ms")));
                    say("awake".into())
                }
                "spin" => {
                    let mut x: u64 = 0;
                    loop {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                _ => say("ok".into()),
            }
        }
    }

    impl resources::Guest for Mimic {
        fn list_resources() -> Vec<Resource> {
            list(&spec(), "resources")
                .iter()
                .map(|r| Resource {
                    uri: text(r, "uri").unwrap_or_default(),
                    name: text(r, "name").unwrap_or_else(|| "r".into()),
                    title: text(r, "title"),
                    description: text(r, "description"),
                    mime_type: text(r, "mime_type"),
                })
                .collect()
        }

        fn list_resource_templates() -> Vec<ResourceTemplate> {
            list(&spec(), "templates")
                .iter()
                .map(|r| ResourceTemplate {
                    uri_template: text(r, "uri_template").unwrap_or_default(),
                    name: text(r, "name").unwrap_or_else(|| "t".into()),
                    title: text(r, "title"),
                    description: text(r, "description"),
                    mime_type: text(r, "mime_type"),
                })
                .collect()
        }

        fn read_resource(uri: String) -> Result<Vec<ResourceContents>, CallError> {
            Ok(vec![ResourceContents {
                uri: uri.clone(),
                mime_type: None,
                body: ResourceBody::Text(format!("mimic read {uri}")),
            }])
        }
    }

    impl prompts::Guest for Mimic {
        fn list_prompts() -> Vec<Prompt> {
            list(&spec(), "prompts")
                .iter()
                .map(|p| Prompt {
                    name: text(p, "name").unwrap_or_default(),
                    title: text(p, "title"),
                    description: text(p, "description"),
                    arguments: list(p, "arguments")
                        .iter()
                        .map(|a| PromptArgument {
                            name: text(a, "name").unwrap_or_default(),
                            description: text(a, "description"),
                            required: false,
                        })
                        .collect(),
                })
                .collect()
        }

        fn get_prompt(_name: String, arguments: Vec<(String, String)>) -> Result<PromptResult, CallError> {
            let arg = |k: &str| arguments.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.parse::<u64>().ok());
            let body = "m".repeat(arg("bytes").unwrap_or(1) as usize);
            Ok(PromptResult {
                description: None,
                messages: (0..arg("n").unwrap_or(1))
                    .map(|_| PromptMessage { role: Role::User, content: Content::Text(body.clone()) })
                    .collect(),
            })
        }
    }

    export!(Mimic);
}
