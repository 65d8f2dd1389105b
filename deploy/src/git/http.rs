//! Git's smart HTTP protocol over the workspace's reqwest: an implementation of
//! gix-transport's blocking [`Http`] trait, so gix needs no HTTP stack of its own
//! (its reqwest backend would bring a second reqwest, and HTTP/2).
//!
//! gix calls from a blocking thread; each request runs on the tokio runtime given
//! to [`GitHttp`] (`Handle::block_on`), and the response body is read chunk by
//! chunk as gix reads it. A `POST` is sent once gix has written its request and
//! starts reading the answer (git's fetch requests are small: they are buffered).
//!
//! Failures are remembered as one line for the caller ([`Session::failure`]):
//! gix's own error text is a chain of generic steps, and reqwest's names the URL,
//! which may carry credentials.

use std::any::Any;
use std::io::{self, BufRead, Cursor, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use gix_transport::client::AuthenticationRequired;
use gix_transport::client::blocking_io::http::{GetResponse, Http, PostBodyDataKind, PostResponse};
use picloud_net::HttpPolicy;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::runtime::Handle;

use super::GitError;

/// The most a fetch may download (the packs of one branch tip).
pub const MAX_FETCH_BYTES: u64 = 256 * 1024 * 1024;

/// Credentials for an https remote: `user:password`, or a token alone (sent as
/// the password of the user `x-access-token`, which GitHub and Gitea accept;
/// GitLab wants `oauth2:<token>`). Never shown: `Debug` prints no value.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    pub fn parse(value: &str) -> Credentials {
        let value = value.trim();
        match value.split_once(':') {
            Some((user, password)) if !user.is_empty() => Credentials {
                username: user.to_owned(),
                password: password.to_owned(),
            },
            _ => Credentials {
                username: "x-access-token".into(),
                password: value.to_owned(),
            },
        }
    }

    fn header(&self) -> Option<HeaderValue> {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([hidden])")
    }
}

/// How http(s) remotes are reached: the client, the runtime it runs on, the
/// credentials, and on a node the outbound guard.
#[derive(Clone)]
pub struct GitHttp {
    client: reqwest::Client,
    runtime: Handle,
    guard: Option<Arc<HttpPolicy>>,
    credentials: Option<Credentials>,
}

impl GitHttp {
    /// The CLI's: any address, the webpki roots plus `extra_roots` (PEM).
    pub fn new(runtime: Handle, extra_roots: Option<&[u8]>) -> Result<GitHttp, GitError> {
        let client = builder(extra_roots)?
            .no_proxy()
            .build()
            .map_err(|e| GitError(format!("cannot build the HTTP client: {e}")))?;
        Ok(GitHttp {
            client,
            runtime,
            guard: None,
            credentials: None,
        })
    }

    /// A node's: every address checked by the outbound guard (`policy`), as for
    /// scripts; redirects checked hop by hop.
    pub fn guarded(
        runtime: Handle,
        policy: HttpPolicy,
        extra_roots: Option<&[u8]>,
    ) -> Result<GitHttp, GitError> {
        let policy = Arc::new(policy);
        let client = picloud_net::guarded_client(Arc::clone(&policy), builder(extra_roots)?)
            .map_err(GitError)?;
        Ok(GitHttp {
            client,
            runtime,
            guard: Some(policy),
            credentials: None,
        })
    }

    /// The same client with these credentials (sent over https only).
    pub fn with_credentials(&self, credentials: Option<Credentials>) -> GitHttp {
        GitHttp {
            credentials,
            ..self.clone()
        }
    }
}

fn builder(extra_roots: Option<&[u8]>) -> Result<reqwest::ClientBuilder, GitError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("PiCloud/", env!("CARGO_PKG_VERSION"), " git"))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60));
    if let Some(pem) = extra_roots {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| GitError(format!("not a PEM certificate file: {e}")))?;
        if certificates.is_empty() {
            return Err(GitError("no PEM certificate in the file".into()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}

/// Reads PEM certificates to trust besides the webpki roots; the error names the
/// file.
pub fn read_roots(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("{} holds no PEM certificate", path.display()))?;
    Ok(pem)
}

/// One fetch's HTTP side, handed to gix: follows the base URL across a redirect
/// and remembers why a request failed.
pub struct Session {
    http: GitHttp,
    redirected_base: Option<String>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Session {
    pub fn new(http: GitHttp) -> Session {
        Session {
            http,
            redirected_base: None,
            failure: Arc::default(),
        }
    }

    /// Why the last request failed, in one line, if it did.
    pub fn failure(&self) -> Arc<Mutex<Option<String>>> {
        Arc::clone(&self.failure)
    }

    fn fail(&self, why: String) -> io::Error {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
        io::Error::other(why)
    }

    fn exchange(
        &mut self,
        method: Method,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Arc<Mutex<Exchange>>, io::Error> {
        let parsed = Url::parse(url).map_err(|_| self.fail("not a valid URL".into()))?;
        if let Some(policy) = &self.http.guard {
            policy
                .check_url(&parsed)
                .map_err(|refused| self.fail(refused.to_string()))?;
        }
        let mut map = HeaderMap::new();
        for line in headers {
            if let Some((name, value)) = line.as_ref().split_once(':')
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                )
            {
                map.append(name, value);
            }
        }
        let credentials = self.http.credentials.as_ref();
        if let Some(credentials) = credentials {
            // Never in clear text.
            if parsed.scheme() != "https" {
                return Err(
                    self.fail("credentials are only sent over https; use an https:// URL".into())
                );
            }
            if let Some(value) = credentials.header() {
                map.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        let request = self
            .http
            .client
            .request(method, parsed)
            .headers(map)
            .timeout(Duration::from_secs(300));
        Ok(Arc::new(Mutex::new(Exchange {
            request: Some(request),
            upload: Vec::new(),
            outcome: None,
            runtime: self.http.runtime.clone(),
            url: url.to_owned(),
            base_url: base_url.to_owned(),
            with_credentials: credentials.is_some(),
            failure: Arc::clone(&self.failure),
            redirected: None,
        })))
    }
}

/// One request and its answer, shared by the upload, the headers and the body
/// gix holds separately.
struct Exchange {
    request: Option<reqwest::RequestBuilder>,
    upload: Vec<u8>,
    outcome: Option<Outcome>,
    runtime: Handle,
    url: String,
    base_url: String,
    with_credentials: bool,
    failure: Arc<Mutex<Option<String>>>,
    /// The base URL after a redirect.
    redirected: Option<String>,
}

enum Outcome {
    Answered {
        headers: Option<Vec<u8>>,
        response: Option<reqwest::Response>,
    },
    Failed(io::ErrorKind, String, bool),
}

impl Exchange {
    /// Sends the request (once); what came back is kept in `outcome`.
    fn send(&mut self) {
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
fn describe(err: &reqwest::Error) -> String {
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

fn lock(exchange: &Mutex<Exchange>) -> std::sync::MutexGuard<'_, Exchange> {
    exchange.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What gix writes to post (kept in the exchange until the answer is read).
pub struct Upload(Arc<Mutex<Exchange>>);

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
    exchange: Arc<Mutex<Exchange>>,
    text: Option<Cursor<Vec<u8>>>,
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

impl Http for Session {
    type Headers = Headers;
    type ResponseBody = Body;
    type PostBody = Upload;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix_error::Result<GetResponse<Headers, Body>> {
        let exchange = self
            .exchange(Method::GET, url, base_url, headers)
            .map_err(gix_error::Error::from_error)?;
        let redirected = {
            let mut sent = lock(&exchange);
            sent.send();
            sent.redirected.clone()
        };
        if redirected.is_some() {
            self.redirected_base = redirected;
        }
        Ok(GetResponse {
            headers: Headers {
                exchange: Arc::clone(&exchange),
                text: None,
            },
            body: body(exchange),
        })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> gix_error::Result<PostResponse<Headers, Body, Upload>> {
        let exchange = self
            .exchange(Method::POST, url, base_url, headers)
            .map_err(gix_error::Error::from_error)?;
        Ok(PostResponse {
            post_body: Upload(Arc::clone(&exchange)),
            headers: Headers {
                exchange: Arc::clone(&exchange),
                text: None,
            },
            body: body(exchange),
        })
    }

    fn configure(&mut self, _config: &dyn Any) -> gix_error::Result {
        Ok(())
    }

    fn redirected_base_url(&self) -> Option<String> {
        self.redirected_base.clone()
    }
}

fn body(exchange: Arc<Mutex<Exchange>>) -> Body {
    Body {
        exchange,
        response: None,
        started: false,
        chunk: Bytes::new(),
        read: 0,
    }
}
