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

mod exchange;

use std::any::Any;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gix_transport::client::blocking_io::http::{GetResponse, Http, PostBodyDataKind, PostResponse};
use picloud_net::HttpPolicy;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tokio::runtime::Handle;

use super::GitError;
use exchange::{Body, Exchange, Headers, Upload, body, lock};

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
