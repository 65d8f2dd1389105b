//! `http::get/post/put/patch/delete`: outbound HTTP through the node's guarded
//! client (`picloud-net`).
//!
//! Every function answers `#{status, headers, body, body_raw}`; a non-2xx status is an
//! answer, not an error. Refusals, timeouts and caps throw catchable errors
//! (`http: destination refused (loopback)`). The slot thread waits for the answer
//! while the node's async runtime makes the request; the wait counts against the
//! run's wall-clock limit, and an invocation makes at most
//! [`HttpLimits::max_calls_per_run`](picloud_net::HttpLimits) calls.

use std::time::Duration;

use picloud_net::{Method, OutboundRequest, OutboundResponse};
use rhai::plugin::*;
use rhai::{INT, Map};

use crate::answers::{Keep, Recordable, pass};
use crate::host::{unavailable, with_run_host};
use crate::{json_value, run_state};

#[export_module]
pub mod http_functions {
    use super::{Method, call};
    use rhai::Map;

    /// `GET url`.
    ///
    /// ```rhai
    /// let r = http::get("https://api.example.com/items");
    /// if r.status == 200 { r.body.items.len() }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn get(url: &str) -> Result<Map, Box<EvalAltResult>> {
        call(Method::GET, url, Dynamic::UNIT, &Map::new())
    }

    /// `GET url` with options: `headers`, `timeout_ms`, `follow_redirects`,
    /// `max_response_bytes`.
    ///
    /// ```rhai
    /// http::get(url, #{ headers: #{ authorization: "Bearer " + token }, timeout_ms: 2000 })
    /// ```
    #[rhai_fn(name = "get", volatile, return_raw)]
    pub fn get_with(url: &str, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::GET, url, Dynamic::UNIT, &opts)
    }

    /// `GET url` with a body (rarely useful, but allowed) and options.
    #[rhai_fn(name = "get", volatile, return_raw)]
    pub fn get_full(url: &str, body: Dynamic, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::GET, url, body, &opts)
    }

    /// `DELETE url`.
    ///
    /// ```rhai
    /// http::delete(`https://api.example.com/items/${id}`)
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn delete(url: &str) -> Result<Map, Box<EvalAltResult>> {
        call(Method::DELETE, url, Dynamic::UNIT, &Map::new())
    }

    /// `DELETE url` with options.
    #[rhai_fn(name = "delete", volatile, return_raw)]
    pub fn delete_with(url: &str, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::DELETE, url, Dynamic::UNIT, &opts)
    }

    /// `DELETE url` with a body and options.
    #[rhai_fn(name = "delete", volatile, return_raw)]
    pub fn delete_full(url: &str, body: Dynamic, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::DELETE, url, body, &opts)
    }

    /// `POST url` with a body: a map or array is sent as JSON, a string as text, a
    /// BLOB as bytes, `()` as nothing.
    ///
    /// ```rhai
    /// let r = http::post("https://hooks.example.com/x", #{ text: "deployed" });
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn post(url: &str, body: Dynamic) -> Result<Map, Box<EvalAltResult>> {
        call(Method::POST, url, body, &Map::new())
    }

    /// `POST url` with a body and options.
    ///
    /// ```rhai
    /// http::post(url, "a,b\n1,2", #{ headers: #{ "content-type": "text/csv" } })
    /// ```
    #[rhai_fn(name = "post", volatile, return_raw)]
    pub fn post_with(url: &str, body: Dynamic, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::POST, url, body, &opts)
    }

    /// `PUT url` with a body.
    #[rhai_fn(volatile, return_raw)]
    pub fn put(url: &str, body: Dynamic) -> Result<Map, Box<EvalAltResult>> {
        call(Method::PUT, url, body, &Map::new())
    }

    /// `PUT url` with a body and options.
    #[rhai_fn(name = "put", volatile, return_raw)]
    pub fn put_with(url: &str, body: Dynamic, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::PUT, url, body, &opts)
    }

    /// `PATCH url` with a body.
    #[rhai_fn(volatile, return_raw)]
    pub fn patch(url: &str, body: Dynamic) -> Result<Map, Box<EvalAltResult>> {
        call(Method::PATCH, url, body, &Map::new())
    }

    /// `PATCH url` with a body and options.
    #[rhai_fn(name = "patch", volatile, return_raw)]
    pub fn patch_with(url: &str, body: Dynamic, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        call(Method::PATCH, url, body, &opts)
    }
}

/// The options a call accepts, in the order listed in errors.
const OPTIONS: [&str; 4] = [
    "headers",
    "timeout_ms",
    "follow_redirects",
    "max_response_bytes",
];

/// A call's options, checked.
#[derive(Default)]
struct Options {
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    follow_redirects: Option<bool>,
    max_response_bytes: Option<usize>,
}

fn error(message: impl std::fmt::Display) -> Box<EvalAltResult> {
    format!("http: {message}").into()
}

fn parse_options(opts: &Map) -> Result<Options, Box<EvalAltResult>> {
    let mut options = Options::default();
    for (key, value) in opts {
        match key.as_str() {
            "headers" => {
                let headers = value
                    .as_map_ref()
                    .map_err(|_| error("option headers must be a map"))?;
                for (name, value) in headers.iter() {
                    let text = if value.is_string() || value.is_int() || value.is_bool() {
                        value.to_string()
                    } else {
                        return Err(error(format!(
                            "header {name} must be a string, got {}",
                            value.type_name()
                        )));
                    };
                    options.headers.push((name.to_string(), text));
                }
            }
            "timeout_ms" => {
                let ms = value
                    .as_int()
                    .ok()
                    .and_then(|ms| u64::try_from(ms).ok())
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| error("option timeout_ms must be a positive integer"))?;
                options.timeout = Some(Duration::from_millis(ms));
            }
            "follow_redirects" => {
                let follow = value
                    .as_bool()
                    .map_err(|_| error("option follow_redirects must be true or false"))?;
                options.follow_redirects = Some(follow);
            }
            "max_response_bytes" => {
                let bytes = value
                    .as_int()
                    .ok()
                    .and_then(|bytes| usize::try_from(bytes).ok())
                    .filter(|bytes| *bytes > 0)
                    .ok_or_else(|| error("option max_response_bytes must be a positive integer"))?;
                options.max_response_bytes = Some(bytes);
            }
            unknown => {
                return Err(error(format!(
                    "unknown option {unknown:?} (known: {})",
                    OPTIONS.join(", ")
                )));
            }
        }
    }
    Ok(options)
}

/// The request body and the content type it implies.
fn request_body(
    body: &Dynamic,
) -> Result<Option<(bytes::Bytes, &'static str)>, Box<EvalAltResult>> {
    if body.is_unit() {
        return Ok(None);
    }
    if let Ok(text) = body.as_immutable_string_ref() {
        return Ok(Some((
            bytes::Bytes::copy_from_slice(text.as_bytes()),
            "text/plain; charset=utf-8",
        )));
    }
    if body.is_blob() {
        let blob = body
            .clone()
            .into_blob()
            .map_err(|_| error("body is not a BLOB"))?;
        return Ok(Some((blob.into(), "application/octet-stream")));
    }
    if body.is_map() || body.is_array() {
        let json = json_value::to_json(body).map_err(|err| error(format!("body: {err}")))?;
        let text = serde_json::to_vec(&json).map_err(|err| error(format!("body: {err}")))?;
        return Ok(Some((text.into(), "application/json")));
    }
    Err(error(format!(
        "body must be a map, array, string, BLOB or (), got {}",
        body.type_name()
    )))
}

fn call(method: Method, url: &str, body: Dynamic, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    let mut options = parse_options(opts)?;
    let body = request_body(&body)?;
    if let Some((_, content_type)) = &body
        && !options
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        options
            .headers
            .push(("content-type".into(), (*content_type).into()));
    }

    let (client, budget, app_slug, script_id, allow_hosts) = with_run_host("http", |host| {
        let client = host
            .services
            .http
            .clone()
            .ok_or_else(|| unavailable("http"))?;
        let limits = client.policy().limits;
        if options
            .max_response_bytes
            .is_some_and(|bytes| bytes > limits.max_response_bytes)
        {
            return Err(error(format!(
                "option max_response_bytes is above the ceiling of {}",
                limits.max_response_bytes
            )));
        }
        if host.http_calls >= limits.max_calls_per_run {
            return Err(error(format!(
                "more than {} calls in one invocation",
                limits.max_calls_per_run
            )));
        }
        if host
            .permissions
            .as_ref()
            .is_some_and(|p| p.allow_hosts.is_none())
        {
            return Err(error(
                "permission_denied: http is not in this script's permissions".to_owned(),
            ));
        }
        host.http_calls += 1;
        Ok((
            client,
            host.app_slug.clone(),
            host.script_id.clone(),
            host.permissions
                .as_ref()
                .and_then(|p| p.allow_hosts.clone()),
        ))
    })
    .map(|(client, app_slug, script_id, allow_hosts)| {
        (
            client,
            run_state::remaining(),
            app_slug,
            script_id,
            allow_hosts,
        )
    })?;

    let ask = || serde_json::json!({ "method": method.as_str(), "url": url });
    let request = OutboundRequest {
        method: method.clone(),
        url: url.to_owned(),
        headers: options.headers,
        body: body.map(|(bytes, _)| bytes),
        timeout: options.timeout,
        follow_redirects: options.follow_redirects.unwrap_or(true),
        max_response_bytes: options.max_response_bytes,
        app_slug,
        script_id,
        allow_hosts,
    };
    let response = pass("http::request", Keep::Value, ask, || {
        let stopped = || run_state::stop_reason().is_some();
        let result = client.fetch_blocking(request, budget, &stopped);
        // The wait used up the run's time (or the run was cancelled): the run ends
        // here, as a timeout, whatever the script would do with an error.
        run_state::after_wait(result.map_err(error))
    })?;
    Ok(answer(response))
}

/// A response as a recording keeps it: the body as text when it is UTF-8, else
/// as hex.
impl Recordable for OutboundResponse {
    fn to_value(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "status": self.status,
            "headers": self.headers,
        });
        match std::str::from_utf8(&self.body) {
            Ok(text) => value["body"] = text.into(),
            Err(_) => value["body_hex"] = hex::encode(&self.body).into(),
        }
        value
    }

    fn from_value(value: &serde_json::Value) -> Option<Self> {
        let body = match (value.get("body"), value.get("body_hex")) {
            (Some(text), _) => bytes::Bytes::from(text.as_str()?.to_owned()),
            (None, Some(hex_text)) => hex::decode(hex_text.as_str()?).ok()?.into(),
            (None, None) => bytes::Bytes::new(),
        };
        Some(OutboundResponse {
            status: u16::try_from(value.get("status")?.as_u64()?).ok()?,
            headers: serde_json::from_value(value.get("headers")?.clone()).ok()?,
            body,
        })
    }
}

/// `#{status, headers, body, body_raw}`: `body` is parsed when the content type is
/// JSON (`application/json`, `…+json`) and the text parses, else the text itself.
fn answer(response: OutboundResponse) -> Map {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in response.headers {
        match headers.iter_mut().find(|(seen, _)| *seen == name) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    let is_json = headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .is_some_and(|(_, value)| {
            let media = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            media == "application/json" || media.ends_with("+json")
        });
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let body = is_json
        .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
        .flatten()
        .map_or_else(
            || Dynamic::from(text.clone()),
            |value| json_value::to_dynamic(&value),
        );

    let mut map = Map::new();
    map.insert(
        "status".into(),
        Dynamic::from_int(INT::from(response.status)),
    );
    map.insert(
        "headers".into(),
        headers
            .into_iter()
            .map(|(name, value)| (name.into(), Dynamic::from(value)))
            .collect::<Map>()
            .into(),
    );
    map.insert("body".into(), body);
    map.insert("body_raw".into(), text.into());
    map
}
