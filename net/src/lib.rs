//! Outbound HTTP for scripts, guarded against SSRF (SPEC §5).
//!
//! A script's call goes through [`HttpClient`]: the URL's scheme, port and host are
//! checked before anything resolves ([`HttpPolicy::check_url`]; IP literals in any
//! notation, [`parse_literal`]), every name is resolved by a resolver that drops the
//! addresses the policy refuses ([`classify`]), redirects are followed by hand so
//! each hop is checked the same way, bodies are capped while they stream, and
//! timeouts are layered. A refusal names its [`Category`], never the address.
//!
//! # Layout
//!
//! - `category.rs` — [`Category`] and [`Refused`].
//! - `classify.rs` — the address classifier (every refused range).
//! - `literal.rs` — IP literals in every notation a parser or resolver accepts.
//! - `policy.rs` — [`HttpPolicy`] (env overrides) and [`HttpLimits`].
//! - `resolver.rs` — [`NameResolver`], the system and static resolvers, the guard.
//! - `client.rs` — [`HttpClient`]: redirects, caps, timeouts, the blocking bridge.

mod category;
mod classify;
mod client;
mod literal;
mod policy;
mod resolver;

pub use category::{Category, Refused};
pub use classify::{classify, classify_v4, classify_v6};
pub use client::{
    HttpClient, HttpError, OutboundRequest, OutboundResponse, guarded_client, host_permitted,
    refusal,
};
pub use literal::parse_literal;
pub use policy::{ALLOW_CIDRS_VAR, ALLOW_PRIVATE_VAR, Cidr, HttpLimits, HttpPolicy};
pub use reqwest::Method;
pub use resolver::{Lookup, NameResolver, StaticResolver, SystemResolver};

#[cfg(feature = "test-util")]
pub mod test_server;
