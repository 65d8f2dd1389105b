//! One HTTP request of a fetch and its answer, as gix holds them: the upload it
//! writes, the headers and the body it reads (three values sharing one
//! [`Exchange`]). The request is sent when the answer is first read.

use std::io::{self, BufRead, Cursor, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use gix_transport::client::AuthenticationRequired;
use reqwest::StatusCode;
use tokio::runtime::Handle;

use super::MAX_FETCH_BYTES;

/// One request and its answer, shared by the upload, the headers and the body
/// gix holds separately.
pub(super) struct Exchange {
    pub(super) request: Option<reqwest::RequestBuilder>,
    pub(super) upload: Vec<u8>,
    pub(super) outcome: Option<Outcome>,
    pub(super) runtime: Handle,
    pub(super) url: String,
    pub(super) base_url: String,
    pub(super) with_credentials: bool,
    pub(super) failure: Arc<Mutex<Option<String>>>,
    /// The base URL after a redirect.
    pub(super) redirected: Option<String>,
}

pub(super) enum Outcome {
    Answered {
        headers: Option<Vec<u8>>,
        response: Option<reqwest::Response>,
    },
    Failed(io::ErrorKind, String, bool),
}

impl Exchange {
    /// Sends the request (once); what came back is kept in `outcome`.
    pub(super) fn send(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        let Some(mut request) = self.request.take() else {
            return;
        };
        if !self.upload.is_empty() {
            request = request.body(std::mem::take(&mut self.upload));
        }
        let outcome = match self.runtime.block_on(request.send()) {
            Err(e) => Outcome::Failed(io::ErrorKind::Other, describe(&e), false),
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => Outcome::Failed(
                io::ErrorKind::PermissionDenied,
                if self.with_credentials {
                    "the server refused the credentials (401)".into()
                } else {
                    "the repository needs credentials (401)".into()
                },
                true,
            ),
            Ok(response) if !response.status().is_success() => Outcome::Failed(
                io::ErrorKind::Other,
                format!("the server answered {}", response.status()),
                false,
            ),
            Ok(response) => {
                let final_url = response.url().as_str();
                if final_url != self.url
                    && let Some(tail) = self.url.strip_prefix(&self.base_url)
                    && let Some(base) = final_url.strip_suffix(tail)
                {
                    self.redirected = Some(base.to_owned());
                }
                let mut headers = Vec::new();
                for (name, value) in response.headers() {
                    headers.extend_from_slice(name.as_str().as_bytes());
                    headers.extend_from_slice(b": ");
                    headers.extend_from_slice(value.as_bytes());
                    headers.push(b'\n');
                }
                Outcome::Answered {
                    headers: Some(headers),
                    response: Some(response),
                }
            }
        };
        if let Outcome::Failed(_, why, _) = &outcome {
            *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
        }
        self.outcome = Some(outcome);
    }

    fn error(kind: io::ErrorKind, why: &str, unauthorized: bool) -> io::Error {
        if unauthorized {
            // gix asks its credential callback on this exact error.
            io::Error::new(kind, AuthenticationRequired::default())
        } else {
            io::Error::new(kind, why.to_owned())
        }
    }

    fn take_headers(&mut self) -> io::Result<Vec<u8>> {
        self.send();
        match &mut self.outcome {
            Some(Outcome::Answered { headers, .. }) => Ok(headers.take().unwrap_or_default()),
            Some(Outcome::Failed(kind, why, unauthorized)) => {
                Err(Exchange::error(*kind, why, *unauthorized))
            }
            None => Err(io::Error::other("the request was not sent")),
        }
    }

    fn take_response(&mut self) -> io::Result<Option<reqwest::Response>> {
        self.send();
        match &mut self.outcome {
            Some(Outcome::Answered { response, .. }) => Ok(response.take()),
            Some(Outcome::Failed(kind, why, unauthorized)) => {
                Err(Exchange::error(*kind, why, *unauthorized))
            }
            None => Err(io::Error::other("the request was not sent")),
        }
    }
}

/// A client error in one line, without the URL (reqwest's own text names it).
pub(super) fn describe(err: &reqwest::Error) -> String {
    if let Some(refused) = picloud_net::refusal(err) {
        return refused.to_string();
    }
    let mut causes = Vec::new();
    let mut at = std::error::Error::source(err);
    while let Some(cause) = at {
        let text = cause.to_string();
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        at = cause.source();
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

pub(super) fn lock(exchange: &Mutex<Exchange>) -> std::sync::MutexGuard<'_, Exchange> {
    exchange.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What gix writes to post (kept in the exchange until the answer is read).
pub struct Upload(pub(super) Arc<Mutex<Exchange>>);

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).upload.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The answer's headers, `name: value` a line.
pub struct Headers {
    pub(super) exchange: Arc<Mutex<Exchange>>,
    pub(super) text: Option<Cursor<Vec<u8>>>,
}

impl Headers {
    fn text(&mut self) -> io::Result<&mut Cursor<Vec<u8>>> {
        if self.text.is_none() {
            let headers = lock(&self.exchange).take_headers()?;
            self.text = Some(Cursor::new(headers));
        }
        Ok(self.text.get_or_insert_with(Cursor::default))
    }
}

impl Read for Headers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.text()?.read(buf)
    }
}

impl BufRead for Headers {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.text()?.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Some(text) = &mut self.text {
            text.consume(amt);
        }
    }
}

/// The answer's body, read chunk by chunk on the runtime; at most
/// [`MAX_FETCH_BYTES`] in all.
pub struct Body {
    exchange: Arc<Mutex<Exchange>>,
    response: Option<reqwest::Response>,
    started: bool,
    chunk: Bytes,
    read: u64,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.started {
            self.started = true;
            self.response = lock(&self.exchange).take_response()?;
        }
        while self.chunk.is_empty() {
            let Some(response) = &mut self.response else {
                return Ok(&[]);
            };
            let runtime = lock(&self.exchange).runtime.clone();
            match runtime.block_on(response.chunk()) {
                Ok(Some(chunk)) => {
                    self.read += chunk.len() as u64;
                    if self.read > MAX_FETCH_BYTES {
                        self.response = None;
                        let why = format!("the repository sent more than {MAX_FETCH_BYTES} bytes");
                        let exchange = lock(&self.exchange);
                        *exchange
                            .failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
                        return Err(io::Error::other(why));
                    }
                    self.chunk = chunk;
                }
                Ok(None) => self.response = None,
                Err(e) => {
                    self.response = None;
                    return Err(io::Error::other(describe(&e)));
                }
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.chunk.len());
        let _ = self.chunk.split_to(amt);
    }
}

pub(super) fn body(exchange: Arc<Mutex<Exchange>>) -> Body {
    Body {
        exchange,
        response: None,
        started: false,
        chunk: Bytes::new(),
        read: 0,
    }
}
