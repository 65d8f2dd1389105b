//! Helpers for tests that run the real `picloud` binary: start/stop a node on a
//! free loopback port, a minimal HTTP/1.1 client, bounded waiting.
#![allow(dead_code)]

pub mod git_http;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request with `Connection: close`; the body is read to the end.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw)?;
    let body = if chunked { dechunk(&raw) } else { raw };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = pos + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
}

/// Wait for `check` to hold, checking every 25 ms, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `picloud serve`.
pub struct Node {
    pub addr: String,
    pub child: Child,
    pub data_dir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// base64 of 32 bytes of 0x2a: the master key test nodes share.
pub const TEST_MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

impl Node {
    pub fn start(data_dir: &Path, database: Option<&str>, envs: &[(&str, &str)]) -> Node {
        let addr = format!("127.0.0.1:{}", free_port());
        std::fs::create_dir_all(data_dir).expect("data dir");
        let stdout = data_dir.join(format!("stdout-{}.log", addr.replace(':', "_")));
        let stderr = data_dir.join(format!("stderr-{}.log", addr.replace(':', "_")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_picloud"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(&addr)
            .env_remove("DATABASE_URL")
            .env_remove("PICLOUD_BOOTSTRAP_TOKEN")
            .env("PICLOUD_LOG_FORMAT", "json")
            // One key for every node of a test (nodes sharing a PostgreSQL, or a
            // log exported from one and imported into another); pass
            // ("PICLOUD_MASTER_KEY", "") to use the data directory's key file.
            .env("PICLOUD_MASTER_KEY", TEST_MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        if let Some(url) = database {
            cmd.arg("--database").arg(url);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn picloud");
        let node = Node {
            addr,
            child,
            data_dir: data_dir.to_owned(),
            stdout,
            stderr,
        };
        let ready = eventually(Duration::from_secs(60), || {
            request(&node.addr, "GET", "/readyz", &[], None)
                .ok()
                .filter(|r| r.status == 200)
        });
        if ready.is_none() {
            panic!(
                "node did not become ready; stderr:\n{}",
                std::fs::read_to_string(&node.stderr).unwrap_or_default()
            );
        }
        node
    }

    /// The id the node keeps in its data directory.
    pub fn id(&self) -> String {
        Node::id_in(&self.data_dir)
    }

    /// The node id kept in `data_dir`.
    pub fn id_in(data_dir: &Path) -> String {
        std::fs::read_to_string(data_dir.join("node-id"))
            .expect("node-id")
            .trim()
            .to_owned()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `GET /api/v1/admin/nodes` on this node: the registry's rows.
    pub fn nodes(&self, token: &str) -> Vec<serde_json::Value> {
        let r = self.call("GET", "/api/v1/admin/nodes", token, None);
        assert_eq!(r.status, 200, "GET /nodes: {}", r.text());
        r.json()["nodes"].as_array().cloned().unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = eventually(Duration::from_secs(30), || {
            self.child.try_wait().ok().flatten()
        });
        match status {
            Some(s) => s,
            None => {
                let _ = self.child.kill();
                panic!("node did not stop on SIGTERM");
            }
        }
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Response {
        let auth = format!("Bearer {token}");
        let bytes = body.map(|b| b.to_string().into_bytes());
        request(
            &self.addr,
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            bytes.as_deref(),
        )
        .expect("request")
    }

    pub fn get(&self, path: &str) -> Response {
        request(&self.addr, "GET", path, &[], None).expect("request")
    }

    /// The value of an unlabelled metric line (`name value`) in `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
    }

    /// `POST` that must answer 201; its JSON body.
    pub fn create(&self, path: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self.call("POST", path, token, Some(body));
        assert_eq!(r.status, 201, "POST {path}: {}", r.text());
        r.json()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL database of one test's own, dropped when this is (also when the
/// test panics), so a long-lived server given by `PICLOUD_TEST_DATABASE_URL` does
/// not collect them. Declare it before the nodes that use it: they are dropped
/// (killed) first.
pub struct TestDatabase {
    pub url: String,
    server: String,
    name: String,
}

/// A fresh PostgreSQL database for this test, or `None` (outside CI) when the
/// test command provided no server.
pub fn postgres_database() -> Option<TestDatabase> {
    let Ok(server) = std::env::var("PICLOUD_TEST_DATABASE_URL") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "PICLOUD_TEST_DATABASE_URL is not set: CI must run the PostgreSQL tests (use ops/test.sh)"
            );
        }
        eprintln!(
            "notice: PICLOUD_TEST_DATABASE_URL unset; skipping the PostgreSQL run (ops/test.sh provides one)"
        );
        return None;
    };
    let name = format!("picloud_e2e_{}", uuid::Uuid::new_v4().simple());
    on_server(&server, &format!("CREATE DATABASE {name}")).expect("create database");
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    Some(TestDatabase {
        url: format!("{base}/{name}"),
        server,
        name,
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = on_server(&self.server, &sql) {
            eprintln!("warning: could not drop {}: {e}", self.name);
        }
    }
}

/// One statement on the test server's own database.
fn on_server(server: &str, sql: &str) -> Result<(), sqlx::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(server).await?;
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql.to_owned())).await?;
        conn.close().await
    })
}

/// A SQLite node in a temp dir of its own, whose owner token is `token`.
pub fn node_with_token(token: &str) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(
        &dir.path().join("data"),
        None,
        &[("PICLOUD_BOOTSTRAP_TOKEN", token)],
    );
    (dir, node)
}

/// Whether a dependency the test needs is missing: with `CI=true` that fails the
/// test; elsewhere the test is skipped with a notice.
pub fn missing(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not available: CI must run this test (ops/test.sh installs it)");
    }
    eprintln!("notice: {what} is not available; skipping (ops/test.sh installs it)");
    true
}

/// The repository's root (the root package's directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A real Caddy in front of nodes, with the proxy settings that ship
/// (`ops/caddy/proxy.caddy`) in a plain-HTTP site on a free loopback port.
pub struct Caddy {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Caddy {
    /// `None` (outside CI) when `caddy` is not installed.
    pub fn start(upstreams: &[&str]) -> Option<Caddy> {
        if !Caddy::installed() {
            return None;
        }
        let addr = format!("127.0.0.1:{}", free_port());
        let proxy = repo_root().join("ops/caddy/proxy.caddy");
        let config = format!(
            "{{\n\tadmin off\n\tauto_https off\n}}\n\nhttp://{addr} {{\n\timport {}\n}}\n",
            proxy.display()
        );
        let envs = [("PICLOUD_UPSTREAMS", upstreams.join(" "))];
        // Up once it proxies a health check to a node.
        Some(Caddy::run(addr, &config, &envs, 200))
    }

    /// The shipped `ops/Caddyfile` in front of `node`, on free ports, with
    /// certificates from Caddy's own local CA instead of an ACME one (no network
    /// here): the platform's site is `picloud.test`, and every other name gets its
    /// certificate on demand if the node's `ask` endpoint allows it. `addr` is
    /// the HTTPS port; [`Caddy::root_pem`] is the CA to trust.
    pub fn shipped(node: &str) -> Option<Caddy> {
        if !Caddy::installed() {
            return None;
        }
        let root = repo_root().join("ops");
        let shipped = std::fs::read_to_string(root.join("Caddyfile")).expect("ops/Caddyfile");
        let (http_port, https_port) = (free_port(), free_port());
        // Test-only global options, then the shipped file as it is (its imports
        // made absolute, since the copy lives elsewhere).
        let config = shipped
            .replacen(
                "\n{\n",
                &format!(
                    "\n{{\n\tlocal_certs\n\tskip_install_trust\n\thttp_port {http_port}\n\
                     \thttps_port {https_port}\n\tdefault_bind 127.0.0.1\n"
                ),
                1,
            )
            .replace(
                "import caddy/",
                &format!("import {}/caddy/", root.display()),
            );
        assert!(
            config.contains("local_certs"),
            "ops/Caddyfile has a global block"
        );
        // Up once its HTTPS port answers (400 to plain HTTP).
        Some(Caddy::run(
            format!("127.0.0.1:{https_port}"),
            &config,
            &[
                ("PICLOUD_UPSTREAMS", node.to_owned()),
                ("PICLOUD_ASK", node.to_owned()),
                ("PICLOUD_SITE", "picloud.test".to_owned()),
                ("PICLOUD_CADDY_ADMIN", "off".to_owned()),
            ],
            400,
        ))
    }

    fn installed() -> bool {
        let installed = Command::new("caddy")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        installed || !missing("caddy")
    }

    /// Runs Caddy with `config`; returns once a plain `GET /healthz` on `addr`
    /// answers `ready`.
    fn run(addr: String, config: &str, envs: &[(&str, String)], ready: u16) -> Caddy {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, config).expect("Caddyfile");
        let log = std::fs::File::create(dir.path().join("caddy.log")).expect("log");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .env("PICLOUD_HEALTH_INTERVAL", "250ms")
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn caddy");
        let mut caddy = Caddy {
            addr,
            child,
            _dir: dir,
        };
        let up = eventually(Duration::from_secs(30), || {
            if caddy.child.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            request(&caddy.addr, "GET", "/healthz", &[], None)
                .is_ok_and(|r| r.status == ready)
                .then_some(true)
        });
        let up = up == Some(true);
        assert!(up, "caddy did not start:\n{}", caddy.log());
        caddy
    }

    /// The root certificate of Caddy's local CA (PEM), once it exists.
    pub fn root_pem(&self) -> Vec<u8> {
        let path = self
            ._dir
            .path()
            .join("caddy/pki/authorities/local/root.crt");
        eventually(Duration::from_secs(30), || std::fs::read(&path).ok())
            .unwrap_or_else(|| panic!("no local CA root:\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server of one test's own (`ops/pg-test.sh` with a state file in
/// a temp dir), for tests that stop and start it. Stopped and deleted on drop.
pub struct PgServer {
    pub url: String,
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl PgServer {
    /// `None` (outside CI) when no PostgreSQL server can be started here.
    pub fn start() -> Option<PgServer> {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("pg.state");
        let mut server = PgServer {
            url: String::new(),
            state,
            _dir: dir,
        };
        if !server.script("start") {
            missing("a PostgreSQL server of the test's own");
            return None;
        }
        let out = Command::new(repo_root().join("ops/pg-test.sh"))
            .arg("url")
            .env("PICLOUD_PG_STATE", &server.state)
            .output()
            .expect("pg-test.sh url");
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(out.status.success() && !url.is_empty(), "pg-test.sh url");
        server.url = url;
        Some(server)
    }

    /// Stop the server, keeping its data.
    pub fn halt(&self) {
        assert!(self.script("halt"), "pg-test.sh halt");
    }

    /// Start it again on the same port.
    pub fn resume(&self) {
        assert!(self.script("resume"), "pg-test.sh resume");
    }

    fn script(&self, command: &str) -> bool {
        Command::new(repo_root().join("ops/pg-test.sh"))
            .arg(command)
            .env("PICLOUD_PG_STATE", &self.state)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.state.exists() && !self.script("stop") {
            eprintln!("warning: could not stop the test's PostgreSQL server");
        }
    }
}
