//! A git server on loopback for tests: `git http-backend` (git's smart HTTP
//! protocol, as CGI) behind a small HTTP/1.1 server, over plain TCP or TLS with a
//! certificate authority the test makes, optionally asking for basic auth.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine;

pub struct GitServer {
    pub port: u16,
    scheme: &'static str,
    /// The PEM file of the certificate authority (TLS only).
    pub ca_file: Option<PathBuf>,
    /// Requests answered so far.
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// `git -C dir ARGS` with a fixed identity and no system or user configuration;
/// its trimmed standard output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.test"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Push `work`'s `main` to the bare repository `root/name` (made the first time),
/// which a [`GitServer`] on `root` serves; its path.
pub fn publish(work: &Path, root: &Path, name: &str) -> PathBuf {
    let bare = root.join(name);
    let path = bare.to_str().expect("utf-8");
    if !bare.exists() {
        std::fs::create_dir_all(root).expect("mkdir");
        git(root, &["init", "-q", "--bare", "-b", "main", path]);
    }
    git(work, &["push", "-q", path, "main"]);
    bare
}

/// `git` runs its protocol here; a test skips (or fails under CI) without it.
pub fn git_installed() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl GitServer {
    /// Serve the repositories under `root`; with `tls`, over https with a new
    /// certificate authority (written to `root/../ca.pem`) and a certificate for
    /// `127.0.0.1` and `localhost`; with `basic` (`user`, `password`), every
    /// request needs those credentials.
    pub fn start(root: &Path, tls: bool, basic: Option<(&str, &str)>) -> GitServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (config, ca_file) = if tls {
            let (config, ca_pem) = tls_config();
            let file = root.parent().expect("parent").join("ca.pem");
            std::fs::write(&file, ca_pem).expect("ca.pem");
            (Some(Arc::new(config)), Some(file))
        } else {
            (None, None)
        };
        let expected = basic.map(|(user, password)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        });
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, counted, stopped) = (root.to_owned(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (root, config, expected, counted) = (
                    root.clone(),
                    config.clone(),
                    expected.clone(),
                    counted.clone(),
                );
                std::thread::spawn(move || {
                    let _ = match config {
                        Some(config) => match rustls::ServerConnection::new(config) {
                            Ok(tls) => serve(
                                rustls::StreamOwned::new(tls, stream),
                                &root,
                                expected.as_deref(),
                                &counted,
                            ),
                            Err(_) => Ok(()),
                        },
                        None => serve(stream, &root, expected.as_deref(), &counted),
                    };
                });
            }
        });
        GitServer {
            port,
            scheme: if tls { "https" } else { "http" },
            ca_file,
            requests,
            stop,
        }
    }

    /// The URL of the repository `name` (a directory under the root).
    pub fn url(&self, name: &str) -> String {
        format!("{}://127.0.0.1:{}/{name}", self.scheme, self.port)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn tls_config() -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "PiCloud test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params");
    let cert = params.signed_by(&key, &issuer).expect("cert");
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)
    .expect("server config");
    (config, ca_cert.pem())
}

/// One request (`Connection: close`): basic auth if asked for, then git's CGI.
fn serve(
    stream: impl Read + Write,
    root: &Path,
    expected_auth: Option<&str>,
    counted: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    counted.fetch_add(1, Ordering::SeqCst);
    let mut stream = reader.into_inner();
    if let Some(expected) = expected_auth
        && get("authorization").as_deref() != Some(expected)
    {
        let text = "credentials needed\n";
        write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )?;
        return stream.flush();
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", get("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", length.to_string())
        .env("GIT_PROTOCOL", get("git-protocol").unwrap_or_default())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = cgi.stdin.take() {
        stdin.write_all(&body)?;
    }
    let out = cgi.wait_with_output()?;
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, p + 2))
        })
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..split.0]).into_owned();
    let content = &raw[split.1..];
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    for header in head.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match header.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            _ => response.push(header.to_owned()),
        }
    }
    write!(stream, "HTTP/1.1 {status}\r\n")?;
    for header in response {
        write!(stream, "{header}\r\n")?;
    }
    write!(
        stream,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    )?;
    stream.write_all(content)?;
    stream.flush()
}
