//! [`HttpClient`]: one call of a script, redirects followed by hand so that every
//! hop's URL and resolved address go through the guard, bodies capped while they
//! stream, and timeouts layered (connect, per request, per call, the run's own).

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::runtime::Handle;

use crate::category::{Category, Refused};
use crate::policy::HttpPolicy;
use crate::resolver::{GuardedResolver, NameResolver, SystemResolver, refused_in};

/// How often a waiting slot thread looks whether its run was stopped.
const STOP_POLL: Duration = Duration::from_millis(20);

/// Headers a script may not set: the client owns framing and the connection, and the
/// platform identifies itself.
const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "user-agent",
];

/// Headers dropped when a redirect leaves the origin they were meant for.
const CREDENTIAL_HEADERS: [HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

/// One outbound call as the script asked for it.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    /// Per request (each hop); `None` means the default. Capped by `max_timeout`.
    pub timeout: Option<Duration>,
    pub follow_redirects: bool,
    /// Largest response body; `None` means the default. Capped by the policy.
    pub max_response_bytes: Option<usize>,
    /// Identifies the caller in `User-Agent: PiCloud/<version> (app <slug>; script <id>)`.
    pub app_slug: String,
    pub script_id: String,
    /// The script's permitted hosts (its permissions manifest), checked at every
    /// hop; `None` permits every host the guard allows.
    pub allow_hosts: Option<Arc<[String]>>,
}

/// The final answer of a call (after redirects).
#[derive(Clone, Debug)]
pub struct OutboundResponse {
    pub status: u16,
    /// Lower-cased names, in the order received (a repeated header repeats).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Why a call failed. The display text never names a resolved address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("destination refused ({})", .0.name())]
    Refused(Category),
    #[error("permission_denied: host '{0}' is not in this script's http.allow_hosts")]
    HostNotPermitted(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("request body larger than {0} bytes")]
    RequestTooLarge(usize),
    #[error("response body larger than {0} bytes (raise max_response_bytes)")]
    ResponseTooLarge(usize),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("timed out")]
    Timeout,
    #[error("could not connect")]
    Connect,
    #[error("request failed")]
    Failed,
    #[error("the run was stopped")]
    Stopped,
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl From<Refused> for HttpError {
    fn from(refused: Refused) -> Self {
        HttpError::Refused(refused.0)
    }
}

/// The node's outbound HTTP client: shared (cheap to clone) by every run.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Swapped whole when the node reloads its settings (SIGHUP). A call uses the
    /// pair it started with from its first hop to its last.
    guarded: ArcSwap<Guarded>,
    resolver: Arc<dyn NameResolver>,
    runtime: Handle,
}

/// A policy and the reqwest client that resolves names under it. A new policy
/// gets a new client: a connection kept alive under the old policy is never
/// reused under the new one (a revoked exemption would live on in the pool).
struct Guarded {
    client: reqwest::Client,
    policy: Arc<HttpPolicy>,
}

impl Guarded {
    fn new(policy: HttpPolicy, resolver: &Arc<dyn NameResolver>) -> Result<Guarded, String> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            // Redirects are followed by `fetch`, each hop checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names where the guard cannot see them.
            .no_proxy()
            .connect_timeout(policy.limits.connect_timeout)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
                inner: Arc::clone(resolver),
            }))
            .build()
            .map_err(|err| format!("cannot build the outbound HTTP client: {err}"))?;
        Ok(Guarded { client, policy })
    }
}

impl HttpClient {
    /// A client resolving names with the system resolver, its requests driven by
    /// `runtime`.
    pub fn new(policy: HttpPolicy, runtime: Handle) -> Result<HttpClient, String> {
        HttpClient::with_resolver(policy, runtime, Arc::new(SystemResolver))
    }

    /// A client resolving names with `resolver` (tests answer names with loopback
    /// addresses this way).
    pub fn with_resolver(
        policy: HttpPolicy,
        runtime: Handle,
        resolver: Arc<dyn NameResolver>,
    ) -> Result<HttpClient, String> {
        Ok(HttpClient {
            inner: Arc::new(Inner {
                guarded: ArcSwap::from_pointee(Guarded::new(policy, &resolver)?),
                resolver,
                runtime,
            }),
        })
    }

    /// The policy calls are checked against now.
    pub fn policy(&self) -> Arc<HttpPolicy> {
        Arc::clone(&self.inner.guarded.load().policy)
    }

    /// Replaces what scripts may reach (the allow lists of a reloaded
    /// configuration); sizes and timeouts stay as the client was built with.
    /// Calls already under way finish under the policy they started with.
    pub fn set_allow(
        &self,
        allow_private: bool,
        allow_cidrs: Vec<crate::policy::Cidr>,
    ) -> Result<(), String> {
        let limits = self.policy().limits;
        let policy = HttpPolicy {
            allow_private,
            allow_cidrs,
            limits,
        };
        let guarded = Guarded::new(policy, &self.inner.resolver)?;
        self.inner.guarded.store(Arc::new(guarded));
        Ok(())
    }

    /// Makes the call from a thread outside the async runtime (an executor slot),
    /// waiting at most `budget` (the run's remaining wall-clock time). The request
    /// runs as a task on the runtime; this thread only waits on a channel, and looks
    /// at `stopped` every few milliseconds so a stopped run frees its slot at once.
    /// Dropping the wait aborts the task.
    pub fn fetch_blocking(
        &self,
        request: OutboundRequest,
        budget: Duration,
        stopped: &dyn Fn() -> bool,
    ) -> Result<OutboundResponse, HttpError> {
        let budget = budget.min(self.policy().limits.max_timeout);
        let deadline = Instant::now() + budget;
        let (tx, rx) = mpsc::sync_channel(1);
        let client = self.clone();
        let task = self.inner.runtime.spawn(async move {
            let result = tokio::time::timeout(budget, client.fetch(request))
                .await
                .unwrap_or(Err(HttpError::Timeout));
            let _ = tx.send(result);
        });
        loop {
            let now = Instant::now();
            if now >= deadline {
                task.abort();
                return Err(HttpError::Timeout);
            }
            match rx.recv_timeout(STOP_POLL.min(deadline - now)) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Timeout) if stopped() => {
                    task.abort();
                    return Err(HttpError::Stopped);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // The runtime dropped the task: it is shutting down.
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(HttpError::ShuttingDown),
            }
        }
    }

    /// Makes the call: checks, sends, follows redirects, reads the capped body.
    pub async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let guarded = self.inner.guarded.load_full();
        let policy = &guarded.policy;
        let limits = &policy.limits;
        let mut url = Url::parse(request.url.trim()).map_err(|_| Refused(Category::InvalidUrl))?;
        let mut headers = script_headers(&request.headers)?;
        let user_agent = format!(
            "PiCloud/{} (app {}; script {})",
            env!("CARGO_PKG_VERSION"),
            request.app_slug,
            request.script_id
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_str(&user_agent)
                .map_err(|_| HttpError::InvalidRequest("invalid app or script name".into()))?,
        );
        let mut body = request.body;
        if let Some(body) = &body
            && body.len() > limits.max_request_bytes
        {
            return Err(HttpError::RequestTooLarge(limits.max_request_bytes));
        }
        let timeout = request
            .timeout
            .unwrap_or(limits.default_timeout)
            .min(limits.max_timeout);
        let cap = request
            .max_response_bytes
            .unwrap_or(limits.default_response_bytes)
            .min(limits.max_response_bytes);
        let mut method = request.method;

        let mut redirects = 0;
        loop {
            // The guard first: a denied literal address is refused by its category,
            // never named in a manifest refusal.
            policy.check_url(&url)?;
            if let Some(patterns) = &request.allow_hosts {
                let host = url.host_str().unwrap_or_default();
                if !host_permitted(patterns, host) {
                    return Err(HttpError::HostNotPermitted(host.to_owned()));
                }
            }
            let mut builder = guarded
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(timeout);
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = builder.send().await.map_err(|err| self.failure(&err))?;
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            match location {
                Some(location) if request.follow_redirects && status.is_redirection() => {
                    if redirects == limits.max_redirects {
                        return Err(HttpError::TooManyRedirects(limits.max_redirects));
                    }
                    redirects += 1;
                    let next = url
                        .join(&location)
                        .map_err(|_| Refused(Category::InvalidUrl))?;
                    if next.origin() != url.origin() {
                        for name in &CREDENTIAL_HEADERS {
                            headers.remove(name);
                        }
                    }
                    if status == StatusCode::SEE_OTHER
                        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                            && method == Method::POST)
                    {
                        // As browsers do: the redirected request is a GET without body.
                        method = Method::GET;
                        body = None;
                        headers.remove(header::CONTENT_TYPE);
                    }
                    url = next;
                }
                _ => {
                    let headers = response
                        .headers()
                        .iter()
                        .map(|(name, value)| {
                            (
                                name.as_str().to_owned(),
                                String::from_utf8_lossy(value.as_bytes()).into_owned(),
                            )
                        })
                        .collect();
                    let body = read_capped(response, cap).await.map_err(|err| match err {
                        ReadError::TooLarge => HttpError::ResponseTooLarge(cap),
                        ReadError::Http(err) => self.failure(&err),
                    })?;
                    return Ok(OutboundResponse {
                        status: status.as_u16(),
                        headers,
                        body,
                    });
                }
            }
        }
    }

    /// A client error as a script may see it: the guard's refusal by category,
    /// otherwise only the kind of failure (reqwest's text names the URL and the
    /// address).
    fn failure(&self, err: &reqwest::Error) -> HttpError {
        if let Some(refused) = refused_in(err) {
            return refused.into();
        }
        // reqwest's own text names the URL, whose query may carry a secret: the
        // node's log gets only the cause.
        let cause = std::error::Error::source(err).map(ToString::to_string);
        if err.is_timeout() {
            HttpError::Timeout
        } else if err.is_connect() {
            tracing::debug!(cause = ?cause, "outbound connection failed");
            HttpError::Connect
        } else {
            tracing::debug!(cause = ?cause, "outbound request failed");
            HttpError::Failed
        }
    }
}

/// A client for the node's own calls to a URL a user gave (git sync's fetches),
/// under the same guard as scripts: names resolved by the guarded resolver, no
/// proxy, and redirects (at most the policy's `max_redirects`) followed only to
/// URLs the policy allows. The first URL is the caller's to check
/// ([`HttpPolicy::check_url`]): an address literal is never resolved. `builder`
/// carries the caller's own settings (timeouts, extra trusted certificates).
pub fn guarded_client(
    policy: Arc<HttpPolicy>,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, String> {
    let hops = Arc::clone(&policy);
    builder
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > hops.limits.max_redirects {
                return attempt.error(HttpError::TooManyRedirects(hops.limits.max_redirects));
            }
            match hops.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        }))
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy,
            inner: Arc::new(SystemResolver),
        }))
        .build()
        .map_err(|err| format!("cannot build the outbound HTTP client: {err}"))
}

/// The guard's refusal somewhere in an error's source chain (a client built by
/// [`guarded_client`] fails this way), if the guard caused the error.
pub fn refusal(err: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    refused_in(err)
}

/// The script's headers, checked: valid names and values, none the platform owns.
fn script_headers(pairs: &[(String, String)]) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("invalid header name {name:?}")))?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(HttpError::InvalidRequest(format!(
                "header {name} is set by PiCloud"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| HttpError::InvalidRequest(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads a body chunk by chunk, failing as soon as it passes `cap` bytes (before
/// reading at all when the declared length is already larger).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Bytes, ReadError> {
    if response
        .content_length()
        .is_some_and(|length| length > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Whether `host` matches one of `patterns`: an exact host name or address
/// (case-insensitive; IPv6 in brackets), `*.example.com` for any subdomain of
/// `example.com` (not the apex itself), or `*` for every host.
pub fn host_permitted(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
        if pattern == "*" {
            return true;
        }
        match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => host == pattern,
        }
    })
}

#[cfg(test)]
mod host_tests {
    use super::host_permitted;

    #[test]
    fn host_patterns_match_exactly_or_by_subdomain() {
        let p: Vec<String> = ["api.github.com", "*.example.com", "[::1]"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert!(host_permitted(&p, "api.github.com"));
        assert!(host_permitted(&p, "API.GitHub.com."));
        assert!(!host_permitted(&p, "github.com"));
        assert!(!host_permitted(&p, "api.github.com.evil.net"));
        assert!(host_permitted(&p, "a.example.com"));
        assert!(host_permitted(&p, "a.b.example.com"));
        assert!(!host_permitted(&p, "example.com"));
        assert!(!host_permitted(&p, "badexample.com"));
        assert!(host_permitted(&p, "[::1]"));
        assert!(!host_permitted(&[], "a.example.com"));
        assert!(host_permitted(&["*".to_owned()], "anything.net"));
    }
}
