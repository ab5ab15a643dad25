//! moat: an MCP host that runs every tool as a sandboxed WebAssembly component.
//!
//! Library layout (see ARCHITECTURE.md): [`config`] parses and validates
//! `moat.toml` and plugin sidecars ([`egress`]: the outbound HTTP grants);
//! [`runtime`] compiles and runs plugins, one fresh sandboxed instance per call;
//! [`registry`] loads a plugins folder into an immutable snapshot and [`watch`]
//! keeps it in step with the folder (hot reload); [`oci`] pulls signed plugins
//! from OCI registries into it; [`mcp`] and [`http`] serve the current snapshot;
//! [`fleet`] lets replicas behind a load balancer act as one server.

pub mod auth;
pub mod config;
pub mod egress;
pub mod errors;
pub mod fleet;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod oci;
pub mod policy;
pub mod registry;
pub mod runtime;
pub mod schema;
pub mod secrets;
pub mod state;
pub mod text;
pub mod uri_template;
pub mod watch;
