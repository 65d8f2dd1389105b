//! Extractors: `JsonBody<T>` (any content type, a size cap, and the error bodies of
//! the contract) and `RequestId`.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::ApiState;

/// A JSON request body. Malformed JSON is 400 `malformed_json`; well-formed JSON of
/// the wrong shape (missing or unknown field, wrong type) is 422 `invalid_field`;
/// a body over the cap is 413. The content type is not required, so
/// `curl -d '{…}'` works as it does against other platforms.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        let bytes = read_body(req.into_body(), state.config.body_limit).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Read a whole body, refusing it past `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

/// Parse JSON with the contract's error mapping. An empty body parses as `{}` so
/// endpoints whose fields are all optional accept no body at all.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = deserialize_mapped(&mut de)?;
    de.end()
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    Ok(value)
}

fn deserialize_mapped<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, ApiError> {
    T::deserialize(de).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
            }
            Category::Data => {
                let message = e.to_string();
                let field = field_of(&message).unwrap_or_else(|| "body".to_owned());
                ApiError::invalid(&field, format!("invalid request body: {message}"))
            }
        }
    })
}

/// Pull the field name out of serde's messages ("missing field `slug`", "unknown
/// field `x`, expected …").
fn field_of(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// The id of this request (from a sane incoming `x-request-id`, or a new one).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        slug: String,
    }

    #[test]
    fn malformed_json_is_400_and_wrong_shape_is_422_naming_the_field() {
        let e = parse_json::<Body>(b"{\"slug\": ")
            .err()
            .map(|e| e.status.as_u16());
        assert_eq!(e, Some(400));
        let e = parse_json::<Body>(b"{}").err();
        let e = e.expect("missing field refused");
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.detail.get("field").and_then(|v| v.as_str()), Some("slug"));
        let e = parse_json::<Body>(b"{\"slug\":\"a\",\"x\":1}").err();
        assert_eq!(e.map(|e| e.status.as_u16()), Some(422));
        let e = parse_json::<Body>(b"{\"slug\":\"a\"} trailing").err();
        assert_eq!(e.map(|e| e.status.as_u16()), Some(400));
    }
}
