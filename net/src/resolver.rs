//! Name resolution with the guard in it: every address a name resolves to is checked
//! before the HTTP client may connect to it, on every hop. A name that answers a
//! refused address (DNS rebinding included) never gets a connection.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::category::Refused;
use crate::policy::HttpPolicy;

/// A pending lookup.
pub type Lookup = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses. The node uses [`SystemResolver`]; tests use
/// [`StaticResolver`] to answer names with addresses of their choosing.
pub trait NameResolver: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Lookup;
}

/// The operating system's resolver (`getaddrinfo`, on tokio's blocking pool).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl NameResolver for SystemResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// Fixed answers, for tests: a name not in the table does not resolve.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    answers: Vec<(String, Vec<IpAddr>)>,
}

impl StaticResolver {
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Answers `name` with `addresses`.
    pub fn with(mut self, name: &str, addresses: &[IpAddr]) -> StaticResolver {
        self.answers
            .push((name.to_ascii_lowercase(), addresses.to_vec()));
        self
    }
}

impl NameResolver for StaticResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_ascii_lowercase();
        let found = self
            .answers
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, addresses)| addresses.clone());
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name not found"))
        })
    }
}

/// The HTTP client's resolver: checks the name, resolves it, and keeps only the
/// addresses the policy allows. When none is left the lookup fails with [`Refused`]
/// naming the first refused address's category.
pub(crate) struct GuardedResolver {
    pub(crate) policy: Arc<HttpPolicy>,
    pub(crate) inner: Arc<dyn NameResolver>,
}

impl GuardedResolver {
    pub(crate) async fn resolve_checked(
        policy: &HttpPolicy,
        inner: &dyn NameResolver,
        host: &str,
    ) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
        policy.check_name(host)?;
        let found = inner.lookup(host).await?;
        let mut refused = None;
        let allowed: Vec<IpAddr> = found
            .into_iter()
            .filter(|ip| match policy.check_ip(*ip) {
                Ok(()) => true,
                Err(why) => {
                    refused.get_or_insert(why);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some(why)) => Err(Box::new(why)),
            (true, None) => Err(Box::new(io::Error::new(
                io::ErrorKind::NotFound,
                "name has no address",
            ))),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let allowed =
                GuardedResolver::resolve_checked(&policy, inner.as_ref(), name.as_str()).await?;
            // The connector sets the port.
            let addrs: Addrs = Box::new(
                allowed
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// The [`Refused`] somewhere in an error's source chain, if the guard caused it.
pub(crate) fn refused_in(err: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut at = Some(err);
    while let Some(err) = at {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(*refused);
        }
        at = err.source();
    }
    None
}
