//! Route patterns and the per-app route table — the invocation hot path.
//!
//! A [`RouteTable`] is immutable: the catalog builds a new one whenever an app's
//! routes change and readers share it behind an `Arc`, so [`RouteTable::find`]
//! takes no lock and allocates only the captured parameters of the hit.
//!
//! # Match order ("the first matching route")
//!
//! Entries are sorted once, most specific first:
//!
//! 1. segment by segment, left to right: static beats `:param` beats `*rest`;
//! 2. then more segments first — except that a pattern ending where another has
//!    `*rest` comes first (`/files` before `/files/*rest`), since the catch-all
//!    would otherwise shadow the exact route for every request;
//! 3. then a method-specific route beats `*`;
//! 4. then older routes (`seq`) first, and finally the id, so the order is total.
//!
//! A `HEAD` request that no `HEAD` or `*` route matches is served by the first
//! matching `GET` route (HEAD is GET without a body, RFC 9110 §9.3.2).

mod pattern;

use std::cmp::Ordering;

pub use pattern::{MAX_PATTERN_LEN, MAX_SEGMENTS, RoutePattern};

/// Captured route parameters, `(name, percent-decoded value)` in pattern order.
pub type Params = Vec<(String, String)>;

/// Which request methods a route accepts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MethodMatch {
    /// `*`: every method.
    Any,
    /// One upper-case method token.
    Only(String),
}

impl MethodMatch {
    fn accepts(&self, method: &str) -> bool {
        match self {
            MethodMatch::Any => true,
            MethodMatch::Only(only) => only.eq_ignore_ascii_case(method),
        }
    }
}

/// Methods a route may name; anything else would never be sent by a browser or
/// would be a typo, so it is refused at creation rather than silently unreachable.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Parses a route method: one of [`METHODS`] in any case (stored upper-case), or `*`.
pub fn parse_method(s: &str) -> Result<MethodMatch, RouteError> {
    if s == "*" {
        return Ok(MethodMatch::Any);
    }
    match METHODS.iter().find(|m| m.eq_ignore_ascii_case(s)) {
        Some(method) => Ok(MethodMatch::Only((*method).to_owned())),
        None => Err(RouteError(format!(
            "unsupported method {}: use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *",
            quoted(s)
        ))),
    }
}

/// Why a method or pattern was refused; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteError(pub String);

impl RouteError {
    fn new(message: &str) -> RouteError {
        RouteError(message.to_owned())
    }
}

/// User input echoed in an error: escaped, and cut short so a 1 KiB pattern does
/// not come back as a 1 KiB message.
fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 48;
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// One route of an app.
#[derive(Clone, Debug)]
pub struct RouteEntry<T> {
    pub id: String,
    pub method: MethodMatch,
    pub pattern: RoutePattern,
    pub target: T,
    /// Creation order: among equally specific routes the older one wins.
    pub seq: u64,
}

/// An immutable table of one app's routes, built once per change and shared (`Arc`)
/// by readers.
#[derive(Clone, Debug)]
pub struct RouteTable<T> {
    entries: Vec<RouteEntry<T>>,
}

impl<T> RouteTable<T> {
    pub fn new(mut entries: Vec<RouteEntry<T>>) -> Self {
        entries.sort_by(match_order);
        RouteTable { entries }
    }

    /// The first matching route in match order (see the module doc) and its params.
    pub fn find(&self, method: &str, path: &str) -> Option<(&RouteEntry<T>, Params)> {
        if let Some(hit) = self.first_match(path, |m| m.accepts(method)) {
            return Some(hit);
        }
        if method.eq_ignore_ascii_case("HEAD") {
            return self.first_match(
                path,
                |m| matches!(m, MethodMatch::Only(only) if only.eq_ignore_ascii_case("GET")),
            );
        }
        None
    }

    fn first_match(
        &self,
        path: &str,
        accepts: impl Fn(&MethodMatch) -> bool,
    ) -> Option<(&RouteEntry<T>, Params)> {
        self.entries
            .iter()
            .filter(|entry| accepts(&entry.method))
            .find_map(|entry| entry.pattern.matches(path).map(|params| (entry, params)))
    }

    /// Whether a route with this method and the same shape exists (the 409 on
    /// create). Methods must be equal: `*` duplicates only `*`, so `GET /x` may
    /// coexist with `* /x` and takes precedence over it.
    pub fn has_duplicate(&self, method: &MethodMatch, pattern: &RoutePattern) -> bool {
        self.entries
            .iter()
            .any(|e| e.method == *method && e.pattern.shape_str() == pattern.shape_str())
    }

    /// The routes in match order.
    pub fn entries(&self) -> &[RouteEntry<T>] {
        &self.entries
    }
}

/// The total order of the table: specificity, then method, then age, then id.
fn match_order<T>(a: &RouteEntry<T>, b: &RouteEntry<T>) -> Ordering {
    specificity(&a.pattern, &b.pattern)
        .then_with(|| method_rank(&a.method).cmp(&method_rank(&b.method)))
        .then_with(|| a.seq.cmp(&b.seq))
        .then_with(|| a.id.cmp(&b.id))
}

fn specificity(a: &RoutePattern, b: &RoutePattern) -> Ordering {
    // Past the end of both patterns every rank is `End`, so MAX_SEGMENTS + 1
    // positions always decide.
    (0..=MAX_SEGMENTS)
        .map(|i| a.rank_at(i).cmp(&b.rank_at(i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn method_rank(method: &MethodMatch) -> u8 {
    match method {
        MethodMatch::Only(_) => 0,
        MethodMatch::Any => 1,
    }
}

/// Splits `/{slug}/rest…` into `("slug", "/rest…")`; `/slug` and `/slug/` give
/// `("slug", "/")`. `None` when there is no slug (`/`, `""`, `//x`) or the path
/// does not start with `/`.
pub fn split_app_path(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix('/')?;
    let (slug, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    if slug.is_empty() {
        return None;
    }
    Some((slug, rest))
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
