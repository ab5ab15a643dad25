//! Tools that each try one thing the sandbox must stop or contain. The integration
//! tests call them and assert the outcome.

use moat_sdk::{Json, LogLevel, log, tool, volume_stats};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct PathArg {
    path: String,
}

#[derive(Deserialize, JsonSchema)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize, JsonSchema)]
struct NameArg {
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct Size {
    /// How many units (MiB for alloc, bytes for big_output, ms for sleep).
    #[schemars(range(min = 0))]
    n: u64,
}

#[derive(Deserialize, JsonSchema)]
struct Message {
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct Touch {
    /// Where to write a marker file.
    path: String,
    /// Must be a non-negative integer.
    #[schemars(range(min = 0))]
    count: u32,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Stats {
    total_bytes: u64,
    free_bytes: u64,
}

/// Reads a file and returns its text.
#[tool(read_only)]
fn read_file(args: PathArg) -> Result<String, String> {
    std::fs::read_to_string(&args.path).map_err(|e| format!("{}: {e}", args.path))
}

/// Writes text to a file.
#[tool]
fn write_file(args: WriteArgs) -> Result<String, String> {
    std::fs::write(&args.path, &args.content).map_err(|e| format!("{}: {e}", args.path))?;
    Ok("written".into())
}

/// Lists a directory.
#[tool(read_only)]
fn list_dir(args: PathArg) -> Result<String, String> {
    let mut names: Vec<String> = std::fs::read_dir(&args.path)
        .map_err(|e| format!("{}: {e}", args.path))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names.join("\n"))
}

/// Asks the host for filesystem statistics of a path.
#[tool(read_only)]
fn stat(args: PathArg) -> Result<Json<Stats>, String> {
    let s = volume_stats(&args.path).map_err(|e| e.to_string())?;
    Ok(Json(Stats { total_bytes: s.total_bytes, free_bytes: s.free_bytes }))
}

/// Returns an environment variable, or `<unset>`.
#[tool(read_only)]
fn env(args: NameArg) -> String {
    std::env::var(&args.name).unwrap_or_else(|_| "<unset>".into())
}

/// Returns the names of all environment variables the plugin sees.
#[tool(read_only)]
fn env_names() -> String {
    std::env::vars().map(|(k, _)| k).collect::<Vec<_>>().join(",")
}

/// Loops forever.
#[tool(read_only)]
fn spin() -> String {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Sleeps for `n` milliseconds (blocked in the host, not running wasm).
#[tool(read_only)]
fn sleep(args: Size) -> String {
    std::thread::sleep(std::time::Duration::from_millis(args.n));
    "awake".into()
}

/// Allocates and touches `n` MiB.
#[tool(read_only)]
fn alloc(args: Size) -> String {
    let mut blocks = Vec::new();
    for _ in 0..args.n {
        blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
    format!("allocated {} MiB", blocks.len())
}

/// Executes an `unreachable` instruction.
#[tool(read_only)]
fn trap() -> String {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!()
}

/// Panics with a message.
#[tool(read_only)]
fn panic(args: Message) -> String {
    panic!("{}", args.message)
}

/// Recurses without end.
#[tool(read_only)]
fn recurse() -> String {
    #[allow(unconditional_recursion)]
    fn down(n: u64) -> u64 {
        std::hint::black_box(down(std::hint::black_box(n + 1))) + 1
    }
    down(0).to_string()
}

/// Returns `n` bytes of text.
#[tool(read_only)]
fn big_output(args: Size) -> String {
    "x".repeat(args.n as usize)
}

/// Writes a marker file (the tests check that invalid arguments never get here).
#[tool]
fn touch(args: Touch) -> Result<String, String> {
    log(LogLevel::Info, &format!("touching {}", args.path));
    std::fs::write(&args.path, args.count.to_string()).map_err(|e| format!("{}: {e}", args.path))?;
    Ok("touched".into())
}

/// Tries to open a TCP connection to an address.
#[tool(read_only)]
fn connect(args: NameArg) -> Result<String, String> {
    std::net::TcpStream::connect(&args.name)
        .map(|_| "connected".to_string())
        .map_err(|e| format!("connect failed: {e}"))
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Counts its calls in a static: a fresh instance per call always says 1.
#[tool(read_only)]
fn counter() -> String {
    (CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1).to_string()
}

/// Writes `n` bytes to stderr, then succeeds.
#[tool(read_only)]
fn shout(args: Size) -> String {
    let line = "x".repeat(1023);
    for _ in 0..args.n / 1024 {
        eprintln!("{line}");
    }
    "shouted".into()
}

/// Succeeds.
#[tool(read_only, idempotent)]
fn ok() -> String {
    "fine".into()
}

/// Who is calling, as the host tells it.
#[tool(read_only)]
fn whoami() -> String {
    match moat_sdk::caller() {
        None => "nobody".into(),
        Some(i) => format!("{} [{}] via {}", i.subject, i.scopes.join(" "), i.client_id.as_deref().unwrap_or("-")),
    }
}

moat_sdk::plugin!(Hostile {
    tools: [
        read_file, write_file, list_dir, stat, env, env_names, spin, sleep, alloc, trap, panic, recurse, big_output,
        touch, connect, counter, shout, ok, whoami
    ],
});
