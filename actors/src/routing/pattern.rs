//! One route pattern: parsing and normalisation, matching a request path, and the
//! "shape" that decides whether two patterns are the same route.
//!
//! Static segments are compared *after percent-decoding both sides*, so `/caf%C3%A9`,
//! `/caf%c3%a9` and `/café` are one route and all match a request for `/caf%C3%A9`.
//! Splitting on `/` happens before decoding, so an encoded `%2F` never crosses a
//! segment boundary.

use super::{Params, RouteError, quoted};

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Most segments a pattern may have (also bounds the per-match capture buffer).
pub const MAX_SEGMENTS: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// The percent-decoded bytes (not necessarily UTF-8: `%FF` is a valid encoding).
    Static(Box<[u8]>),
    Param(Box<str>),
    Rest(Box<str>),
}

/// How specific a pattern is at one position; lower sorts (and so matches) first.
///
/// `End` (the pattern has no segment here) sits between `Param` and `Rest`: against
/// a static or param segment it loses ("more segments first"), but `/files` must
/// beat `/files/*rest`, which would otherwise shadow it for every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Rank {
    Static,
    Param,
    End,
    Rest,
}

/// A parsed route pattern such as `/users/:id` or `/files/*rest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePattern {
    normalized: String,
    segments: Vec<Segment>,
    shape: String,
}

impl RoutePattern {
    /// Parses `/users/:id`, `/files/*rest`, `/`, `/a/b`.
    ///
    /// Rules: starts with `/`; a trailing `/` is ignored (except the root); no empty
    /// segments; `:name` captures one non-empty segment and `*name` (last segment
    /// only) the rest of the path, possibly empty; names match
    /// `[A-Za-z_][A-Za-z0-9_]*` and are unique; static segments are RFC 3986 path
    /// characters (`A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , ; = : @`), valid `%XX`
    /// escapes, or non-ASCII characters that are neither whitespace nor control;
    /// `.` and `..` are refused because clients collapse them before sending.
    /// At most [`MAX_PATTERN_LEN`] bytes and [`MAX_SEGMENTS`] segments.
    pub fn parse(pattern: &str) -> Result<RoutePattern, RouteError> {
        if pattern.is_empty() {
            return Err(RouteError::new(
                "the path must not be empty; use \"/\" for the root",
            ));
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(RouteError(format!(
                "the path is {} bytes long; at most {MAX_PATTERN_LEN} are allowed",
                pattern.len()
            )));
        }
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(RouteError(format!(
                "the path must start with \"/\" (got {})",
                quoted(pattern)
            )));
        };
        let body = match body.strip_suffix('/') {
            Some("") => return Err(RouteError::new("empty segment: \"//\" is not allowed")),
            Some(trimmed) => trimmed,
            None => body,
        };
        let mut segments: Vec<Segment> = Vec::new();
        if !body.is_empty() {
            for raw in body.split('/') {
                if segments.len() == MAX_SEGMENTS {
                    return Err(RouteError(format!(
                        "the path has more than {MAX_SEGMENTS} segments"
                    )));
                }
                if let Some(Segment::Rest(name)) = segments.last() {
                    return Err(RouteError(format!(
                        "\"*{name}\" must be the last segment (followed by {})",
                        quoted(raw)
                    )));
                }
                let segment = parse_segment(raw)?;
                if let Some(name) = capture_name(&segment)
                    && segments.iter().any(|s| capture_name(s) == Some(name))
                {
                    return Err(RouteError(format!(
                        "parameter name \"{name}\" is used twice"
                    )));
                }
                segments.push(segment);
            }
        }
        let shape = shape_of(&segments);
        Ok(RoutePattern {
            normalized: format!("/{body}"),
            segments,
            shape,
        })
    }

    /// The normalised pattern: as written, minus a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The pattern with parameter names erased and static segments in one canonical
    /// encoding (`/u/:id` and `/u/:name` → `/u/:`; `/%7e` and `/~` → `/~`). Two
    /// patterns with the same shape match exactly the same paths.
    pub fn shape(&self) -> String {
        self.shape.clone()
    }

    pub(super) fn shape_str(&self) -> &str {
        &self.shape
    }

    pub(super) fn rank_at(&self, position: usize) -> Rank {
        match self.segments.get(position) {
            Some(Segment::Static(_)) => Rank::Static,
            Some(Segment::Param(_)) => Rank::Param,
            Some(Segment::Rest(_)) => Rank::Rest,
            None => Rank::End,
        }
    }

    /// Matches a request path (already stripped of the app prefix; `""` is `/`, and
    /// one trailing `/` is ignored as in patterns). Returns the captures in pattern
    /// order, percent-decoded; an invalid escape or non-UTF-8 value is no match.
    pub fn matches(&self, path: &str) -> Option<Params> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        // First a structural pass that allocates nothing, so the common miss is cheap.
        let mut raw_captures = [""; MAX_SEGMENTS];
        let mut captured = 0;
        let mut remaining = (!path.is_empty()).then_some(path);
        for segment in &self.segments {
            if let Segment::Rest(_) = segment {
                raw_captures[captured] = remaining.take().unwrap_or("");
                captured += 1;
                break;
            }
            let current = remaining?;
            let (head, tail) = match current.split_once('/') {
                Some((head, tail)) => (head, Some(tail)),
                None => (current, None),
            };
            remaining = tail;
            match segment {
                Segment::Static(expected) => {
                    if !decoded_eq(head, expected) {
                        return None;
                    }
                }
                _ => {
                    if head.is_empty() {
                        return None;
                    }
                    raw_captures[captured] = head;
                    captured += 1;
                }
            }
        }
        if remaining.is_some() {
            return None;
        }
        let names = self.segments.iter().filter_map(capture_name);
        names
            .zip(&raw_captures[..captured])
            .map(|(name, raw)| Some((name.to_owned(), percent_decode(raw)?)))
            .collect()
    }
}

fn capture_name(segment: &Segment) -> Option<&str> {
    match segment {
        Segment::Static(_) => None,
        Segment::Param(name) | Segment::Rest(name) => Some(name),
    }
}

fn parse_segment(raw: &str) -> Result<Segment, RouteError> {
    if raw.is_empty() {
        return Err(RouteError::new("empty segment: \"//\" is not allowed"));
    }
    if let Some(name) = raw.strip_prefix(':') {
        check_name(name, raw)?;
        return Ok(Segment::Param(name.into()));
    }
    if let Some(name) = raw.strip_prefix('*') {
        check_name(name, raw)?;
        return Ok(Segment::Rest(name.into()));
    }
    let decoded = decode_static(raw)?;
    if decoded.as_slice() == b"." || decoded.as_slice() == b".." {
        return Err(RouteError(format!(
            "segment {} is a dot segment, which clients remove before sending",
            quoted(raw)
        )));
    }
    Ok(Segment::Static(decoded.into_boxed_slice()))
}

fn check_name(name: &str, raw: &str) -> Result<(), RouteError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else if name.is_empty() {
        Err(RouteError(format!(
            "segment {} needs a parameter name, like \":id\" or \"*rest\"",
            quoted(raw)
        )))
    } else {
        Err(RouteError(format!(
            "invalid parameter name in {}: names are ASCII letters, digits and '_', not starting with a digit",
            quoted(raw)
        )))
    }
}

/// Checks a static segment character by character and returns its decoded bytes.
fn decode_static(raw: &str) -> Result<Vec<u8>, RouteError> {
    let mut decoded = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '%' => {
                let Some(byte) = escape_at(bytes, i) else {
                    return Err(RouteError(format!(
                        "invalid percent-encoding in segment {}: '%' must be followed by two hex digits",
                        quoted(raw)
                    )));
                };
                decoded.push(byte);
                chars.nth(1);
            }
            c if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c) => {
                decoded.push(c as u8);
            }
            '?' => {
                return Err(RouteError(format!(
                    "segment {} contains '?', which starts a query string; routes match paths only",
                    quoted(raw)
                )));
            }
            '#' => {
                return Err(RouteError(format!(
                    "segment {} contains '#', which starts a fragment and is never sent",
                    quoted(raw)
                )));
            }
            c if c.is_whitespace() || c.is_control() => {
                return Err(RouteError(format!(
                    "segment {} contains whitespace or a control character",
                    quoted(raw)
                )));
            }
            '{' | '}' => {
                return Err(RouteError(format!(
                    "segment {} contains '{c}'; parameters are written \":name\"",
                    quoted(raw)
                )));
            }
            c if c.is_ascii() => {
                return Err(RouteError(format!(
                    "segment {} contains '{c}', which is not allowed in a path; percent-encode it",
                    quoted(raw)
                )));
            }
            c => {
                let mut buf = [0u8; 4];
                decoded.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Ok(decoded)
}

fn shape_of(segments: &[Segment]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut shape = String::new();
    for segment in segments {
        shape.push('/');
        match segment {
            Segment::Param(_) => shape.push(':'),
            Segment::Rest(_) => shape.push('*'),
            Segment::Static(bytes) => {
                // Only unreserved characters stay literal, so ':' and '*' in a shape
                // always mean a capture and equal shapes mean equal decoded bytes.
                for &b in bytes.iter() {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        shape.push(char::from(b));
                    } else {
                        shape.push('%');
                        shape.push(char::from(HEX[usize::from(b >> 4)]));
                        shape.push(char::from(HEX[usize::from(b & 0x0f)]));
                    }
                }
            }
        }
    }
    shape
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte encoded by the `%XX` escape starting at `i`, if it is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let high = hex_value(*bytes.get(i + 1)?)?;
    let low = hex_value(*bytes.get(i + 2)?)?;
    Some(high << 4 | low)
}

/// Whether `raw` percent-decodes to exactly `expected`, without allocating.
fn decoded_eq(raw: &str, expected: &[u8]) -> bool {
    let bytes = raw.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            match escape_at(bytes, i) {
                Some(byte) => {
                    i += 3;
                    byte
                }
                None => return false,
            }
        } else {
            i += 1;
            bytes[i - 1]
        };
        if expected.get(j) != Some(&byte) {
            return false;
        }
        j += 1;
    }
    j == expected.len()
}

/// Percent-decodes a captured value; `None` for a bad escape or non-UTF-8 result.
fn percent_decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(escape_at(bytes, i)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
