//! A tiny HTTP/1.1 server for tests (feature `test-util`), bound to the loopback
//! address a test chooses. Routes:
//!
//! - `/text` → `hello` as text; `/json` → `{"ok":true,"n":[1,2]}` as JSON;
//! - `/status/<code>` → that status; `/redirect/<code>?to=<url>` → a redirect;
//! - `/echo` → the request as JSON (`method`, `path`, `headers`, `body`);
//! - `/big/<n>` → `n` bytes with a `content-length`; `/chunked/<n>` → `n` bytes
//!   chunked (no length known in advance); `/hang` → never answers.
//!
//! Every request is counted ([`TestServer::hits`]), so a test can prove that a refused
//! call never arrived.

use std::future::pending;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on `ip` (a loopback address) and an ephemeral port.
    pub async fn start(ip: IpAddr) -> io::Result<TestServer> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        Ok(TestServer { addr, hits, task })
    }

    /// `http://<ip>:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(addr) => format!("http://{addr}{path}"),
            SocketAddr::V6(addr) => format!("http://[{}]:{}{path}", addr.ip(), addr.port()),
        }
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn serve(mut stream: TcpStream) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match segments.as_slice() {
        ["text"] => reply(200, "text/plain", &[], b"hello".to_vec(), true),
        ["json"] => reply(
            200,
            "application/json",
            &[],
            br#"{"ok":true,"n":[1,2]}"#.to_vec(),
            true,
        ),
        ["status", code] => reply(
            code.parse().unwrap_or(500),
            "text/plain",
            &[],
            b"status".to_vec(),
            true,
        ),
        ["redirect", code] => {
            let to = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("to="))
                .map(percent_decode)
                .unwrap_or_default();
            reply(
                code.parse().unwrap_or(302),
                "text/plain",
                &[("location", &to)],
                Vec::new(),
                true,
            )
        }
        ["echo"] => reply(
            200,
            "application/json",
            &[],
            echo(&request).into_bytes(),
            true,
        ),
        ["big", n] => reply(
            200,
            "text/plain",
            &[],
            vec![b'a'; n.parse().unwrap_or(0)],
            true,
        ),
        ["chunked", n] => reply(
            200,
            "text/plain",
            &[],
            vec![b'a'; n.parse().unwrap_or(0)],
            false,
        ),
        ["hang"] => return pending().await,
        _ => reply(404, "text/plain", &[], b"not found".to_vec(), true),
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn reply(
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: Vec<u8>,
    with_length: bool,
) -> Vec<u8> {
    let mut head =
        format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\nconnection: close\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut out;
    if with_length {
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        out = head.into_bytes();
        out.extend_from_slice(&body);
    } else {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        out = head.into_bytes();
        for piece in body.chunks(8192) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

fn echo(request: &Request) -> String {
    let headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, value)| format!("{}:{}", json_string(name), json_string(value)))
        .collect();
    format!(
        r#"{{"method":{},"path":{},"headers":{{{}}},"body":{}}}"#,
        json_string(&request.method),
        json_string(&request.target),
        headers.join(","),
        json_string(&String::from_utf8_lossy(&request.body)),
    )
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%XX` escapes (enough for URLs in test queries).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
