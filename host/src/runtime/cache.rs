//! The on-disk cache of compiled components.
//!
//! A compiled artifact is native code that moat maps executable, so the cache is
//! guarded: the directory is created `0700`, an entry is used only when the
//! directory and the file belong to this user and nobody else can write them, the
//! key covers both the component's content hash and the engine configuration, and
//! an entry wasmtime refuses (other engine, corrupt) is recompiled and replaced.
//! Entries are written to a temporary file and renamed into place, so a crash
//! never leaves a half-written artifact under a valid name.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache: no compilation.
    Cache,
    /// Compiled now (and stored, if the cache is usable).
    Compiled,
}

#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// The default cache directory: `$XDG_CACHE_HOME/moat/components`, else
/// `~/.cache/moat/components`.
pub fn default_dir() -> Option<PathBuf> {
    user_cache().map(|d| d.join("components"))
}

/// moat's folder in the user's cache: `$XDG_CACHE_HOME/moat`, else `~/.cache/moat`.
pub fn user_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("moat"))
}

fn engine_key(engine: &Engine) -> String {
    // DefaultHasher is deterministic within one build of moat; a different build
    // gets different keys, and wasmtime re-checks compatibility on load anyway.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

/// True when `meta` belongs to this user and is writable by nobody else.
fn private_to_us(meta: &fs::Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

impl ArtifactCache {
    /// A cache in `dir` (created `0700` if missing). If the directory cannot be
    /// made private to this user the cache is disabled, with a warning, and every
    /// load compiles.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let dir = dir.and_then(|dir| match Self::prepare(&dir) {
            Ok(()) => Some(dir),
            Err(reason) => {
                tracing::warn!(dir = %dir.display(), %reason, "compiled-component cache disabled");
                None
            }
        });
        ArtifactCache { dir, engine_key: engine_key(engine) }
    }

    /// A cache that never stores anything.
    pub fn disabled(engine: &Engine) -> Self {
        ArtifactCache { dir: None, engine_key: engine_key(engine) }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn prepare(dir: &Path) -> Result<(), String> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create it: {e}"))?;
        let meta = fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err("not a directory".into());
        }
        if !private_to_us(&meta) {
            return Err("it is not owned by this user or is writable by others".into());
        }
        if meta.mode() & 0o077 != 0 {
            // Tighten a directory we own that others can read.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn entry_path(&self, content_hash: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{content_hash}-{}.cwasm", self.engine_key)))
    }

    /// The component for `bytes` (whose SHA-256 is `content_hash`): from the cache
    /// when a trustworthy entry exists, else compiled and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let entry = self.entry_path(content_hash);
        if let Some(path) = &entry
            && let Some(component) = self.try_load(engine, path)
        {
            return Ok((component, Origin::Cache));
        }
        let started = std::time::Instant::now();
        let component = Component::new(engine, bytes)?;
        let compiled = started.elapsed();
        if let Some(path) = &entry
            && let Err(e) = Self::store(&component, path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot store compiled component");
        }
        tracing::debug!(
            compile_ms = compiled.as_secs_f64() * 1e3,
            store_ms = (started.elapsed() - compiled).as_secs_f64() * 1e3,
            "compiled a component"
        );
        Ok((component, Origin::Compiled))
    }

    fn try_load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || !private_to_us(&meta) {
            tracing::warn!(path = %path.display(), "ignoring cached component that is not private to this user");
            return None;
        }
        // SAFETY: the file sits in a directory only this user can write, was
        // written by `store` below from `Component::serialize`, and wasmtime checks
        // its header and engine compatibility before using it.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "cached component unusable; recompiling");
                let _ = fs::remove_file(path);
                None
            }
        }
    }

    fn store(component: &Component, path: &Path) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let dir = path.parent().expect("cache entries live in the cache directory");
        // tempfile creates its files 0600. The rename replaces an entry that
        // was distrusted (or corrupt) in one step; a concurrent writer of the
        // same entry wrote the same bytes.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map(drop).map_err(|e| e.error)
    }
}
