//! Verified artifacts on disk, by digest, and which one each source serves.
//!
//! ```text
//! STORE/artifacts/<manifest hex>/manifest.json     the manifest's bytes
//!                               component.wasm    the component layer
//!                               requested.toml    the permissions layer, if any
//!                               signatures.json   the signatures that verified it
//! STORE/pins/<name>.json                          {"ref", "digest"}: what <name> serves
//! STORE/serving/<name>.wasm -> ../artifacts/<hex>/component.wasm
//! ```
//!
//! Everything is written beside its place and renamed into it, so a crash
//! leaves the old state or the new, never half of one. At start every pin is
//! verified again from the store alone (the manifest's digest, the layer's
//! digest, a signature by a key configured now), so a restart with the registry
//! down serves the last verified versions and nothing else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sign::{self, Stored};
use super::{Digest, OciError, Trust, Verified, artifact_layers};

const MANIFEST: &str = "manifest.json";
const COMPONENT: &str = "component.wasm";
const REQUESTED: &str = "requested.toml";
const SIGNATURES: &str = "signatures.json";

/// The store under one folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Held while pinning or collecting, so a collection never sees an
    /// artifact renamed into place before its pin is written.
    lock: std::sync::Arc<std::sync::Mutex<()>>,
}

/// What a source serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    #[serde(rename = "ref")]
    pub reference: String,
    pub digest: Digest,
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io { path: path.to_owned(), source }
}

/// Writes `bytes` to `path` through a temporary file renamed over it.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| OciError::Io { path: path.to_owned(), source: e.error })?;
    Ok(())
}

impl Store {
    pub fn open(root: &Path) -> Result<Self, OciError> {
        for sub in ["artifacts", "pins", "serving"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(Store { root: root.to_owned(), lock: Default::default() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn artifact(&self, digest: &Digest) -> PathBuf {
        self.root.join("artifacts").join(digest.hex())
    }

    fn pin_path(&self, name: &str) -> PathBuf {
        self.root.join("pins").join(format!("{name}.json"))
    }

    /// The component file the plugins loader reads for source `name`.
    pub fn serving_path(&self, name: &str) -> PathBuf {
        self.root.join("serving").join(format!("{name}.wasm"))
    }

    /// The permissions the artifact `digest` requests, if it says.
    pub fn requested(&self, digest: &Digest) -> Option<String> {
        std::fs::read_to_string(self.artifact(digest).join(REQUESTED)).ok()
    }

    /// Keeps `v` (once per digest) and makes it what `name` serves.
    pub fn pin(&self, name: &str, reference: &str, v: &Verified) -> Result<(), OciError> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.artifact(&v.digest);
        if !dir.join(SIGNATURES).exists() {
            let tmp =
                tempfile::Builder::new().prefix(".new-").tempdir_in(self.root.join("artifacts")).map_err(io(&dir))?;
            let t = tmp.path();
            std::fs::write(t.join(MANIFEST), &v.manifest).map_err(io(t))?;
            std::fs::write(t.join(COMPONENT), &v.component).map_err(io(t))?;
            if let Some(r) = &v.requested {
                std::fs::write(t.join(REQUESTED), r).map_err(io(t))?;
            }
            let sigs = serde_json::to_vec_pretty(&v.signatures).expect("signatures serialize");
            std::fs::write(t.join(SIGNATURES), sigs).map_err(io(t))?;
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(tmp.keep(), &dir).map_err(io(&dir))?;
        }
        let pin = Pin { reference: reference.to_owned(), digest: v.digest.clone() };
        write_atomic(&self.pin_path(name), &serde_json::to_vec_pretty(&pin).expect("a pin serializes"))?;
        self.link(name, &v.digest)
    }

    /// Points `serving/<name>.wasm` at the component of `digest`.
    fn link(&self, name: &str, digest: &Digest) -> Result<(), OciError> {
        let link = self.serving_path(name);
        let target = Path::new("..").join("artifacts").join(digest.hex()).join(COMPONENT);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(());
        }
        let tmp = link.with_file_name(format!(".{name}.wasm.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io(&link))
    }

    /// Stops serving `name` (its pin and link go; its artifact stays until
    /// [`Store::collect`]).
    pub fn unpin(&self, name: &str) {
        let _ = std::fs::remove_file(self.serving_path(name));
        let _ = std::fs::remove_file(self.pin_path(name));
    }

    /// The pin of `name` if it is for `reference` and its artifact verifies
    /// again, offline, under `trust`; otherwise the pin is dropped (with why).
    pub fn verified_pin(&self, name: &str, reference: &str, trust: &Trust) -> Result<Option<Pin>, String> {
        let Ok(text) = std::fs::read(self.pin_path(name)) else {
            self.unpin(name);
            return Ok(None);
        };
        let outcome = (|| {
            let pin: Pin = serde_json::from_slice(&text).map_err(|e| format!("unreadable pin: {e}"))?;
            if pin.reference != reference {
                return Err(format!("the stored version is of {}, not the configured {reference}", pin.reference));
            }
            self.check(&pin.digest, trust)?;
            Ok(pin)
        })();
        match outcome {
            Ok(pin) => {
                self.link(name, &pin.digest).map_err(|e| e.to_string())?;
                Ok(Some(pin))
            }
            Err(why) => {
                self.unpin(name);
                Err(why)
            }
        }
    }

    /// Verifies the stored artifact `digest` again from its files.
    fn check(&self, digest: &Digest, trust: &Trust) -> Result<(), String> {
        let dir = self.artifact(digest);
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()));
        let manifest = read(MANIFEST)?;
        if &Digest::of(&manifest) != digest {
            return Err(format!("the stored manifest does not match {digest}"));
        }
        let layers = artifact_layers(digest, &manifest).map_err(|e| e.to_string())?;
        if Digest::of(&read(COMPONENT)?) != layers.component {
            return Err(format!("the stored component does not match its layer digest {}", layers.component));
        }
        if let Trust::Keys(keys) = trust {
            let sigs: Vec<Stored> =
                serde_json::from_slice(&read(SIGNATURES)?).map_err(|e| format!("unreadable signatures: {e}"))?;
            sign::verify_any(keys, &sigs, digest).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Drops the pins and links of sources not in `names`, then the artifacts
    /// no pin names.
    pub fn collect(&self, names: &[&str]) {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(entries) = std::fs::read_dir(self.root.join("pins")) {
            for e in entries.flatten() {
                let stem = e.path().file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                if !names.contains(&stem.as_str()) {
                    self.unpin(&stem);
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join("serving")) {
            for e in entries.flatten() {
                let stem = e.path().file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                if !names.contains(&stem.as_str()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        self.prune_unlocked();
    }

    /// Removes the artifacts no pin names (a replaced version: calls in flight
    /// run its compiled code, not its file).
    pub fn prune(&self) {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.prune_unlocked();
    }

    fn prune_unlocked(&self) {
        let mut pinned = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.root.join("pins")) {
            for e in entries.flatten() {
                if let Some(pin) = std::fs::read(e.path()).ok().and_then(|t| serde_json::from_slice::<Pin>(&t).ok()) {
                    pinned.push(pin.digest.hex().to_owned());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join("artifacts")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !pinned.contains(&name) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}
