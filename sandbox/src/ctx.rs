//! The run's input and the `ctx` constant scripts see (CONTRACT.md, "Invocation").
//!
//! ```text
//! ctx.request  #{ method, path, query: #{..}, headers: #{lowercase: ..}, body: "…", json: <parsed or ()> }
//! ctx.params   #{ id: "42" }
//! ctx.event    #{ kind: "http" | "webhook" | "cron" | "event" | "async", … }
//! ctx.app      #{ id, slug }
//! ctx.invocation_id
//! ```

use std::collections::BTreeMap;

use rhai::{Dynamic, Map};

use crate::json_value;

/// The HTTP request that triggered a run.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

/// Everything a run gets besides the script.
#[derive(Clone, Debug)]
pub struct RunInput {
    pub app_id: String,
    pub app_slug: String,
    pub invocation_id: String,
    /// `None` (cron, events, async invokes) makes `ctx.request` `()`.
    pub request: Option<HttpRequest>,
    /// Route parameters: `ctx.params`.
    pub params: BTreeMap<String, String>,
    /// `ctx.event`: a JSON object with at least `kind`.
    pub event: serde_json::Value,
}

/// Builds `ctx` from the run's input.
pub(crate) fn build(input: &RunInput) -> Dynamic {
    let mut ctx = Map::new();
    ctx.insert(
        "request".into(),
        input.request.as_ref().map_or(Dynamic::UNIT, request),
    );
    ctx.insert("params".into(), strings(input.params.iter()));
    ctx.insert("event".into(), json_value::to_dynamic(&input.event));
    let mut app = Map::new();
    app.insert("id".into(), input.app_id.clone().into());
    app.insert("slug".into(), input.app_slug.clone().into());
    ctx.insert("app".into(), app.into());
    ctx.insert("invocation_id".into(), input.invocation_id.clone().into());
    Dynamic::from_map(ctx).into_read_only()
}

fn request(request: &HttpRequest) -> Dynamic {
    let mut map = Map::new();
    map.insert("method".into(), request.method.clone().into());
    map.insert("path".into(), request.path.clone().into());
    map.insert("query".into(), query(&request.query));
    map.insert("headers".into(), headers(&request.headers));
    map.insert(
        "body".into(),
        String::from_utf8_lossy(&request.body).into_owned().into(),
    );
    // Any body that parses as JSON is offered parsed, whatever its content type:
    // clients often omit or misstate it, and a failed parse simply leaves `()`.
    // (An empty body, every GET's, is not JSON: no parse, no error built.)
    let json = if request.body.is_empty() {
        Dynamic::UNIT
    } else {
        serde_json::from_slice::<serde_json::Value>(&request.body)
            .map_or(Dynamic::UNIT, |value| json_value::to_dynamic(&value))
    };
    map.insert("json".into(), json);
    map.into()
}

/// Query parameters; the first occurrence of a repeated name wins, so a value
/// appended to a URL cannot override one placed before it.
fn query(pairs: &[(String, String)]) -> Dynamic {
    let mut map = Map::new();
    for (name, value) in pairs {
        map.entry(name.as_str().into())
            .or_insert_with(|| value.clone().into());
    }
    map.into()
}

/// Headers under lower-cased names; repeated headers are joined with ", " as
/// RFC 9110 allows for list-valued fields.
fn headers(pairs: &[(String, String)]) -> Dynamic {
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        joined
            .entry(name.to_ascii_lowercase())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    strings(joined.iter())
}

fn strings<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Dynamic {
    pairs
        .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
        .collect::<Map>()
        .into()
}
