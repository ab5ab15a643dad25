//! Write moat tool plugins as plain, typed Rust functions.
//!
//! ```text
//! use moat_sdk::{tool, Json};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Args { name: String }
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct Greeting { text: String }
//!
//! /// Greets someone by name.
//! #[tool(read_only)]
//! fn greet(args: Args) -> Result<Json<Greeting>, String> {
//!     Ok(Json(Greeting { text: format!("Hello, {}!", args.name) }))
//! }
//!
//! moat_sdk::plugin!(Greeter { tools: [greet] });
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the `.wasm` file is
//! the plugin. Natively (in `cargo test`), [`testing`] calls the same functions.

// Generated code names this crate by its public name, from inside it too.
extern crate self as moat_sdk;

mod content;
mod host;
mod plugin;
mod uri_template;

pub mod client;
pub mod http;
pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use content::{Content, Json, PromptMessage, ResourceBody, ResourceContents, Role, ToolOutput};
pub use host::{Identity, LogLevel, VolumeStats, VolumeStatsError, caller, log, progress, volume_stats};
pub use moat_sdk_macros::{prompt, resource, tool};
pub use plugin::{Annotations, CallError, Plugin, PromptArgument, PromptDef, PromptResult, ResourceDef, ToolDef};
pub use uri_template::UriVars;

/// Re-exports used by the code the macros generate. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::plugin::{
        IntoPromptResult, IntoResourceBody, IntoToolResult, ToolReturn, parse_args, parse_prompt_args,
        prompt_arguments, schema_of,
    };
    pub use schemars;
    pub use serde;
    pub use serde_json;
}

/// Declares the plugin: names a type and lists its tools, resources and prompts.
///
/// ```text
/// moat_sdk::plugin!(DiskUsage {
///     tools: [disk_usage],
///     resources: [limits],
///     prompts: [triage],
/// });
/// ```
///
/// On `wasm32` this also exports the `moat:plugin` world; natively the type can be
/// handed to [`testing`].
#[macro_export]
macro_rules! plugin {
    ($name:ident {
        $(tools: [$($tool:ident),* $(,)?] $(,)?)?
        $(resources: [$($resource:ident),* $(,)?] $(,)?)?
        $(prompts: [$($prompt:ident),* $(,)?] $(,)?)?
    }) => {
        /// The plugin, as declared with `moat_sdk::plugin!`.
        pub struct $name;

        impl $crate::Plugin for $name {
            fn tools() -> ::std::vec::Vec<$crate::ToolDef> {
                ::std::vec![$($($tool::__moat_def()),*)?]
            }
            fn resources() -> ::std::vec::Vec<$crate::ResourceDef> {
                ::std::vec![$($($resource::__moat_def()),*)?]
            }
            fn prompts() -> ::std::vec::Vec<$crate::PromptDef> {
                ::std::vec![$($($prompt::__moat_def()),*)?]
            }
        }

        $crate::__export_wasm!($name);
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_wasm {
    ($name:ident) => {
        #[doc(hidden)]
        type __MoatExports = $crate::wasm::Exports<$name>;
        $crate::wasm::__export_moat_plugin!(__MoatExports with_types_in $crate::wasm::bindings);
    };
}

#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_wasm {
    ($name:ident) => {};
}
