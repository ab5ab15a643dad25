//! A fleet-wide view of what each replica serves: every replica writes its
//! served digest (one SHA-256 over the names and SHA-256s of the plugins it
//! serves) into one Redis hash when it starts, after each swap and every few
//! seconds; any replica's `/readyz?verbose` then lists them all and says
//! whether they agree. Entries of replicas that stopped writing are dropped.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Redis;

/// How often a replica writes its entry.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(5);
/// An entry older than this is a replica that is gone.
const STALE_AFTER: Duration = Duration::from_secs(30);
/// Most entries read back (the hash is trimmed of stale ones as it is read).
const MAX_ENTRIES: usize = 1024;

/// What one replica serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub replica: String,
    /// SHA-256 over the sorted `name NUL sha256` lines of the plugins served.
    pub digest: String,
    pub plugins: usize,
    pub at_unix_s: u64,
}

/// The digest of a set of `(name, sha256)` pairs, in any order.
pub fn digest<'a>(plugins: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = plugins.into_iter().map(|(n, h)| format!("{n}\0{h}\n")).collect();
    lines.sort();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
    }
    hex::encode(h.finalize())
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The replicas' entries in the fleet's Redis.
pub struct Replicas {
    redis: Arc<Redis>,
    /// This replica's name (unique in the fleet), once known.
    me: OnceLock<String>,
}

impl Replicas {
    /// `me` names this replica; without it, [`Self::name`] does, once the
    /// replica knows its address.
    pub fn new(redis: Arc<Redis>, me: Option<String>) -> Replicas {
        let name = OnceLock::new();
        if let Some(me) = me {
            let _ = name.set(me);
        }
        Replicas { redis, me: name }
    }

    /// Names this replica unless the configuration did.
    pub fn name(&self, default: String) {
        let _ = self.me.set(default);
    }

    pub fn me(&self) -> &str {
        self.me.get().map_or("", String::as_str)
    }

    /// Writes this replica's entry now, at every change of `swaps` and every
    /// [`PUBLISH_EVERY`]; removes it at `shutdown`.
    pub fn spawn_publisher(
        self: &Arc<Self>,
        served: impl Fn() -> (String, usize) + Send + Sync + 'static,
        mut swaps: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let (digest, plugins) = served();
                this.publish(&digest, plugins).await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = swaps.changed() => {}
                    _ = tokio::time::sleep(PUBLISH_EVERY) => {}
                }
            }
            let (hash, me) = (this.hash(), this.me().to_owned());
            let _ = this.redis.run(|mut c| async move { c.hdel::<_, _, ()>(&hash, &me).await }).await;
        });
    }

    fn hash(&self) -> String {
        self.redis.key("replicas", "served")
    }

    /// Writes this replica's entry.
    pub async fn publish(&self, digest: &str, plugins: usize) {
        let me = self.me().to_owned();
        if me.is_empty() {
            return;
        }
        let entry = Served { replica: me.clone(), digest: digest.to_owned(), plugins, at_unix_s: now_s() };
        let Ok(text) = serde_json::to_string(&entry) else { return };
        let hash = self.hash();
        let _ = self.redis.run(|mut c| async move { c.hset::<_, _, _, ()>(&hash, &me, text).await }).await;
    }

    /// Waits until every live replica serves `digest`, for at most `limit`
    /// (polling every 50 ms; at once when Redis does not answer).
    pub async fn settled(&self, digest: &str, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            match self.all().await {
                None => return,
                Some(all) if all.iter().all(|s| s.digest == digest) => return,
                Some(_) if started.elapsed() >= limit => {
                    tracing::debug!("replicas not in step after {limit:?}; telling listeners anyway");
                    return;
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Every live replica's entry, sorted by name; stale ones are removed.
    /// `None` when Redis does not answer.
    pub async fn all(&self) -> Option<Vec<Served>> {
        let hash = self.hash();
        let key = hash.clone();
        let entries: BTreeMap<String, String> =
            self.redis.run(|mut c| async move { c.hgetall(&key).await }).await.ok()?;
        let now = now_s();
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for (name, text) in entries.into_iter().take(MAX_ENTRIES) {
            match serde_json::from_str::<Served>(&text) {
                Ok(s) if now.saturating_sub(s.at_unix_s) <= STALE_AFTER.as_secs() => live.push(s),
                _ => stale.push(name),
            }
        }
        if !stale.is_empty() {
            let _ = self.redis.run(|mut c| async move { c.hdel::<_, _, ()>(&hash, stale).await }).await;
        }
        Some(live)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_ignores_order_and_sees_every_change() {
        let a = super::digest([("x", "11"), ("y", "22")]);
        assert_eq!(a, super::digest([("y", "22"), ("x", "11")]));
        assert_ne!(a, super::digest([("x", "11"), ("y", "23")]));
        assert_ne!(a, super::digest([("x", "11")]));
        assert_ne!(super::digest([("x 1", "1")]), super::digest([("x", "1 1")]), "names cannot run into hashes");
    }
}
