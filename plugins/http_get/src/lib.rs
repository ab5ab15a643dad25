//! `http_get`: fetch a URL from the origins the operator granted, and return
//! its status, content type and the start of its body as text.
//!
//! The plugin has no network of its own: every request goes through the moat
//! host, which allows only the origins in the plugin's sidecar
//! (`[grants] http`), never reaches a private or loopback address unless that
//! address is granted, and adds any secret header the operator configured.

use moat_sdk::http::Request;
use moat_sdk::{Json, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Bytes of the body read; the rest is dropped unread.
const READ_LIMIT: usize = 64 << 10;
/// Characters of the body returned.
const EXCERPT_CHARS: usize = 4000;

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// The URL to fetch (http:// or https://), on an origin granted to this plugin.
    url: String,
}

/// The response: status, content type, and the body's first characters as text.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Fetched {
    status: u16,
    /// The `Content-Type` header, if the server sent one.
    content_type: Option<String>,
    /// The body as text (invalid UTF-8 replaced), cut to 4,000 characters.
    body: String,
    /// Whether the body was longer than what is returned.
    truncated: bool,
}

/// Fetches a URL with GET from an origin granted to this plugin and returns the status, the content type and a text excerpt of the body. Redirects are returned, not followed.
#[tool(read_only, open_world, title = "HTTP GET")]
fn http_get(args: Args) -> Result<Json<Fetched>, String> {
    let r = Request::get(&args.url).max_body(READ_LIMIT).send()?;
    let (body, cut) = excerpt(&r.text(), EXCERPT_CHARS);
    Ok(Json(Fetched {
        status: r.status,
        content_type: r.header("content-type").map(str::to_owned),
        body,
        truncated: cut || r.truncated,
    }))
}

/// The first `chars` characters of `text`, and whether any were left out.
fn excerpt(text: &str, chars: usize) -> (String, bool) {
    match text.char_indices().nth(chars) {
        Some((end, _)) => (text[..end].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

moat_sdk::plugin!(HttpGet { tools: [http_get] });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("héllo", 2), ("hé".to_owned(), true));
        assert_eq!(excerpt("héllo", 5), ("héllo".to_owned(), false));
    }

    #[test]
    fn natively_there_is_no_host_to_send_through() {
        let e = http_get(Args { url: "https://example.com/".into() }).unwrap_err();
        assert!(e.contains("https://example.com") && e.contains("NoHost"), "{e}");
        let e = http_get(Args { url: "ftp://example.com/".into() }).unwrap_err();
        assert!(e.contains("only http and https"), "{e}");
    }
}
