//! Why a destination is refused: the category named in the script's error.

use std::fmt;

/// The reason an outbound request was refused. Its [`name`](Category::name) is what a
/// script sees (`http: destination refused (loopback)`); the address never is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Loopback,
    Private,
    LinkLocal,
    Cgnat,
    Multicast,
    Broadcast,
    Unspecified,
    Reserved,
    Documentation,
    Benchmarking,
    UniqueLocal,
    SiteLocal,
    Metadata,
    Nat64,
    SixToFour,
    Teredo,
    Ipv4Mapped,
    Scheme,
    Port,
    InvalidUrl,
}

impl Category {
    /// The category's name in errors (CONTRACT.md, "Outbound HTTP").
    pub const fn name(self) -> &'static str {
        match self {
            Category::Loopback => "loopback",
            Category::Private => "private",
            Category::LinkLocal => "link_local",
            Category::Cgnat => "cgnat",
            Category::Multicast => "multicast",
            Category::Broadcast => "broadcast",
            Category::Unspecified => "unspecified",
            Category::Reserved => "reserved",
            Category::Documentation => "documentation",
            Category::Benchmarking => "benchmarking",
            Category::UniqueLocal => "unique_local",
            Category::SiteLocal => "site_local",
            Category::Metadata => "metadata",
            Category::Nat64 => "nat64",
            Category::SixToFour => "6to4",
            Category::Teredo => "teredo",
            Category::Ipv4Mapped => "ipv4_mapped",
            Category::Scheme => "scheme",
            Category::Port => "port",
            Category::InvalidUrl => "invalid_url",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A refused destination. Travels through the HTTP client's resolver as an error
/// source, so it is a real `std::error::Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("destination refused ({0})")]
pub struct Refused(pub Category);
