//! The compiled-component cache: a restart loads without compiling, and an entry
//! that is corrupt or writable by others is never trusted.

use std::os::unix::fs::PermissionsExt;

use moat::config::PluginSettings;
use moat::runtime::{Origin, Runtime, RuntimeOptions};

use crate::common::*;

#[tokio::test]
async fn restart_loads_from_cache_and_distrusts_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let file = wasm("trivial");
    let new_rt = || Runtime::new(RuntimeOptions { cache_dir: Some(dir.clone()), ..Default::default() }).unwrap();

    let p = new_rt().load(&file, PluginSettings::default()).await.unwrap();
    assert_eq!(p.origin, Origin::Compiled);
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

    // A "restart": a new engine, same cache.
    let p = new_rt().load(&file, PluginSettings::default()).await.unwrap();
    assert_eq!(p.origin, Origin::Cache);

    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache entry");
    assert_eq!(std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777, 0o600);

    // Writable by others: ignored and recompiled.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let p = new_rt().load(&file, PluginSettings::default()).await.unwrap();
    assert_eq!(p.origin, Origin::Compiled);

    // Corrupt: refused by wasmtime, recompiled, replaced.
    std::fs::write(&entry, b"garbage that is not an artifact").unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = new_rt().load(&file, PluginSettings::default()).await.unwrap();
    assert_eq!(p.origin, Origin::Compiled);
    let p2 = new_rt().load(&file, PluginSettings::default()).await.unwrap();
    assert_eq!(p2.origin, Origin::Cache);
    assert_eq!(p.hash, p2.hash);
}

#[tokio::test]
async fn a_shared_cache_directory_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let rt = Runtime::new(RuntimeOptions { cache_dir: Some(dir.clone()), ..Default::default() }).unwrap();
    assert!(rt.cache_dir().is_none(), "a world-writable cache directory must be refused");
    let p = rt.load(&wasm("trivial"), PluginSettings::default()).await.unwrap();
    assert_eq!(p.origin, Origin::Compiled);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}
