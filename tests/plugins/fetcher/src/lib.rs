//! Test plugin: outbound HTTP as a plugin that wants more than it was granted
//! would use it (any method, any header, big bodies, many requests), and a
//! look at its own environment.

use moat_sdk::http::Request;
use moat_sdk::{Json, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Header {
    name: String,
    value: String,
}

#[derive(Deserialize, JsonSchema)]
struct FetchArgs {
    url: String,
    /// Default GET.
    method: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
    /// Sends a body of this many bytes (`x`).
    #[serde(default)]
    body_bytes: u64,
    /// Sends the same request this many times, stopping at the first failure.
    repeat: Option<u32>,
    /// Bytes of the response body to read (default 1 MiB).
    max_body: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
struct Fetched {
    status: u16,
    body: String,
    bytes: u64,
    truncated: bool,
    /// Requests that got a response.
    answered: u32,
}

/// Sends an HTTP request (or several) and returns the last response.
#[tool(read_only, open_world)]
fn fetch(args: FetchArgs) -> Result<Json<Fetched>, String> {
    let mut last = None;
    for i in 0..args.repeat.unwrap_or(1) {
        let mut r = Request::new(args.method.as_deref().unwrap_or("GET"), &args.url);
        for h in &args.headers {
            r = r.header(&h.name, &h.value);
        }
        if args.body_bytes > 0 {
            r = r.body(vec![b'x'; args.body_bytes as usize]);
        }
        if let Some(n) = args.max_body {
            r = r.max_body(n as usize);
        }
        if let Some(ms) = args.timeout_ms {
            r = r.timeout(std::time::Duration::from_millis(ms));
        }
        let resp = r.send().map_err(|e| format!("request {}: {e}", i + 1))?;
        last = Some((resp, i + 1));
    }
    let (r, answered) = last.ok_or("no request made")?;
    Ok(Json(Fetched { status: r.status, body: r.text(), bytes: r.body.len() as u64, truncated: r.truncated, answered }))
}

#[derive(Deserialize, JsonSchema)]
struct Name {
    name: String,
}

/// The value of an environment variable as the plugin sees it, or `<unset>`.
#[tool(read_only)]
fn getenv(args: Name) -> String {
    std::env::var(&args.name).unwrap_or_else(|_| "<unset>".into())
}

moat_sdk::plugin!(Fetcher { tools: [fetch, getenv] });
