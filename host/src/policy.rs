//! Who may use a tool, and how often: per-tool scopes (SPEC §3 defaults) and
//! per-subject rate limits.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Caller;
use crate::config::RateLimit;
use crate::runtime::LoadedPlugin;
use crate::runtime::types::ToolInfo;

/// The scope read-only tools need when the sidecar names none.
pub const READ_SCOPE: &str = "tools:read";
/// The scope every other tool needs when the sidecar names none.
pub const WRITE_SCOPE: &str = "tools:write";

/// All of these scopes are needed to list and call `tool`.
pub fn required_scopes(plugin: &LoadedPlugin, tool: &ToolInfo) -> Vec<String> {
    match plugin.settings.tools.get(&tool.name).and_then(|p| p.scopes.clone()) {
        Some(scopes) => scopes,
        None if tool.annotations.read_only => vec![READ_SCOPE.to_owned()],
        None => vec![WRITE_SCOPE.to_owned()],
    }
}

/// All of these scopes are needed to list and read a plugin's resources, or to
/// list and get its prompts (the sidecar's `[resources]`/`[prompts]`, else
/// `tools:read`).
pub fn content_scopes(policy: &crate::config::ContentPolicy) -> Vec<String> {
    policy.scopes.clone().unwrap_or_else(|| vec![READ_SCOPE.to_owned()])
}

/// Whether `caller` holds every scope in `needed`. No caller (stdio) may use all.
pub fn permits(caller: Option<&Caller>, needed: &[String]) -> bool {
    caller.is_none_or(|c| needed.iter().all(|n| c.scopes.iter().any(|s| s == n)))
}

/// One tool's limiter, keyed by token subject.
type SubjectLimiter = Arc<DefaultKeyedRateLimiter<String>>;

/// Rate limiters per tool and limit (a changed sidecar limit gets a new one).
#[derive(Default)]
pub struct RateLimits {
    limiters: Mutex<HashMap<(String, RateLimit), SubjectLimiter>>,
}

impl RateLimits {
    /// Takes one call from `subject`'s allowance for `tool`; when it is spent,
    /// says how long until the next call would be allowed.
    pub fn check(&self, tool: &str, limit: RateLimit, subject: &str) -> Result<(), Duration> {
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 10_000 {
                map.clear();
            }
            map.entry((tool.to_owned(), limit))
                .or_insert_with(|| {
                    let per_minute = NonZeroU32::new(limit.per_minute).unwrap_or(NonZeroU32::MIN);
                    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
                    Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)))
                })
                .clone()
        };
        let result = limiter.check_key(&subject.to_owned());
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        result.map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}
