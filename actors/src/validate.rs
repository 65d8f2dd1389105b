//! Input rules for names a user chooses: app slugs, custom domains, script names and
//! app display names. Pure functions; the API turns a [`ValidationError`] into a 422
//! naming the field, and `slug-check` shows its `reason`.

use std::net::Ipv4Addr;

/// Why an input was refused. `reason` is written to be shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    fn new(field: &'static str, reason: impl Into<String>) -> ValidationError {
        ValidationError {
            field,
            reason: reason.into(),
        }
    }
}

/// Slugs that would collide with a path the platform serves at the top level, now
/// or planned: `/api`, `/hooks/{id}`, the health and metrics endpoints, and the
/// dashboard with its assets and login pages. Kept sorted (a test checks it).
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "assets",
    "auth",
    "dashboard",
    "docs",
    "healthz",
    "hooks",
    "livez",
    "login",
    "logout",
    "metrics",
    "picloud",
    "readyz",
    "static",
    "ui",
    "version",
];

/// An app slug is a DNS label, so it can also name a subdomain: 1 to 63 characters
/// of `a-z`, `0-9` and `-`, not starting or ending with `-`, and not one of
/// [`RESERVED_SLUGS`]. Upper case is refused rather than folded: the slug is part
/// of every URL the user has already shared.
pub fn validate_slug(slug: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "slug";
    if slug.is_empty() {
        return Err(ValidationError::new(FIELD, "must not be empty"));
    }
    if slug.len() > 63 {
        return Err(ValidationError::new(FIELD, "must be at most 63 characters"));
    }
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ValidationError::new(
            FIELD,
            "may contain only lowercase letters a-z, digits and '-'",
        ));
    }
    if slug.starts_with('-') || slug.ends_with('-') {
        return Err(ValidationError::new(
            FIELD,
            "must not start or end with '-'",
        ));
    }
    if RESERVED_SLUGS.binary_search(&slug).is_ok() {
        return Err(ValidationError::new(
            FIELD,
            format!("\"{slug}\" is reserved for the platform"),
        ));
    }
    Ok(())
}

/// Checks a custom domain and returns its normal form: lower case, without the one
/// trailing dot of an absolute name (`Example.COM.` → `example.com`), so that
/// lookups by the `Host` header compare equal strings.
///
/// Rules: at most 253 characters; at least two labels; each label 1 to 63 of
/// `a-z 0-9 -`, not starting or ending with `-`; the last label not all digits (so
/// no IPv4 address); no IP literal, port, path, wildcard or non-ASCII (use the
/// `xn--` form); not `localhost` nor under `.localhost`, which always resolve to
/// this machine (RFC 6761).
pub fn normalize_domain(domain: &str) -> Result<String, ValidationError> {
    const FIELD: &str = "domain";
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() {
        return Err(ValidationError::new(FIELD, "must not be empty"));
    }
    if name.starts_with('[') || name.parse::<Ipv4Addr>().is_ok() {
        return Err(ValidationError::new(
            FIELD,
            "must be a host name, not an IP address",
        ));
    }
    if name.contains(['/', '?', '#', '@']) {
        return Err(ValidationError::new(
            FIELD,
            "must be a bare host name, not a URL",
        ));
    }
    if name.contains(':') {
        return Err(ValidationError::new(FIELD, "must not include a port"));
    }
    if !name.is_ascii() {
        return Err(ValidationError::new(
            FIELD,
            "must be ASCII; write an international name in its xn-- form",
        ));
    }
    if name.len() > 253 {
        return Err(ValidationError::new(
            FIELD,
            "must be at most 253 characters",
        ));
    }
    let name = name.to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(ValidationError::new(
            FIELD,
            "must have at least two labels, like example.com",
        ));
    }
    for label in &labels {
        check_label(label)?;
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ValidationError::new(
            FIELD,
            "the last label must not be all digits",
        ));
    }
    if labels.last() == Some(&"localhost") {
        return Err(ValidationError::new(
            FIELD,
            "localhost names always resolve to this machine",
        ));
    }
    Ok(name)
}

fn check_label(label: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "domain";
    if label.is_empty() {
        return Err(ValidationError::new(
            FIELD,
            "must not contain an empty label (\"..\")",
        ));
    }
    if label.len() > 63 {
        return Err(ValidationError::new(
            FIELD,
            "each label must be at most 63 characters",
        ));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ValidationError::new(
            FIELD,
            "labels may contain only letters, digits and '-'",
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(ValidationError::new(
            FIELD,
            "labels must not start or end with '-'",
        ));
    }
    Ok(())
}

/// Script names are what `import "name"` refers to: 1 to 64 of `a-z A-Z 0-9 _ -`,
/// starting with a letter or `_` (so a name never looks like a number or a flag).
pub fn validate_script_name(name: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "name";
    if name.is_empty() {
        return Err(ValidationError::new(FIELD, "must not be empty"));
    }
    if name.len() > 64 {
        return Err(ValidationError::new(FIELD, "must be at most 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ValidationError::new(
            FIELD,
            "may contain only letters, digits, '_' and '-'",
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err(ValidationError::new(
            FIELD,
            "must start with a letter or '_'",
        ));
    }
    Ok(())
}

/// App display names: 1 to 200 characters (not bytes), no control characters, and
/// not only whitespace — a blank name would show as an empty row in the dashboard.
pub fn validate_app_name(name: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "name";
    if name.trim().is_empty() {
        return Err(ValidationError::new(FIELD, "must not be empty or blank"));
    }
    if name.chars().count() > 200 {
        return Err(ValidationError::new(
            FIELD,
            "must be at most 200 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            FIELD,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// A username: 1 to 64 characters of `a-z`, `0-9`, `.`, `_` and `-`, starting with a
/// letter or digit. Lower case only, so `Ann` and `ann` cannot be two people.
pub fn validate_username(name: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "username";
    if name.is_empty() || name.len() > 64 {
        return Err(ValidationError::new(FIELD, "must be 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(ValidationError::new(
            FIELD,
            "may contain only a-z, 0-9, '.', '_' and '-'",
        ));
    }
    if !name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        return Err(ValidationError::new(
            FIELD,
            "must start with a letter or digit",
        ));
    }
    Ok(())
}

/// A password: 8 to 1024 bytes (argon2 hashes any length, but a cap keeps a huge
/// body from costing a hash).
pub fn validate_password(password: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "password";
    if password.chars().count() < 8 {
        return Err(ValidationError::new(FIELD, "must be at least 8 characters"));
    }
    if password.len() > 1024 {
        return Err(ValidationError::new(FIELD, "must be at most 1024 bytes"));
    }
    Ok(())
}

/// A token's name: 1 to 100 characters, no control characters.
pub fn validate_token_name(name: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "name";
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ValidationError::new(FIELD, "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            FIELD,
            "must not contain control characters",
        ));
    }
    Ok(())
}
