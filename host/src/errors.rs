//! The one place where refusals and failures become answers on the wire: each
//! kind knows its HTTP status, its JSON-RPC code and, for the auth refusals,
//! its `WWW-Authenticate` challenge. The HTTP edge, the MCP handlers and stdio
//! all answer through here, so one refusal gets one code on every transport.

use std::borrow::Cow;

use http::StatusCode;
use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

use crate::runtime::CallError;
use crate::text::shown;
use crate::uri_template::MAX_URI_BYTES;

/// JSON-RPC codes moat chooses beyond those JSON-RPC and MCP define.
mod code {
    use rmcp::model::ErrorCode;
    /// No bearer token, or one that does not verify (HTTP 401).
    pub const UNAUTHENTICATED: ErrorCode = ErrorCode(-32001);
    /// The token lacks a scope the request needs (HTTP 403).
    pub const INSUFFICIENT_SCOPE: ErrorCode = ErrorCode(-32003);
    /// The caller used up a tool's rate limit (HTTP 429).
    pub const RATE_LIMITED: ErrorCode = ErrorCode(-32029);
    /// The client cancelled the request.
    pub const CANCELLED: ErrorCode = ErrorCode(-32800);
}

/// A request moat will not serve, for a reason the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No bearer token at all.
    #[error("no bearer token")]
    NoToken,
    /// A token that does not verify.
    #[error("the token is invalid: {0}")]
    InvalidToken(String),
    /// A valid token without every scope `what` needs.
    #[error("insufficient scope: {what} needs {needed}")]
    InsufficientScope { what: String, needed: String },
    /// The caller used up `tool`'s allowance.
    #[error("rate limit of {per_minute} calls per minute for `{tool}` reached; retry in {retry_after_s} s")]
    RateLimited { tool: String, per_minute: u32, retry_after_s: u64 },
    #[error("origin `{0}` is not allowed")]
    Origin(String),
    #[error("Content-Type must be application/json, not `{0}`")]
    MediaType(String),
    #[error("the request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    #[error("parse error: {0}")]
    Parse(String),
    /// A message that is not a JSON-RPC request moat serves.
    #[error("{0}")]
    Malformed(String),
    /// An `Mcp-Session-Id` this server does not know (never issued, or ended).
    #[error("unknown or expired session")]
    UnknownSession,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoToken | Refusal::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Refusal::InsufficientScope { .. } | Refusal::Origin(_) => StatusCode::FORBIDDEN,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Parse(_) | Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::UnknownSession => StatusCode::NOT_FOUND,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::NoToken | Refusal::InvalidToken(_) => code::UNAUTHENTICATED,
            Refusal::InsufficientScope { .. } => code::INSUFFICIENT_SCOPE,
            Refusal::RateLimited { .. } => code::RATE_LIMITED,
            Refusal::Parse(_) => ErrorCode::PARSE_ERROR,
            Refusal::Origin(_)
            | Refusal::MediaType(_)
            | Refusal::TooLarge(_)
            | Refusal::Malformed(_)
            | Refusal::UnknownSession => ErrorCode::INVALID_REQUEST,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3, RFC 9728 §5.1) pointing at
    /// `metadata` (the protected-resource metadata URL), for the auth refusals.
    /// `scopes` is what a token for this server may ask for.
    pub fn challenge(&self, metadata: &str, scopes: &str) -> Option<String> {
        match self {
            Refusal::NoToken => Some(format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scopes}\"")),
            Refusal::InvalidToken(_) => {
                Some(format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scopes}\", error=\"invalid_token\""))
            }
            Refusal::InsufficientScope { needed, .. } => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=\"{metadata}\""
            )),
            _ => None,
        }
    }

    /// Seconds until a retry can succeed (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        }
    }

    pub fn to_error_data(&self) -> ErrorData {
        ErrorData::new(self.code(), self.to_string(), None)
    }

    /// The JSON-RPC error response for the request `id`.
    pub fn to_response_body(&self, id: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "error": self.to_error_data()})
    }
}

/// Why an MCP request got an error instead of a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("unknown prompt `{0}`")]
    UnknownPrompt(String),
    #[error("no resource at `{0}`")]
    NoResource(String),
    #[error("the URI is longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    #[error("invalid cursor `{0}`")]
    InvalidCursor(String),
    #[error("prompt `{prompt}` needs the argument(s): {missing}")]
    MissingPromptArguments { prompt: String, missing: String },
    #[error("no such prompt argument or resource template")]
    NoCompletionTarget,
    #[error("a session may hold at most {0} resource subscriptions")]
    TooManySubscriptions(usize),
    #[error("requestState was not issued by this server for this request, or has expired")]
    BadRequestState,
    #[error("request cancelled")]
    Cancelled,
    /// A call that did not produce a result (see [`CallOutcome`] for which
    /// failures are tool results instead).
    #[error(transparent)]
    Call(CallError),
    /// A resource read the plugin answered "not found".
    #[error("{message}")]
    ResourceCall { message: String, uri: String },
    #[error("{0}")]
    Internal(Cow<'static, str>),
}

impl From<McpError> for ErrorData {
    fn from(e: McpError) -> Self {
        let message = e.to_string();
        match e {
            McpError::Refused(r) => r.to_error_data(),
            McpError::NoResource(uri) | McpError::ResourceCall { uri, .. } => {
                ErrorData::new(ErrorCode::RESOURCE_NOT_FOUND, message, Some(json!({"uri": uri})))
            }
            McpError::UnknownTool(_)
            | McpError::UnknownPrompt(_)
            | McpError::UriTooLong
            | McpError::InvalidCursor(_)
            | McpError::MissingPromptArguments { .. }
            | McpError::NoCompletionTarget
            | McpError::BadRequestState => ErrorData::new(ErrorCode::INVALID_PARAMS, message, None),
            McpError::TooManySubscriptions(_) => ErrorData::new(ErrorCode::INVALID_REQUEST, message, None),
            McpError::Cancelled => ErrorData::new(code::CANCELLED, message, None),
            McpError::Call(c) => match c {
                CallError::NotFound(_) | CallError::InvalidArguments(_) => {
                    ErrorData::new(ErrorCode::INVALID_PARAMS, message, None)
                }
                CallError::MissingCapability(cap) => ErrorData::new(
                    ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                    format!("this tool needs the client capability `{cap}`"),
                    Some(json!({"requiredCapabilities": {cap: {}}})),
                ),
                _ => ErrorData::new(ErrorCode::INTERNAL_ERROR, message, None),
            },
            McpError::Internal(_) => ErrorData::new(ErrorCode::INTERNAL_ERROR, message, None),
        }
    }
}

impl McpError {
    pub fn invalid_cursor(cursor: &str) -> Self {
        McpError::InvalidCursor(shown(cursor))
    }
}

/// What a tool call's failure becomes: a tool result with `isError` (the tool
/// ran, or the sandbox stopped it: the model should see why) or a protocol
/// error (the request itself was wrong).
pub enum CallOutcome {
    ToolError(String),
    Protocol(McpError),
}

pub fn tool_failure(e: CallError) -> CallOutcome {
    match e {
        CallError::Failed(_)
        | CallError::Timeout(_)
        | CallError::MemoryLimit(_)
        | CallError::HttpLimit(_)
        | CallError::OutputTooLarge { .. }
        | CallError::Crashed(_)
        | CallError::BadOutput(_)
        | CallError::Busy(_) => CallOutcome::ToolError(e.to_string()),
        e => CallOutcome::Protocol(McpError::Call(e)),
    }
}

/// What a resource read's failure becomes: the plugin's "not found" is
/// MCP's resource-not-found with the URI; the rest as for any call.
pub fn resource_failure(e: CallError, uri: &str) -> McpError {
    match e {
        CallError::NotFound(message) => McpError::ResourceCall { message, uri: uri.to_owned() },
        e => McpError::Call(e),
    }
}

/// The metrics and audit label of a call's outcome.
pub fn outcome_label<T>(r: &Result<T, CallError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(CallError::Failed(_)) => "tool_error",
        Err(CallError::InvalidArguments(_)) => "invalid_arguments",
        Err(CallError::NotFound(_)) => "not_found",
        Err(CallError::Timeout(_)) => "timeout",
        Err(CallError::MemoryLimit(_)) => "memory_limit",
        Err(CallError::HttpLimit(_)) => "http_limit",
        Err(CallError::OutputTooLarge { .. }) => "output_too_large",
        Err(CallError::Crashed(_)) => "crashed",
        Err(CallError::BadOutput(_)) => "bad_output",
        Err(CallError::InputRequired) => "input_required",
        Err(CallError::MissingCapability(_)) => "missing_capability",
        Err(CallError::Busy(_)) => "busy",
        Err(CallError::Host(_)) => "host_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_one_status_and_code() {
        let scope = Refusal::InsufficientScope { what: "`t`".into(), needed: "a b".into() };
        assert_eq!((scope.status(), scope.code()), (StatusCode::FORBIDDEN, code::INSUFFICIENT_SCOPE));
        assert_eq!(ErrorData::from(McpError::from(scope.clone())).code, code::INSUFFICIENT_SCOPE);
        assert!(scope.challenge("m", "s").unwrap().contains("error=\"insufficient_scope\", scope=\"a b\""));
        let limited = Refusal::RateLimited { tool: "t".into(), per_minute: 5, retry_after_s: 3 };
        assert_eq!((limited.status(), limited.retry_after()), (StatusCode::TOO_MANY_REQUESTS, Some(3)));
        assert!(Refusal::InvalidToken("x".into()).challenge("m", "s").unwrap().ends_with("error=\"invalid_token\""));
        assert!(!Refusal::NoToken.challenge("m", "s").unwrap().contains("error="));
        assert_eq!(Refusal::UnknownSession.status(), StatusCode::NOT_FOUND);
        assert_eq!(Refusal::Parse("x".into()).code(), ErrorCode::PARSE_ERROR);
    }

    #[test]
    fn sandbox_stops_are_tool_errors_and_bad_requests_are_not() {
        assert!(matches!(tool_failure(CallError::Timeout(5)), CallOutcome::ToolError(m) if m.contains("5 ms")));
        assert!(matches!(
            tool_failure(CallError::InvalidArguments("x".into())),
            CallOutcome::Protocol(McpError::Call(_))
        ));
        let e = ErrorData::from(resource_failure(CallError::NotFound("gone".into()), "a://b"));
        assert_eq!((e.code, e.data), (ErrorCode::RESOURCE_NOT_FOUND, Some(json!({"uri": "a://b"}))));
    }
}
