//! Who may use a tool, and how often: per-tool scopes (defaults below), the
//! identity a transport vouches for, and per-subject rate limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Caller;
use crate::config::{ContentPolicy, RateLimit};
use crate::errors::Refusal;
use crate::fleet::limits::{FleetLimits, Verdict};
use crate::runtime::LoadedPlugin;
use crate::runtime::types::ToolInfo;

/// The scope read-only tools need when the sidecar names none.
pub const READ_SCOPE: &str = "tools:read";
/// The scope every other tool needs when the sidecar names none.
pub const WRITE_SCOPE: &str = "tools:write";

/// Who is asking, as the transport vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator on a local transport (stdio): the process that started
    /// moat, who may use everything.
    Local,
    /// The bearer of a verified token.
    Token(Arc<Caller>),
}

impl Principal {
    /// Whether this principal holds every scope in `needed`.
    pub fn holds(&self, needed: &[String]) -> bool {
        match self {
            Principal::Local => true,
            Principal::Token(c) => needed.iter().all(|n| c.scopes.iter().any(|s| s == n)),
        }
    }

    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Principal::Local => None,
            Principal::Token(c) => Some(c),
        }
    }

    /// The subject for logs, rate limits and request-state binding.
    pub fn subject(&self) -> &str {
        match self {
            Principal::Local => "-",
            Principal::Token(c) => &c.subject,
        }
    }
}

/// Who may use a tool, a plugin's resources or its prompts, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// All of these scopes are needed to list and use it.
    pub scopes: Arc<[String]>,
    pub rate_limit: Option<RateLimit>,
}

impl Access {
    /// A tool's: the sidecar's `[tools.NAME]`, else `tools:read` for read-only
    /// tools and `tools:write` for the rest; its rate limit, else the plugin's.
    pub fn of_tool(plugin: &LoadedPlugin, tool: &ToolInfo) -> Self {
        let policy = plugin.settings.tools.get(&tool.name);
        let scopes = match policy.and_then(|p| p.scopes.as_ref()) {
            Some(scopes) => scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            None if tool.annotations.read_only => vec![READ_SCOPE.to_owned()],
            None => vec![WRITE_SCOPE.to_owned()],
        };
        let rate_limit = policy.and_then(|p| p.rate_limit).or(plugin.settings.limits.rate_limit);
        Access { scopes: scopes.into(), rate_limit }
    }

    /// A plugin's resources or prompts: the sidecar's `[resources]` or
    /// `[prompts]`, else `tools:read`; never rate limited.
    pub fn of_content(policy: &ContentPolicy) -> Self {
        let scopes = match &policy.scopes {
            Some(scopes) => scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            None => vec![READ_SCOPE.to_owned()],
        };
        Access { scopes: scopes.into(), rate_limit: None }
    }

    /// Lets `who` use `what` (the rate limit's key, and the name in a
    /// refusal), charging one call to its rate limit: the one admission check
    /// of every transport.
    pub async fn admit(&self, who: &Principal, what: &str, limits: &RateLimits) -> Result<(), Refusal> {
        if !who.holds(&self.scopes) {
            return Err(Refusal::InsufficientScope { what: what.to_owned(), needed: self.scopes.join(" ") });
        }
        if let (Some(limit), Principal::Token(caller)) = (self.rate_limit, who)
            && let Err(wait) = limits.check(what, limit, &caller.subject).await
        {
            let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Refusal::RateLimited {
                tool: what.to_owned(),
                per_minute: limit.per_minute.get(),
                retry_after_s,
            });
        }
        Ok(())
    }
}

/// One tool's limiter, keyed by token subject.
type SubjectLimiter = Arc<DefaultKeyedRateLimiter<String>>;

/// Rate limiters per tool and limit (a changed sidecar limit gets a new one),
/// in this process and, in a fleet, across every replica.
///
/// In a fleet the replica's own limiter stays in front: a call it refuses
/// (this replica alone has seen the caller over the limit, so the fleet has
/// too) costs no Redis round trip; a call it allows is charged to the
/// fleet-wide limiter, which decides. When Redis gives no answer the
/// replica's limiter has decided alone (counted in
/// `moat_rate_limit_fallbacks_total`): limits then hold per replica, never
/// open to unlimited, and no call fails for it.
#[derive(Default)]
pub struct RateLimits {
    limiters: Mutex<HashMap<(String, RateLimit), SubjectLimiter>>,
    fleet: Option<FleetLimits>,
}

impl RateLimits {
    /// Limits counted across the fleet through `fleet`.
    pub fn fleet_wide(fleet: FleetLimits) -> Self {
        RateLimits { limiters: Mutex::default(), fleet: Some(fleet) }
    }

    /// The fleet-wide limiter, if any (for its metrics).
    pub fn fleet(&self) -> Option<&FleetLimits> {
        self.fleet.as_ref()
    }

    /// Takes one call from `subject`'s allowance for `tool`; when it is spent,
    /// says how long until the next call would be allowed.
    pub async fn check(&self, tool: &str, limit: RateLimit, subject: &str) -> Result<(), Duration> {
        self.check_here(tool, limit, subject)?;
        let Some(fleet) = &self.fleet else { return Ok(()) };
        match fleet.check(tool, limit, subject).await {
            Ok(Verdict::Allowed) => Ok(()),
            Ok(Verdict::Refused(wait)) => Err(wait),
            Err(_) => Ok(()),
        }
    }

    /// The check in this process alone.
    fn check_here(&self, tool: &str, limit: RateLimit, subject: &str) -> Result<(), Duration> {
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 10_000 {
                map.clear();
            }
            map.entry((tool.to_owned(), limit))
                .or_insert_with(|| {
                    Arc::new(RateLimiter::keyed(Quota::per_minute(limit.per_minute).allow_burst(limit.burst)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_local_transport_gets_everything() {
        let needed = vec!["tools:write".to_owned()];
        assert!(Principal::Local.holds(&needed));
        let reader = Principal::Token(Arc::new(Caller {
            subject: "r".into(),
            scopes: vec!["tools:read".into()],
            client_id: None,
        }));
        assert!(!reader.holds(&needed));
        let access = Access { scopes: needed.into(), rate_limit: None };
        let refused = access.admit(&reader, "`t`", &RateLimits::default()).await;
        assert!(matches!(refused, Err(Refusal::InsufficientScope { .. })));
    }
}
