//! `cargo xtask bench-runtime`: what a sandboxed call costs, and what loading a
//! component costs from the cache versus compiling it.
//!
//! Every figure is reported beside a baseline measured in the same run: the
//! `trivial` plugin (raw bindings, no SDK) for calls, compilation for loads.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moat::config::{DirGrant, DirMode, PluginSettings};
use moat::runtime::cache::ArtifactCache;
use moat::runtime::{CallContext, LoadedPlugin, Runtime, RuntimeOptions};
use serde_json::json;
use sha2::{Digest, Sha256};

fn wasm(name: &str) -> PathBuf {
    let dir = std::env::var_os("MOAT_TEST_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} missing: run `cargo xtask build-plugins`", p.display());
    p
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats { mean, p50: percentile(&samples, 0.5), p99: percentile(&samples, 0.99) }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn bench_calls(rt: &Runtime, p: &LoadedPlugin, tool: &str, args: &serde_json::Value, n: usize) -> Stats {
    let ctx = CallContext::default();
    for _ in 0..(n / 10).max(10) {
        rt.call_tool(p, tool, args, &ctx).await.expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        rt.call_tool(p, tool, args, &ctx).await.expect("call");
        samples.push(t.elapsed());
    }
    stats(samples)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let cache_dir = tempfile::tempdir().unwrap();
    let runtime =
        Runtime::new(RuntimeOptions { cache_dir: Some(cache_dir.path().join("c")), ..Default::default() }).unwrap();
    let n = 5000;

    println!("== fresh instance + call, sequential, {n} calls each ==");
    let trivial = runtime.load(&wasm("trivial"), PluginSettings::default()).await.unwrap();
    let base = bench_calls(&runtime, &trivial, "noop", &json!({}), n).await;
    let mut settings = PluginSettings::default();
    settings.dirs.push(DirGrant::new(Path::new("/"), "/", DirMode::Ro).unwrap());
    let disk = runtime.load(&wasm("disk_usage"), settings).await.unwrap();
    let du = bench_calls(&runtime, &disk, "disk_usage", &json!({"path": "/"}), n).await;
    println!("{:<28} {:>10} {:>10} {:>10}", "", "mean µs", "p50 µs", "p99 µs");
    for (name, s) in [("trivial noop (baseline)", &base), ("disk_usage", &du)] {
        println!("{name:<28} {:>10.1} {:>10.1} {:>10.1}", us(s.mean), us(s.p50), us(s.p99));
    }
    println!("disk_usage / baseline: {:.2}x (mean)", du.mean.as_secs_f64() / base.mean.as_secs_f64());

    println!("\n== loading a component: compile vs cached artifact ==");
    for name in ["trivial", "disk_usage"] {
        let bytes = std::fs::read(wasm(name)).unwrap();
        let hash = hex::encode(Sha256::digest(&bytes));
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(runtime.engine(), Some(dir.path().join("c")));
        let mut compile = Vec::new();
        let mut cached = Vec::new();
        for i in 0..5 {
            // A fresh cache directory each round so the first load compiles.
            let round = ArtifactCache::new(runtime.engine(), Some(dir.path().join(format!("r{i}"))));
            let t = Instant::now();
            let (_, origin) = round.load_or_compile(runtime.engine(), &bytes, &hash).unwrap();
            compile.push(t.elapsed());
            assert_eq!(origin, moat::runtime::Origin::Compiled);
        }
        cache.load_or_compile(runtime.engine(), &bytes, &hash).unwrap();
        for _ in 0..50 {
            let t = Instant::now();
            let (_, origin) = cache.load_or_compile(runtime.engine(), &bytes, &hash).unwrap();
            cached.push(t.elapsed());
            assert_eq!(origin, moat::runtime::Origin::Cache);
        }
        let (c, h) = (stats(compile), stats(cached));
        println!(
            "{name:<12} compile p50 {:>8.2} ms   cached p50 {:>6.3} ms   ({:.0}x faster; {} KiB component)",
            c.p50.as_secs_f64() * 1e3,
            h.p50.as_secs_f64() * 1e3,
            c.p50.as_secs_f64() / h.p50.as_secs_f64(),
            bytes.len() / 1024
        );
    }

    println!("\n== full plugin load (cache hit: deserialize + instantiate + read catalogue) ==");
    let mut full = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let p = runtime.load(&wasm("disk_usage"), PluginSettings::default()).await.unwrap();
        full.push(t.elapsed());
        assert_eq!(p.origin, moat::runtime::Origin::Cache);
    }
    let f = stats(full);
    println!("disk_usage   p50 {:.3} ms   p99 {:.3} ms", f.p50.as_secs_f64() * 1e3, f.p99.as_secs_f64() * 1e3);

    languages(&runtime).await;
}

/// The same word count written in Rust, Python and TypeScript: per call, cold
/// compile, cached load. Rust is the baseline.
async fn languages(runtime: &Runtime) {
    let text = "the quick brown fox jumps over the lazy dog\n".repeat(20);
    let args = json!({"text": text, "unique": true});
    let n = 300;
    println!("\n== one word count in three languages: {n} sequential calls each, then loads ==");
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10}",
        "", "MB", "mean µs", "p50 µs", "p99 µs", "compile s", "cached ms", "load ms"
    );
    let mut base = None;
    for (file, tool) in
        [("word_count_rs", "rs_word_count"), ("word_count_py", "py_word_count"), ("word_count_ts", "ts_word_count")]
    {
        let bytes = std::fs::read(wasm(file)).unwrap();
        let hash = hex::encode(Sha256::digest(&bytes));
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(runtime.engine(), Some(dir.path().join("c")));
        let t = Instant::now();
        let (_, origin) = cache.load_or_compile(runtime.engine(), &bytes, &hash).unwrap();
        let compile = t.elapsed();
        assert_eq!(origin, moat::runtime::Origin::Compiled);
        let mut cached = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            cache.load_or_compile(runtime.engine(), &bytes, &hash).unwrap();
            cached.push(t.elapsed());
        }
        let own = Runtime::new(RuntimeOptions { cache_dir: Some(dir.path().join("c")), ..Default::default() }).unwrap();
        let mut loads = Vec::new();
        let mut plugin = None;
        for _ in 0..10 {
            let t = Instant::now();
            let p = own.load(&wasm(file), PluginSettings::default()).await.unwrap();
            loads.push(t.elapsed());
            assert_eq!(p.origin, moat::runtime::Origin::Cache);
            plugin = Some(p);
        }
        let s = bench_calls(&own, plugin.as_ref().unwrap(), tool, &args, n).await;
        let (c, l) = (stats(cached), stats(loads));
        println!(
            "{file:<16} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.2} {:>10.2} {:>10.2}",
            bytes.len() as f64 / 1e6,
            us(s.mean),
            us(s.p50),
            us(s.p99),
            compile.as_secs_f64(),
            c.p50.as_secs_f64() * 1e3,
            l.p50.as_secs_f64() * 1e3
        );
        let base = *base.get_or_insert((s.mean, compile, c.p50));
        if file != "word_count_rs" {
            println!(
                "{:<16} per call {:.1}x, compile {:.1}x, cached load {:.1}x the Rust plugin",
                "",
                s.mean.as_secs_f64() / base.0.as_secs_f64(),
                compile.as_secs_f64() / base.1.as_secs_f64(),
                c.p50.as_secs_f64() / base.2.as_secs_f64()
            );
        }
    }
}
