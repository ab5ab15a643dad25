//! Debian's `redis-server` and `nginx` on loopback for the fleet tests and
//! the fleet benchmark (included by both with `#[path]`): Redis on a unix
//! socket in a temp folder (no port to race for), nginx on a free port with
//! the repository's `deploy/nginx/moat.conf` in front of the given replicas.
//! Each is stopped by its own PID when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process stopped (by its own PID) when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn binary(name: &str, package: &str) -> PathBuf {
    let p = PathBuf::from("/usr/sbin").join(name);
    let p = if p.exists() { p } else { PathBuf::from("/usr/bin").join(name) };
    assert!(p.exists(), "{name} is not installed: `cargo xtask test` installs Debian's {package} package");
    p
}

/// `redis-server` on a unix socket (no port to race for), nothing saved.
pub struct RedisServer {
    pub proc: Proc,
    pub socket: PathBuf,
}

impl RedisServer {
    pub fn start(dir: &Path) -> RedisServer {
        let socket = dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(binary("redis-server", "redis-server"))
            .args(["--port", "0", "--unixsocketperm", "700", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let redis = RedisServer { proc: Proc(child), socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not answer PING on {}", redis.socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// One `redis-cli` command's output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").arg("-s").arg(&self.socket).args(args).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
    }
}

/// nginx with the repository's proxy settings in front of `upstreams`.
pub struct Nginx {
    _proc: Proc,
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    pub access_log: PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path, upstreams: &[&str]) -> Nginx {
        let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/moat.conf"))
            .expect("deploy/nginx/moat.conf");
        for attempt in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let conf = nginx_conf(&shipped, dir, upstreams, port);
            let file = dir.join("nginx.conf");
            std::fs::write(&file, conf).unwrap();
            let child = Command::new(binary("nginx", "nginx"))
                .arg("-c")
                .arg(&file)
                .arg("-p")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("nginx{attempt}.err"))).unwrap())
                .spawn()
                .expect("nginx starts");
            let mut proc = Proc(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Nginx {
                        _proc: proc,
                        url: format!("http://127.0.0.1:{port}/mcp"),
                        access_log: dir.join("access.log"),
                    };
                }
                if proc.0.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    proc.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("nginx did not start: {}", std::fs::read_to_string(dir.join("nginx2.err")).unwrap_or_default());
    }

    /// The access log: (session id or "-", upstream address, status) per request.
    pub fn requests(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some((f.next()?.to_owned(), f.next()?.to_owned(), f.next()?.to_owned()))
            })
            .collect()
    }
}

/// The shipped config with the test's upstreams (keeping the shipped server
/// options), plain HTTP on the test's port in place of its TLS listener (the
/// redirect server dropped), and the test's files.
fn nginx_conf(shipped: &str, dir: &Path, upstreams: &[&str], port: u16) -> String {
    use regex::Regex;
    let server_line = Regex::new(r"(?m)^[ \t]*server[ \t]+[0-9A-Za-z.\-]+:\d+([^;]*);[ \t]*\n").unwrap();
    let options = server_line.captures(shipped).map(|c| c[1].to_owned()).expect("the shipped upstream has servers");
    let mut body = server_line.replace_all(shipped, "").into_owned();
    let servers: String = upstreams.iter().map(|u| format!("    server {u}{options};\n")).collect();
    assert!(body.contains("upstream moat {"), "the shipped config names its upstream `moat`");
    body = body.replacen("upstream moat {", &format!("upstream moat {{\n{servers}"), 1);
    body = Regex::new(r"server \{[^{}]*return 308[^{}]*\}").unwrap().replace(&body, "").into_owned();
    body =
        Regex::new(r"(?m)^[ \t]*(listen|ssl_[a-z_]+)[ \t]+[^;]*;[ \t]*\n").unwrap().replace_all(&body, "").into_owned();
    body = body.replacen("server {", &format!("server {{\n    listen 127.0.0.1:{port};"), 1);
    let tmp = dir.join("nginx-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           log_format fleet '$http_mcp_session_id $upstream_addr $status';\n\
           access_log {dir}/access.log fleet;\n\
           client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n fastcgi_temp_path {tmp}/fastcgi;\n\
           uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n\
           {body}\n}}\n",
        dir = dir.display(),
        tmp = tmp.display(),
    )
}
