//! Fleet mode: what N replicas behind a load balancer share so that they act
//! as one server. Two things, both optional and independent:
//!
//! - [`keys`]: the key ring that seals 2026-07-28 request states, read from a
//!   file every replica mounts (no Redis needed: the stateless era carries
//!   its state in the request);
//! - [`Redis`]: one connection per replica to a Redis every replica reaches,
//!   behind which [`sessions`] keeps 2025-11-25 sessions restorable on any
//!   replica, [`limits`] counts rate limits fleet-wide (GCRA in one Lua
//!   script), and [`replicas`] publishes what each replica serves.
//!
//! Redis never decides whether an answer comes: a request waits for it at
//! most `redis_timeout_ms`, and a failure (down, slow, refused) is counted,
//! makes the replica skip Redis for a short while, and the caller falls back
//! to what the replica knows alone (its own limiter, its own sessions). No
//! call fails because Redis did.

pub mod keys;
pub mod limits;
pub mod replicas;
pub mod sessions;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use crate::config::FleetConfig;

/// How long a replica leaves Redis alone after a failure before trying again.
const BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("[fleet] redis_url: {0}")]
    RedisUrl(String),
    #[error("[fleet] redis_password_env: the environment variable {0} is not set")]
    MissingPassword(String),
    #[error("[fleet] state_key_file {path}: {message}")]
    StateKey { path: String, message: String },
}

/// Why a Redis operation gave no answer; callers fall back, never fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// A recent failure: Redis is left alone for a moment.
    #[error("Redis is backing off after a failure")]
    BackingOff,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Failed(String),
}

/// Counters of the replica's Redis use, for `/metrics`.
#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

/// One replica's connection to the fleet's Redis.
pub struct Redis {
    /// For the subscriber connections (pub/sub cannot share `conn`).
    client: redis::Client,
    conn: ConnectionManager,
    /// Prepended to every key (several fleets may share one Redis).
    prefix: String,
    timeout: Duration,
    /// Until when Redis is left alone, and the last failure (for `/readyz`).
    health: Mutex<Health>,
    counters: Counters,
}

#[derive(Default)]
struct Health {
    skip_until: Option<Instant>,
    last_error: Option<String>,
}

impl Redis {
    /// A connection that is made on first use (a replica starts, and serves,
    /// while Redis is down) and remade after failures.
    pub fn connect(config: &FleetConfig) -> Result<Redis, FleetError> {
        let Some(url) = &config.redis_url else {
            return Err(FleetError::RedisUrl("not set".into()));
        };
        let mut info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map_err(|e| FleetError::RedisUrl(e.to_string()))?;
        if let Some(var) = &config.redis_password_env {
            let password = std::env::var(var).map_err(|_| FleetError::MissingPassword(var.clone()))?;
            let redis_info = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(redis_info);
        }
        let client = redis::Client::open(info).map_err(|e| FleetError::RedisUrl(e.to_string()))?;
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(BACKOFF);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| FleetError::RedisUrl(e.to_string()))?;
        Ok(Redis {
            client,
            conn,
            prefix: config.redis_prefix.clone(),
            timeout,
            health: Mutex::new(Health::default()),
            counters: Counters::default(),
        })
    }

    /// `PREFIX:kind:rest`.
    fn key(&self, kind: &str, rest: &str) -> String {
        format!("{}:{kind}:{rest}", self.prefix)
    }

    /// Runs `op` on the connection under the timeout, unless Redis failed
    /// within the last [`BACKOFF`]; a failure starts a new backoff.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        {
            let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
            if health.skip_until.is_some_and(|t| Instant::now() < t) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                return Err(Unavailable::BackingOff);
            }
        }
        let result = match tokio::time::timeout(self.timeout, op(self.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unavailable::Failed(e.to_string())),
            Err(_) => Err(Unavailable::Timeout(self.timeout)),
        };
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(_) => {
                self.counters.ok.fetch_add(1, Ordering::Relaxed);
                if health.skip_until.take().is_some() {
                    tracing::info!("Redis answers again; fleet-wide limits and sessions are back");
                }
            }
            Err(e) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                let first = health.skip_until.is_none();
                health.skip_until = Some(Instant::now() + BACKOFF);
                health.last_error = Some(e.to_string());
                if first {
                    tracing::warn!(error = %e, "Redis failed; rate limits fall back to this replica's own, sessions stay on the replica that has them");
                }
            }
        }
        result
    }

    /// Whether Redis answered the last time it was asked.
    pub fn up(&self) -> bool {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).skip_until.is_none()
    }

    /// For `/readyz?verbose`.
    pub fn status(&self) -> serde_json::Value {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({
            "up": health.skip_until.is_none(),
            "last_error": health.last_error,
            "prefix": self.prefix,
        })
    }

    /// Prometheus text for the replica's Redis use.
    pub fn render_metrics(&self, out: &mut String) {
        let c = &self.counters;
        let _ = writeln!(out, "# HELP moat_fleet_redis_up Whether Redis answered the last request (1) or not (0).");
        let _ = writeln!(out, "# TYPE moat_fleet_redis_up gauge");
        let _ = writeln!(out, "moat_fleet_redis_up {}", u8::from(self.up()));
        let _ = writeln!(
            out,
            "# HELP moat_fleet_redis_requests_total Redis requests by result (skipped: during a backoff)."
        );
        let _ = writeln!(out, "# TYPE moat_fleet_redis_requests_total counter");
        for (result, n) in [("ok", &c.ok), ("failed", &c.failed), ("skipped", &c.skipped)] {
            let _ =
                writeln!(out, "moat_fleet_redis_requests_total{{result=\"{result}\"}} {}", n.load(Ordering::Relaxed));
        }
    }
}

/// A replica's part in a fleet that shares a Redis.
pub struct Fleet {
    pub redis: Arc<Redis>,
    pub sessions: Arc<sessions::RedisSessions>,
    pub replicas: Arc<replicas::Replicas>,
}

impl Fleet {
    /// The fleet of `config`, or `None` without `redis_url`. Redis is not
    /// contacted yet (a replica starts and serves while it is down);
    /// sessions live `session_idle` without a request.
    pub fn connect(config: &FleetConfig, session_idle: Duration) -> Result<Option<Fleet>, FleetError> {
        if config.redis_url.is_none() {
            return Ok(None);
        }
        let redis = Arc::new(Redis::connect(config)?);
        Ok(Some(Fleet {
            sessions: Arc::new(sessions::RedisSessions::new(redis.clone(), session_idle)),
            replicas: Arc::new(replicas::Replicas::new(redis.clone(), config.replica_name.clone())),
            redis,
        }))
    }

    /// The fleet-wide rate limiter.
    pub fn limits(&self) -> limits::FleetLimits {
        limits::FleetLimits::new(self.redis.clone())
    }
}

/// The first 32 hex digits of SHA-256 over `parts` joined by NUL: keys of
/// bounded size whatever a token or plugin names.
fn digest_key(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0]);
        }
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}
