//! What scripts may reach: [`HttpPolicy`] (deny-list overrides from the environment)
//! and [`HttpLimits`] (sizes, timeouts, counts).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use url::Host;

use crate::category::{Category, Refused};
use crate::classify::classify;
use crate::literal::parse_literal;

/// `PICLOUD_HTTP_ALLOW_PRIVATE`: `1` lifts the deny-list (development only).
pub const ALLOW_PRIVATE_VAR: &str = "PICLOUD_HTTP_ALLOW_PRIVATE";
/// `PICLOUD_HTTP_ALLOW_CIDRS`: comma-separated ranges exempted from the deny-list.
pub const ALLOW_CIDRS_VAR: &str = "PICLOUD_HTTP_ALLOW_CIDRS";

/// Names of metadata services, refused whatever DNS says.
const METADATA_NAMES: [&str; 3] = ["metadata", "metadata.google.internal", "instance-data"];

/// Sizes, timeouts and counts of outbound HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Establishing one connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// One request when the script gives no `timeout_ms`.
    pub default_timeout: Duration,
    /// The most a script's `timeout_ms` may ask for, and the most one call (all its
    /// redirects) may take. A call never outlives the run's wall-clock limit either.
    pub max_timeout: Duration,
    /// Redirects followed by one call.
    pub max_redirects: usize,
    /// Largest request body.
    pub max_request_bytes: usize,
    /// Largest response body when the script gives no `max_response_bytes`.
    pub default_response_bytes: usize,
    /// The most a script's `max_response_bytes` may ask for.
    pub max_response_bytes: usize,
    /// HTTP calls one invocation may make.
    pub max_calls_per_run: u32,
}

impl HttpLimits {
    pub const DEFAULT: HttpLimits = HttpLimits {
        connect_timeout: Duration::from_secs(5),
        default_timeout: Duration::from_secs(10),
        max_timeout: Duration::from_secs(60),
        max_redirects: 5,
        max_request_bytes: 4 * 1024 * 1024,
        default_response_bytes: 256 * 1024,
        max_response_bytes: 16 * 1024 * 1024,
        max_calls_per_run: 50,
    };
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::DEFAULT
    }
}

/// An address range `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4 range never holds an IPv6 address,
    /// IPv4-mapped or not).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.1.0.0/16`, `fd00::/8`, or a bare address (one host).
    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an address range"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?
        };
        Ok(Cidr { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Which destinations scripts may reach. The default refuses every non-public
/// address (see `classify.rs`) and allows only http/https on ports 80, 443 and
/// 1024–65535.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Lifts the address deny-list entirely (schemes and ports are still checked).
    pub allow_private: bool,
    /// Ranges exempted from the deny-list.
    pub allow_cidrs: Vec<Cidr>,
    pub limits: HttpLimits,
}

impl HttpPolicy {
    /// The policy from the values of `PICLOUD_HTTP_ALLOW_PRIVATE` and
    /// `PICLOUD_HTTP_ALLOW_CIDRS`; an invalid value is an error naming the variable.
    pub fn from_settings(
        allow_private: Option<&str>,
        allow_cidrs: Option<&str>,
    ) -> Result<HttpPolicy, String> {
        let allow_private = match allow_private.map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "" | "0" | "false" | "no" | "off") => false,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) => return Err(format!("{ALLOW_PRIVATE_VAR}={v:?}: expected 1 or 0")),
        };
        let allow_cidrs = allow_cidrs
            .unwrap_or_default()
            .split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|err| format!("{ALLOW_CIDRS_VAR}: {err}"))
            })
            .collect::<Result<Vec<Cidr>, String>>()?;
        Ok(HttpPolicy {
            allow_private,
            allow_cidrs,
            limits: HttpLimits::DEFAULT,
        })
    }

    /// [`HttpPolicy::from_settings`] through an environment lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<HttpPolicy, String> {
        HttpPolicy::from_settings(
            lookup(ALLOW_PRIVATE_VAR).as_deref(),
            lookup(ALLOW_CIDRS_VAR).as_deref(),
        )
    }

    /// Whether a script may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private || self.allow_cidrs.iter().any(|cidr| cidr.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            Some(category) => Err(Refused(category)),
            None => Ok(()),
        }
    }

    /// Checks a host name before it is resolved: names that always mean this host
    /// or a metadata service, and IP literals in any notation.
    pub fn check_name(&self, name: &str) -> Result<(), Refused> {
        if let Some(ip) = parse_literal(name) {
            return self.check_ip(ip);
        }
        if self.allow_private {
            return Ok(());
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        // `localhost` and everything under it is loopback (RFC 6761).
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(Refused(Category::Loopback));
        }
        if METADATA_NAMES.contains(&name.as_str()) {
            return Err(Refused(Category::Metadata));
        }
        Ok(())
    }

    /// Checks everything about a URL that can be checked before resolving: scheme,
    /// port, and the host if it is an address or a denied name.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(Category::Scheme));
        }
        let port = url
            .port_or_known_default()
            .ok_or(Refused(Category::InvalidUrl))?;
        if !(port == 80 || port == 443 || port >= 1024) {
            return Err(Refused(Category::Port));
        }
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => self.check_name(name),
            None => Err(Refused(Category::InvalidUrl)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_invalid_values_name_the_variable() {
        let policy =
            HttpPolicy::from_settings(Some("1"), Some("127.0.0.2/32, 10.1.0.0/16,fd00::/8,::1"))
                .expect("valid");
        assert!(policy.allow_private);
        assert_eq!(policy.allow_cidrs.len(), 4);
        assert!(
            !HttpPolicy::from_settings(None, None)
                .expect("empty")
                .allow_private
        );
        let err = HttpPolicy::from_settings(Some("maybe"), None).expect_err("invalid");
        assert!(err.contains(ALLOW_PRIVATE_VAR), "{err}");
        for bad in ["10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/x"] {
            let err = HttpPolicy::from_settings(None, Some(bad)).expect_err(bad);
            assert!(err.contains(ALLOW_CIDRS_VAR), "{err}");
        }
    }

    #[test]
    fn an_exempted_range_is_allowed_and_nothing_else() {
        let policy = HttpPolicy::from_settings(None, Some("127.0.0.2/32")).expect("valid");
        assert_eq!(policy.check_ip("127.0.0.2".parse().expect("ip")), Ok(()));
        assert_eq!(
            policy.check_ip("127.0.0.1".parse().expect("ip")),
            Err(Refused(Category::Loopback))
        );
        assert_eq!(
            policy.check_ip("::ffff:127.0.0.2".parse().expect("ip")),
            Err(Refused(Category::Ipv4Mapped))
        );
    }

    #[test]
    fn allow_private_lifts_addresses_but_not_schemes_or_ports() {
        let policy = HttpPolicy::from_settings(Some("1"), None).expect("valid");
        let url = |u: &str| Url::parse(u).expect("url");
        assert_eq!(policy.check_url(&url("http://127.0.0.1:8080/")), Ok(()));
        assert_eq!(policy.check_url(&url("http://localhost/")), Ok(()));
        assert_eq!(
            policy.check_url(&url("ftp://127.0.0.1/")),
            Err(Refused(Category::Scheme))
        );
        assert_eq!(
            policy.check_url(&url("http://127.0.0.1:22/")),
            Err(Refused(Category::Port))
        );
    }

    #[test]
    fn ports_80_443_and_unprivileged_ones_are_allowed() {
        let policy = HttpPolicy::default();
        for (url, ok) in [
            ("http://example.com/", true),
            ("https://example.com/", true),
            ("http://example.com:443/", true),
            ("https://example.com:80/", true),
            ("http://example.com:1024/", true),
            ("http://example.com:65535/", true),
            ("http://example.com:1023/", false),
            ("http://example.com:25/", false),
            ("https://example.com:22/", false),
        ] {
            let result = policy.check_url(&Url::parse(url).expect("url"));
            assert_eq!(result.is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn denied_names_are_refused_before_resolving() {
        let policy = HttpPolicy::default();
        for (name, category) in [
            ("localhost", Category::Loopback),
            ("LOCALHOST.", Category::Loopback),
            ("api.localhost", Category::Loopback),
            ("metadata.google.internal", Category::Metadata),
            ("metadata", Category::Metadata),
        ] {
            assert_eq!(policy.check_name(name), Err(Refused(category)), "{name}");
        }
        assert_eq!(policy.check_name("example.com"), Ok(()));
        assert_eq!(policy.check_name("notlocalhost"), Ok(()));
    }
}
