//! 2025-11-25 sessions any replica can restore: rmcp's `SessionStore` over
//! Redis. What is kept is the client's `initialize` parameters (rmcp replays
//! the handshake from them on a replica that does not know the session),
//! under a TTL equal to the session idle expiry, refreshed while the session
//! is used and removed by `DELETE`.
//!
//! Bounds: session IDs are looked up only when they have the shape rmcp
//! gives them (a client cannot make Redis read a megabyte key), a stored
//! state is at most [`MAX_STATE_BYTES`] (a larger one stays on its replica),
//! and refreshing costs at most one `EXPIRE` per session per replica per
//! third of the idle expiry. The stored TTL is the idle expiry plus that
//! third, so a session in use never outlives its stored state.
//!
//! When Redis does not answer, a session unknown here is unknown (404: the
//! client initializes again, as the protocol says), and storing or deleting
//! is skipped; nothing is logged per request (the outage is, once).
//!
//! A `DELETE` ends a session on every replica: the replica that gets it
//! removes the stored state and publishes the ID; every replica drops its
//! own copy when it hears it ([`RedisSessions::follow_ends`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use rmcp::transport::streamable_http_server::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError};
use tokio_util::sync::CancellationToken;

use super::Redis;

/// The largest `initialize` parameters kept in Redis (a client's are a few
/// hundred bytes; this bounds what one token holder can park in Redis).
pub const MAX_STATE_BYTES: usize = 16 * 1024;
/// Most sessions whose last refresh one replica remembers.
const MAX_TOUCHED: usize = 100_000;

/// Whether `id` looks like a session ID rmcp made (a UUID, or similar).
fn plausible(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Sessions in the fleet's Redis.
pub struct RedisSessions {
    redis: Arc<Redis>,
    ttl: Duration,
    /// When this replica last refreshed each session's TTL.
    touched: Mutex<HashMap<String, Instant>>,
}

impl RedisSessions {
    pub fn new(redis: Arc<Redis>, ttl: Duration) -> RedisSessions {
        RedisSessions { redis, ttl, touched: Mutex::new(HashMap::new()) }
    }

    fn key(&self, id: &str) -> String {
        self.redis.key("session", id)
    }

    /// The stored TTL: the idle expiry plus the refresh interval.
    fn ttl_s(&self) -> u64 {
        (self.ttl + self.refresh_every()).as_secs().max(1)
    }

    fn refresh_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Keeps a session in use restorable: refreshes its TTL, at most once a
    /// third of the TTL per session on this replica, off the request path.
    pub fn touch(self: &Arc<Self>, id: &str) {
        if !plausible(id) {
            return;
        }
        let now = Instant::now();
        {
            let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.get(id).is_some_and(|t| now.duration_since(*t) < self.refresh_every()) {
                return;
            }
            if touched.len() >= MAX_TOUCHED {
                touched.retain(|_, t| now.duration_since(*t) < self.ttl);
                if touched.len() >= MAX_TOUCHED {
                    touched.clear();
                }
            }
            touched.insert(id.to_owned(), now);
        }
        let this = self.clone();
        let key = self.key(id);
        tokio::spawn(async move {
            let ttl = i64::try_from(this.ttl_s()).unwrap_or(i64::MAX);
            let _ = this.redis.run(|mut c| async move { c.expire::<_, bool>(&key, ttl).await }).await;
        });
    }

    fn ends_channel(&self) -> String {
        self.redis.key("session-ended", "all")
    }

    /// Drops this replica's copy of every session another replica ended,
    /// until `shutdown`; resubscribes after Redis comes back.
    pub fn follow_ends(self: &Arc<Self>, sessions: Arc<LocalSessionManager>, shutdown: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let followed = async {
                    let connect = async {
                        let mut pubsub = this.redis.client.get_async_pubsub().await?;
                        pubsub.subscribe(this.ends_channel()).await?;
                        Ok::<_, redis::RedisError>(pubsub)
                    };
                    let pubsub = tokio::time::timeout(this.redis.timeout * 10, connect).await.map_err(|_| {
                        redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "subscribing"))
                    })??;
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(id) = msg.get_payload::<String>() else { continue };
                        if plausible(&id) {
                            this.touched.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                            let _ = sessions.close_session(&id.as_str().into()).await;
                        }
                    }
                    Ok::<(), redis::RedisError>(())
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = followed => if let Err(e) = r {
                        tracing::debug!(error = %e, "not following ended sessions; retrying");
                    },
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(super::BACKOFF) => {}
                }
            }
        });
    }

    /// Whether the fleet knows the session (for a `DELETE` this replica
    /// does not know). Unknown when Redis does not answer.
    pub async fn exists(&self, id: &str) -> bool {
        if !plausible(id) {
            return false;
        }
        let key = self.key(id);
        self.redis.run(|mut c| async move { c.exists::<_, bool>(&key).await }).await.unwrap_or(false)
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        if !plausible(session_id) {
            return Ok(None);
        }
        let key = self.key(session_id);
        let ttl = self.ttl_s();
        // Loading refreshes the TTL: the session is in use again.
        let found: Option<Vec<u8>> =
            self.redis.run(|mut c| async move { c.get_ex(&key, redis::Expiry::EX(ttl)).await }).await.unwrap_or(None);
        let Some(bytes) = found else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(state) => Ok(Some(state)),
            Err(e) => {
                tracing::warn!(error = %e, "a stored session is not readable; the client must initialize again");
                Ok(None)
            }
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        if !plausible(session_id) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(state)?;
        if bytes.len() > MAX_STATE_BYTES {
            tracing::debug!(
                bytes = bytes.len(),
                "a session's initialize parameters are over {MAX_STATE_BYTES} bytes: it stays on this replica"
            );
            return Ok(());
        }
        let key = self.key(session_id);
        let ttl = self.ttl_s();
        if self.redis.run(|mut c| async move { c.set_ex::<_, _, ()>(&key, bytes, ttl).await }).await.is_err() {
            return Ok(());
        }
        self.touched.lock().unwrap_or_else(|e| e.into_inner()).insert(session_id.to_owned(), Instant::now());
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        if !plausible(session_id) {
            return Ok(());
        }
        self.touched.lock().unwrap_or_else(|e| e.into_inner()).remove(session_id);
        let (key, channel, id) = (self.key(session_id), self.ends_channel(), session_id.to_owned());
        // Best effort: during an outage the other replicas keep their copies
        // until the idle expiry.
        let _ = self
            .redis
            .run(|mut c| async move {
                redis::pipe().del(&key).ignore().publish(&channel, id).ignore().query_async::<()>(&mut c).await
            })
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plausible_ids_reach_redis() {
        assert!(super::plausible("4f1c2a8e-0b7d-4e8f-9a3c-1d2e3f4a5b6c"));
        for bad in ["", "a:b", "x y", "é", &"a".repeat(65), "a\nb"] {
            assert!(!super::plausible(bad), "{bad:?}");
        }
    }
}
