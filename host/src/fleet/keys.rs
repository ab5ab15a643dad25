//! The key ring that seals 2026-07-28 request states.
//!
//! Without `[fleet] state_key_file` each process makes a random key at start
//! (a state sealed by one process opens only in that process). With it, every
//! replica reads the same file: one base64 key (32 bytes or more) per line,
//! the first sealing, every line opening. Rotation without breaking requests
//! in flight: put the new key first and keep the old one on a later line
//! until its states have expired; a key dropped from the file is still
//! accepted for the lifetime of the states it sealed. The file is read again
//! when it changes (checked every few seconds; a Kubernetes Secret update
//! lands this way).
//!
//! Each key is named by a fingerprint of itself, so every replica names a key
//! alike without configuration, and a state says which key sealed it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine as _;
use rmcp::model::RequestStateCodec;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::FleetError;

/// Most keys a file may hold.
const MAX_KEYS: usize = 8;
/// Largest key file read.
const MAX_FILE_BYTES: u64 = 16 * 1024;
/// How often the file is checked for a change.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// One key and its fingerprint.
#[derive(Clone)]
struct Key {
    id: String,
    bytes: Zeroizing<Vec<u8>>,
}

fn fingerprint(key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(b"moat request-state key\0").chain_update(key).finalize();
    format!("k{}", hex::encode(&digest[..6]))
}

/// The file's identity and contents stamp: a rewrite, a rename over it or a
/// symlink swap (how Kubernetes updates a mounted Secret) all change it.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp { len: m.len(), modified: m.modified().ok(), inode: m.ino() })
}

/// Reads and checks a key file.
fn read(path: &Path) -> Result<Vec<Key>, FleetError> {
    let fail = |message: String| FleetError::StateKey { path: path.display().to_string(), message };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(format!("{} bytes; a key file holds at most {MAX_KEYS} keys", meta.len())));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
    let mut keys: Vec<Key> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(line)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(line))
                .map_err(|_| fail(format!("line {}: not base64 (make a key with `openssl rand -base64 32`)", n + 1)))?,
        );
        if bytes.len() < RequestStateCodec::MIN_KEY_LENGTH {
            return Err(fail(format!(
                "line {}: a key needs at least {} bytes, this one has {}",
                n + 1,
                RequestStateCodec::MIN_KEY_LENGTH,
                bytes.len()
            )));
        }
        let id = fingerprint(&bytes);
        if !keys.iter().any(|k| k.id == id) {
            keys.push(Key { id, bytes });
        }
    }
    if keys.is_empty() {
        return Err(fail("holds no key (one base64 key per line; the first seals)".into()));
    }
    if keys.len() > MAX_KEYS {
        return Err(fail(format!("holds {} keys; at most {MAX_KEYS}", keys.len())));
    }
    Ok(keys)
}

/// The codec in use: seals with the first key, opens with any.
struct Ring {
    codec: RequestStateCodec,
    /// The keys of the file as last read (first seals).
    keys: Vec<Key>,
}

fn ring(keys: Vec<Key>, retired: &[(Key, Instant)]) -> Result<Ring, String> {
    let active = keys[0].id.clone();
    let all = keys
        .iter()
        .chain(retired.iter().map(|(k, _)| k))
        .map(|k| (k.id.clone(), k.bytes.to_vec()))
        .collect::<std::collections::HashMap<_, _>>();
    let codec = RequestStateCodec::new_with_keyring(active, all).map_err(|e| e.to_string())?;
    Ok(Ring { codec, keys })
}

/// The file as last read, and the keys dropped from it with the time until
/// which each still opens.
type Seen = (Option<Stamp>, Vec<(Key, Instant)>);

/// The request-state keys of this process.
pub struct StateKeys {
    file: Option<PathBuf>,
    /// How long a key dropped from the file keeps opening states.
    retain: Duration,
    current: ArcSwap<Ring>,
    seen: Mutex<Seen>,
}

impl StateKeys {
    /// A random key for this process alone.
    pub fn random() -> StateKeys {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator works");
        let key = Key { id: fingerprint(&bytes), bytes };
        let ring = ring(vec![key], &[]).expect("a fresh 32-byte key is valid");
        StateKeys {
            file: None,
            retain: Duration::ZERO,
            current: ArcSwap::from_pointee(ring),
            seen: Mutex::new((None, Vec::new())),
        }
    }

    /// The keys of `path`; a key dropped from it later still opens states for
    /// `retain` (the lifetime of a sealed state).
    pub fn from_file(path: &Path, retain: Duration) -> Result<StateKeys, FleetError> {
        let before = stamp(path);
        let keys = read(path)?;
        let ring =
            ring(keys, &[]).map_err(|message| FleetError::StateKey { path: path.display().to_string(), message })?;
        Ok(StateKeys {
            file: Some(path.to_owned()),
            retain,
            current: ArcSwap::from_pointee(ring),
            seen: Mutex::new((before, Vec::new())),
        })
    }

    /// The codec to seal and open with now.
    pub fn codec(&self) -> RequestStateCodec {
        self.current.load().codec.clone()
    }

    /// The fingerprint of the sealing key (never the key).
    pub fn active_id(&self) -> String {
        self.current.load().keys[0].id.clone()
    }

    /// Reads the file again if it changed; a bad file leaves the keys as they
    /// were (and says why). Returns whether the keys changed.
    pub fn refresh(&self) -> Result<bool, FleetError> {
        let Some(path) = &self.file else { return Ok(false) };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let before = seen.1.len();
        seen.1.retain(|(_, until)| *until > now);
        let expired = seen.1.len() != before;
        let stamp = stamp(path);
        if stamp == seen.0 && !expired {
            return Ok(false);
        }
        let keys = match read(path) {
            Ok(keys) => keys,
            Err(e) => {
                // Not read again until it changes; keys that expired meanwhile
                // stop opening all the same.
                seen.0 = stamp;
                if expired {
                    let old = self.current.load_full();
                    if let Ok(ring) = ring(old.keys.clone(), &seen.1) {
                        self.current.store(Arc::new(ring));
                    }
                }
                return Err(e);
            }
        };
        seen.0 = stamp;
        let old = self.current.load_full();
        for k in &old.keys {
            if !keys.iter().any(|n| n.id == k.id) && !seen.1.iter().any(|(r, _)| r.id == k.id) {
                seen.1.push((k.clone(), now + self.retain));
            }
        }
        seen.1.retain(|(r, _)| !keys.iter().any(|k| k.id == r.id));
        let ring = ring(keys, &seen.1)
            .map_err(|message| FleetError::StateKey { path: path.display().to_string(), message })?;
        let changed = ring.keys.iter().map(|k| &k.id).ne(old.keys.iter().map(|k| &k.id)) || expired;
        if changed {
            tracing::info!(
                sealing = %ring.keys[0].id,
                accepted = ring.keys.len() + seen.1.len(),
                "request-state keys read again from {}",
                path.display()
            );
        }
        self.current.store(Arc::new(ring));
        Ok(changed)
    }

    /// Checks the file for changes until `shutdown`.
    pub fn spawn_refresh(self: &Arc<Self>, shutdown: CancellationToken) {
        if self.file.is_none() {
            return;
        }
        let keys = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = keys.refresh() {
                    tracing::warn!(error = %e, "request-state keys unchanged");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::SealOptions;

    fn key_line(fill: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([fill; 32])
    }

    fn seal(keys: &StateKeys, what: &str) -> String {
        keys.codec().seal_json_with(&what, &SealOptions::new().ttl(Duration::from_secs(60))).unwrap()
    }

    fn opens(keys: &StateKeys, state: &str) -> bool {
        keys.codec().open_json_with::<String>(state, b"").is_ok()
    }

    #[test]
    fn replicas_reading_one_file_open_each_others_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        std::fs::write(&path, format!("# the first line seals\n{}\n", key_line(1))).unwrap();
        let (a, b) = (
            StateKeys::from_file(&path, Duration::from_secs(60)).unwrap(),
            StateKeys::from_file(&path, Duration::from_secs(60)).unwrap(),
        );
        assert_eq!(a.active_id(), b.active_id());
        assert!(opens(&b, &seal(&a, "x")));
        assert!(!opens(&StateKeys::random(), &seal(&a, "x")), "another key does not open it");
    }

    #[test]
    fn a_rotated_key_keeps_opening_what_it_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        std::fs::write(&path, key_line(1)).unwrap();
        let keys = StateKeys::from_file(&path, Duration::from_secs(3600)).unwrap();
        let old = seal(&keys, "old");
        // The new key replaces the old one outright (no transition line).
        std::fs::write(&path, format!("{}\n", key_line(2))).unwrap();
        assert!(keys.refresh().unwrap());
        assert!(opens(&keys, &old), "a state sealed before the rotation still opens");
        let new = seal(&keys, "new");
        let fresh = StateKeys::from_file(&path, Duration::from_secs(3600)).unwrap();
        assert!(opens(&fresh, &new), "the new key seals");
        assert!(!opens(&fresh, &old), "a replica that never knew the old key does not accept it");
        // A broken file changes nothing.
        std::fs::write(&path, "not a key\n").unwrap();
        let e = keys.refresh().unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("base64"), "{e}");
        assert!(opens(&keys, &new) && opens(&keys, &old));
    }

    #[test]
    fn a_retired_key_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        std::fs::write(&path, key_line(1)).unwrap();
        let keys = StateKeys::from_file(&path, Duration::ZERO).unwrap();
        let old = seal(&keys, "old");
        std::fs::write(&path, format!("{}\n", key_line(3))).unwrap();
        keys.refresh().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        keys.refresh().unwrap();
        assert!(!opens(&keys, &old));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        for (text, wanted) in [("", "no key"), ("c2hvcnQ=\n", "at least 32 bytes"), ("%%%\n", "not base64")] {
            std::fs::write(&path, text).unwrap();
            let e = StateKeys::from_file(&path, Duration::ZERO).err().expect("refused").to_string();
            assert!(e.contains(wanted) && e.contains("state.key"), "{text:?}: {e}");
            assert!(
                !e.contains(text.trim()) || text.trim().is_empty() || text.trim() == "%%%",
                "no key material in {e}"
            );
        }
        let missing = StateKeys::from_file(&dir.path().join("none"), Duration::ZERO).err().unwrap().to_string();
        assert!(missing.contains("none"), "{missing}");
    }
}
