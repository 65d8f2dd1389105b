//! A script's value as an HTTP response (CONTRACT.md, "Invocation").
//!
//! | value | response |
//! |---|---|
//! | `()` | 204, no body |
//! | string | 200 `text/plain` |
//! | map without `status`, array | 200 `application/json` |
//! | `#{status, headers?, body?}` | that status; a string body as is (`text/plain` unless the headers set a content type), a map/array body as JSON, `()` or no body empty |
//! | BLOB | 200 `application/octet-stream` |
//! | anything else (int, float, bool, …) | 200 `text/plain` of its string form |

use bytes::Bytes;
use rhai::{Dynamic, Map};

use crate::json_value;
use crate::outcome::Response;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const OCTETS: &str = "application/octet-stream";

/// Headers the server computes from the body it sends; a script setting them could
/// desynchronise the HTTP framing.
const SERVER_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Maps a script's value to a response, or explains why it is not a valid one.
pub(crate) fn from_value(value: &Dynamic) -> Result<Response, String> {
    if let Ok(map) = value.as_map_ref()
        && map.contains_key("status")
    {
        return explicit(&map);
    }
    let (body, content_type) = body_of(value)?;
    if body.is_none() {
        return Ok(Response {
            status: 204,
            headers: Vec::new(),
            body: Bytes::new(),
        });
    }
    Ok(Response {
        status: 200,
        headers: content_type
            .map(|ct| vec![("content-type".to_owned(), ct.to_owned())])
            .unwrap_or_default(),
        body: body.unwrap_or_default(),
    })
}

/// `#{status, headers?, body?}`.
fn explicit(map: &Map) -> Result<Response, String> {
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "headers" | "body"))
    {
        return Err(format!(
            "the response map has a `status` key, so it must be #{{status, headers, body}}, \
             but it also has `{key}`; to send a JSON object with these fields, return \
             #{{status: 200, body: <the object>}}"
        ));
    }
    let status = map
        .get("status")
        .and_then(|s| s.as_int().ok())
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| {
            let got = map.get("status").map_or_else(String::new, describe);
            format!("response status must be an integer from 100 to 599, got {got}")
        })?;

    let mut headers = match map.get("headers") {
        None => Vec::new(),
        Some(h) if h.is_unit() => Vec::new(),
        Some(h) => match h.as_map_ref() {
            Ok(h) => response_headers(&h)?,
            Err(_) => {
                return Err(format!(
                    "response headers must be a map of names to values, got {}",
                    describe(h)
                ));
            }
        },
    };

    let (body, content_type) = match map.get("body") {
        None => (None, None),
        Some(body) => body_of(body)?,
    };
    if let (Some(ct), Some(_)) = (content_type, &body)
        && !headers.iter().any(|(name, _)| name == "content-type")
    {
        headers.push(("content-type".to_owned(), ct.to_owned()));
    }
    Ok(Response {
        status,
        headers,
        body: body.unwrap_or_default(),
    })
}

/// A body and the content type it implies; `()` is no body at all.
fn body_of(value: &Dynamic) -> Result<(Option<Bytes>, Option<&'static str>), String> {
    if value.is_unit() {
        return Ok((None, None));
    }
    if let Ok(text) = value.as_immutable_string_ref() {
        return Ok((Some(Bytes::from(text.as_str().to_owned())), Some(TEXT)));
    }
    if value.is_map() || value.is_array() {
        let json = json_value::to_json(value).map_err(|err| format!("response body: {err}"))?;
        // Into a byte buffer: twice as fast as `Value`'s `Display`.
        let bytes = serde_json::to_vec(&json).map_err(|err| format!("response body: {err}"))?;
        return Ok((Some(Bytes::from(bytes)), Some(JSON)));
    }
    if let Ok(blob) = value.as_blob_ref() {
        return Ok((Some(Bytes::from(blob.clone())), Some(OCTETS)));
    }
    Ok((Some(Bytes::from(value.to_string())), Some(TEXT)))
}

fn response_headers(map: &Map) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::with_capacity(map.len());
    for (name, value) in map {
        let name = name.to_ascii_lowercase();
        if !is_token(&name) {
            return Err(format!(
                "response header name {name:?} is not a valid HTTP header name"
            ));
        }
        if SERVER_HEADERS.contains(&name.as_str()) {
            return Err(format!("response header `{name}` is set by the server"));
        }
        let value = header_value(value).ok_or_else(|| {
            format!(
                "response header `{name}` must be a string, number or bool, got {}",
                describe(value)
            )
        })?;
        if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(format!(
                "response header `{name}` has a character not allowed in a header value \
                 (only visible ASCII, space and tab are)"
            ));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

fn header_value(value: &Dynamic) -> Option<String> {
    if let Ok(text) = value.as_immutable_string_ref() {
        return Some(text.as_str().to_owned());
    }
    if value.is_int() || value.is_float() || value.is_bool() {
        return Some(value.to_string());
    }
    None
}

/// RFC 9110 `token`: the characters a header name may have.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A short description of a value for error messages: its type, and the value when
/// it is small.
fn describe(value: &Dynamic) -> String {
    let text = value.to_string();
    if text.len() <= 40 {
        format!("{} {text}", value.type_name())
    } else {
        value.type_name().to_owned()
    }
}

#[cfg(test)]
mod tests;
