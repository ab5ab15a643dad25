//! moat's integration tests: one binary, driving real components built from
//! source (`cargo xtask build-plugins`) through the runtime and the `moat` CLI.

mod common;
#[path = "../support/loopback.rs"]
mod loopback;
mod server;

mod auth;
mod bounded;
mod cache;
mod cli;
mod egress;
mod first_party;
mod fleet;
mod http;
mod jwks;
mod languages;
mod oci;
mod reload;
mod sandbox;
mod serve;
