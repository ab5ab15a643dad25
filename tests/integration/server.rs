//! A real `moat serve --dev` for HTTP tests, stopped by its own PID when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{moat, wasm};

pub struct Server {
    child: Child,
    pub url: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    /// `http://ADDR` of the admin listener, when started with one.
    pub admin: Option<String>,
}

impl Server {
    /// Serves disk_usage (granted the temp dir as `/`) and the conformance
    /// fixtures plugin.
    pub fn start() -> Server {
        Self::start_with(&[], |_| {})
    }

    /// Starts with extra `moat serve` arguments, after `prepare` has had a look
    /// at the plugins folder.
    pub fn start_with(args: &[&str], prepare: impl FnOnce(&Path)) -> Server {
        Self::start_with_env(args, &[], prepare)
    }

    /// Like [`Self::start_with`], with environment variables for the server's
    /// process alone.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Server {
        let mut all = vec!["--dev"];
        all.extend_from_slice(args);
        Self::launch(&all, env, prepare)
    }

    /// Starts without `--dev`, with `config` as `moat.toml`; `token` stays empty.
    pub fn start_configured(config: &str) -> Server {
        Self::start_configured_with(config, &[])
    }

    /// Like [`Self::start_configured`], with more files beside `moat.toml`.
    pub fn start_configured_with(config: &str, files: &[(&str, &str)]) -> Server {
        let mut all = vec![("moat.toml".to_owned(), config.to_owned())];
        all.extend(files.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())));
        Self::launch(&["--config", "moat.toml"], &[], move |plugins| {
            for (name, text) in all {
                std::fs::write(plugins.parent().unwrap().join(name), text).unwrap();
            }
        })
    }

    /// Starts `moat serve --dev` again in the folder of an earlier (stopped)
    /// server, as it was left.
    pub fn restart_in(dir: tempfile::TempDir, args: &[&str]) -> Server {
        let mut all = vec!["--dev"];
        all.extend_from_slice(args);
        Self::spawn_in(dir, &all, &[])
    }

    fn launch(args: &[&str], env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        for p in ["disk_usage", "everything"] {
            std::fs::copy(wasm(p), plugins.join(format!("{p}.wasm"))).unwrap();
        }
        std::fs::write(
            plugins.join("disk_usage.toml"),
            format!("[grants]\ndirs = [{{ host = \"{}\", guest = \"/\", mode = \"ro\" }}]\n", dir.path().display()),
        )
        .unwrap();
        prepare(&plugins);
        Self::spawn_in(dir, args, env)
    }

    fn spawn_in(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = moat(&dir.path().join("cache"));
        cmd.envs(env.iter().copied()).args(["serve", "--listen", "127.0.0.1:0"]).args(args).current_dir(dir.path());
        let (child, url, admin) = spawn_serving(cmd, &dir.path().join("moat.log"), args.contains(&"--admin-listen"));
        let token = if args.contains(&"--dev") { mint(dir.path(), &[]) } else { String::new() };
        Server { child, url, token, dir, admin }
    }

    pub fn base(&self) -> String {
        self.url.trim_end_matches("/mcp").to_owned()
    }

    /// The served plugins folder.
    pub fn plugins(&self) -> std::path::PathBuf {
        self.dir.path().join("plugins")
    }

    /// What the server has logged so far (stderr; warnings and errors by default).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moat.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A well-formed 2026-07-28 request to `url` with `token`: `_meta` in the params,
/// `MCP-Protocol-Version`, `Mcp-Method` and (for named targets) `Mcp-Name`. Not yet sent.
pub fn modern_request(url: &str, token: &str, method: &str, mut params: serde_json::Value) -> reqwest::RequestBuilder {
    params["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method);
    if let Some(name) = params["name"].as_str().or(params["uri"].as_str()) {
        req = req.header("Mcp-Name", name);
    }
    req.body(body.to_string())
}

/// Mints a dev token in `dir` with extra `moat token` arguments.
/// Starts `cmd` (a `moat serve`) with its stderr in `log` and waits until it
/// prints its URL and, when `want_admin`, its admin listener's.
/// MOAT_TEST_LOG=moat=debug puts the server's debug log in `log`.
pub fn spawn_serving(mut cmd: Command, log: &Path, want_admin: bool) -> (Child, String, Option<String>) {
    if let Some(filter) = std::env::var_os("MOAT_TEST_LOG") {
        cmd.env("MOAT_LOG", filter);
    }
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(log).unwrap()).spawn().expect("moat serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            for (key, prefix) in
                [("url", "moat: serving MCP at "), ("admin", "moat: admin (/metrics, /readyz?verbose) at ")]
            {
                if let Some(rest) = line.strip_prefix(prefix) {
                    let _ = tx.send((key, rest.split_whitespace().next().unwrap_or_default().to_owned()));
                }
            }
        }
    });
    let wait = || rx.recv_timeout(Duration::from_secs(60)).expect("moat serve prints its URL");
    let (mut url, mut admin) = (String::new(), None);
    while url.is_empty() || (want_admin && admin.is_none()) {
        match wait() {
            ("url", u) => url = u,
            (_, a) => admin = Some(a),
        }
    }
    (child, url, admin)
}

pub fn mint(dir: &Path, args: &[&str]) -> String {
    let out = moat(&dir.join("cache")).args(["token", "--dev"]).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "moat token: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Server {
    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal our own child");
        self.child.wait().expect("moat serve exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
