//! A keep-alive HTTP/1.1 client over tokio, and the closed-loop load generator built
//! on it (what `wrk` does: N connections, each sending its next request as soon as
//! the previous answer is in, bounded by a duration and a request count).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats::percentile;

/// Longest any single answer may take before the run counts as errored.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEADERS: usize = 64;

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The bytes of one request; built once and sent many times under load.
pub fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8 * 1024),
        })
    }

    /// Send one request (as built by `request`) and read its answer.
    pub async fn send(&mut self, raw: &[u8]) -> anyhow::Result<Reply> {
        self.stream.write_all(raw).await?;
        tokio::time::timeout(ANSWER_TIMEOUT, self.read_reply())
            .await
            .context("no answer within 30 s")?
    }

    async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        loop {
            if let Some(reply) = self.parse()? {
                return Ok(reply);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A complete answer at the front of the buffer, removed from it.
    fn parse(&mut self) -> anyhow::Result<Option<Reply>> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&self.buf)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let status = response.code.unwrap_or(0);
        let mut length = None;
        let mut chunked = false;
        for h in response.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                && h.value.eq_ignore_ascii_case(b"chunked")
            {
                chunked = true;
            }
        }
        if chunked {
            return Ok(dechunk(&self.buf[head_len..]).map(|(body, used)| {
                self.buf.drain(..head_len + used);
                Reply { status, body }
            }));
        }
        let length = match (length, status) {
            (Some(n), _) => n,
            (None, 204 | 304) | (None, 100..=199) => 0,
            (None, _) => bail!("an answer without Content-Length (status {status})"),
        };
        if self.buf.len() < head_len + length {
            return Ok(None);
        }
        let body = self.buf[head_len..head_len + length].to_vec();
        self.buf.drain(..head_len + length);
        Ok(Some(Reply { status, body }))
    }
}

/// A complete chunked body at the front of `raw`: the body and the bytes it used.
fn dechunk(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = raw[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let size_text = std::str::from_utf8(&raw[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // The final CRLF (no trailers).
            return (raw.len() >= at + 2).then_some((body, at + 2));
        }
        if raw.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[at..at + size]);
        at += size + 2;
    }
}

/// One run of the load generator.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub connections: usize,
    pub duration: Duration,
    pub max_requests: u64,
}

pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Per-request latencies in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p(&self, p: f64) -> f64 {
        f64::from(percentile(&self.latencies_us, p))
    }

    /// An error unless every answer was a 2xx.
    pub fn check(self, what: &str) -> anyhow::Result<LoadResult> {
        if self.errors > 0 || self.requests == 0 {
            bail!(
                "{what}: {} of {} requests failed (first: {})",
                self.errors,
                self.requests + self.errors,
                self.first_error
                    .as_deref()
                    .unwrap_or("no request completed")
            );
        }
        Ok(self)
    }
}

/// Closed-loop load: `load.connections` connections each send `raw` again as soon
/// as the previous answer is in, until the duration or the request count runs out.
pub async fn run(addr: SocketAddr, raw: Arc<Vec<u8>>, load: Load) -> anyhow::Result<LoadResult> {
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + load.duration;
    let mut tasks = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        let raw = raw.clone();
        let issued = issued.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut first_error = None;
            let mut conn = match Conn::connect(addr).await {
                Ok(c) => c,
                Err(e) => return (latencies, 1, Some(format!("{e:#}"))),
            };
            while Instant::now() < deadline
                && issued.fetch_add(1, Ordering::Relaxed) < load.max_requests
            {
                let t0 = Instant::now();
                match conn.send(&raw).await {
                    Ok(reply) if (200..300).contains(&reply.status) => {
                        let us = t0.elapsed().as_micros();
                        latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Ok(reply) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!("status {}: {}", reply.status, reply.text())
                        });
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        break;
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let (l, e, f) = task.await.context("a load connection panicked")?;
        latencies_us.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Ok(LoadResult {
        requests: latencies_us.len() as u64,
        errors,
        first_error,
        elapsed,
        latencies_us,
    })
}

/// `picloud-bench load URL`: closed-loop `GET`s of a loopback URL, then a summary.
pub async fn load_url(url: &str, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("{authority} is not IP:PORT"))?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "only loopback addresses are loaded"
    );
    let path = if path.is_empty() { "/" } else { path };
    let raw = Arc::new(request("GET", addr, path, &[], b""));
    let load = Load {
        connections: connections.max(1),
        duration: Duration::from_secs(seconds.clamp(1, 60)),
        max_requests: 10_000_000,
    };
    let result = run(addr, raw, load).await?.check(url)?;
    println!(
        "{} requests in {:.2} s: {:.0} req/s, p50 {} µs, p99 {} µs, max {} µs",
        result.requests,
        result.elapsed.as_secs_f64(),
        result.rps(),
        result.p(50.0),
        result.p(99.0),
        result.p(100.0)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_complete_only_with_its_last_chunk() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT"),
            Some((b"abcde".to_vec(), 20))
        );
        assert_eq!(dechunk(b"3\r\nabc\r\n"), None);
    }

    #[test]
    fn a_get_has_no_content_length() {
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let raw = request("GET", addr, "/x", &[], b"");
        assert_eq!(
            raw,
            b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n".to_vec()
        );
    }
}
