//! Rate limits counted fleet-wide: GCRA (the generic cell rate algorithm,
//! what `governor` runs in each process) with its one number per key, the
//! theoretical arrival time, kept in Redis and updated by one Lua script so
//! that a check and its charge are one atomic step for the whole fleet.
//! Times come from Redis's own clock (`TIME`), so replicas with skewed clocks
//! agree.
//!
//! The replica's own limiter stays in front (see `policy::RateLimits`): a
//! caller already over the limit on this replica alone is refused without a
//! round trip, and when Redis gives no answer the replica's limiter decides.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;

use super::{Redis, Unavailable, digest_key};
use crate::config::RateLimit;

/// KEYS[1]: the key. ARGV[1]: the emission interval T (µs); ARGV[2]: the
/// burst tolerance τ = T × (burst − 1) (µs). Allowed when TAT − now ≤ τ; an
/// allowed call moves TAT to max(TAT, now) + T. Returns {1, 0} or
/// {0, µs until a call would be allowed}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.max(1, math.ceil((next_tat - now) / 1000)))
return {1, 0}
";

/// What Redis said of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the fleet-wide limit: the next call is allowed after this.
    Refused(Duration),
}

/// The fleet-wide limiter.
pub struct FleetLimits {
    redis: std::sync::Arc<Redis>,
    script: Script,
    /// Calls allowed and refused fleet-wide, and calls the replica decided
    /// alone because Redis gave no answer.
    allowed: AtomicU64,
    refused: AtomicU64,
    fallbacks: AtomicU64,
}

impl FleetLimits {
    pub fn new(redis: std::sync::Arc<Redis>) -> FleetLimits {
        FleetLimits {
            redis,
            script: Script::new(GCRA),
            allowed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Prometheus text for the limiter.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP moat_fleet_rate_limit_checks_total Fleet-wide rate limit checks by result.");
        let _ = writeln!(out, "# TYPE moat_fleet_rate_limit_checks_total counter");
        for (result, n) in [("allowed", &self.allowed), ("refused", &self.refused)] {
            let _ = writeln!(
                out,
                "moat_fleet_rate_limit_checks_total{{result=\"{result}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP moat_rate_limit_fallbacks_total Rate-limited calls this replica decided alone because Redis gave no answer."
        );
        let _ = writeln!(out, "# TYPE moat_rate_limit_fallbacks_total counter");
        let _ = writeln!(out, "moat_rate_limit_fallbacks_total {}", self.fallbacks.load(Ordering::Relaxed));
    }

    /// Charges one call of `subject` to `tool`'s `limit`, fleet-wide.
    pub async fn check(&self, tool: &str, limit: RateLimit, subject: &str) -> Result<Verdict, Unavailable> {
        let per_minute = limit.per_minute.get();
        let burst = limit.burst.get();
        // A limit above 60,000,000 a minute would round to 0 µs (and PX 0).
        let interval_us = (60_000_000u64 / u64::from(per_minute)).max(1);
        let tolerance_us = interval_us * u64::from(burst - 1);
        let key = self.redis.key("rl", &digest_key(&[tool, &per_minute.to_string(), &burst.to_string(), subject]));
        let script = &self.script;
        let answer: Result<(i64, i64), Unavailable> =
            self.redis
                .run(|mut conn| async move {
                    script.key(&key).arg(interval_us).arg(tolerance_us).invoke_async(&mut conn).await
                })
                .await;
        match answer {
            Ok((1, _)) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                Ok(Verdict::Allowed)
            }
            Ok((_, wait_us)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Ok(Verdict::Refused(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0))))
            }
            Err(e) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}
