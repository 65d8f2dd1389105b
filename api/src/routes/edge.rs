//! The invocation edge: `/{app-slug}/{path}` on any host, or `/{path}` on a host
//! that is one of an app's domains. Route lookup, script and compiled AST all come
//! from memory; the only hand-off is to an executor slot.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use picloud_actors::Invocation;
use picloud_events::Metadata;
use picloud_sandbox::{HttpRequest, Outcome, RunInput};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{RequestId, read_body};
use crate::state::ApiState;

pub const INVOCATION_HEADER: &str = "x-invocation-id";

pub async fn invoke(State(state): State<ApiState>, req: Request) -> Response {
    let response = match run(&state, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    state
        .runtime
        .metrics
        .http("edge", response.status().as_u16());
    response
}

async fn run(state: &ApiState, req: Request) -> Result<Response, ApiError> {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let catalog = &state.runtime.catalog;
    let path = req.uri().path().to_owned();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port)
        .map(str::to_ascii_lowercase);

    // A custom domain serves the whole path; otherwise the first segment is the slug.
    let (entry, rest) = match host.as_deref().and_then(|h| catalog.app_by_domain(h)) {
        Some(entry) => (entry, path.clone()),
        None => {
            let (slug, rest) = picloud_actors::routing::split_app_path(&path)
                .ok_or_else(|| ApiError::not_found("app"))?;
            let entry = catalog
                .app_by_slug(slug)
                .ok_or_else(|| ApiError::not_found("app"))?;
            (entry, rest.to_owned())
        }
    };
    let method = req.method().as_str().to_owned();
    let (route, params) = entry.routes.find(&method, &rest).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            format!("no route for {method} {rest}"),
        )
    })?;
    let script_id = route.target.clone();

    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = read_body(req.into_body(), state.config.body_limit).await?;
    let input = RunInput {
        app_id: entry.app.id.clone(),
        app_slug: entry.app.slug.clone(),
        invocation_id: String::new(),
        request: Some(HttpRequest {
            method,
            path: rest,
            query,
            headers,
            body,
        }),
        params: params.into_iter().collect::<BTreeMap<_, _>>(),
        event: json!({ "kind": "http" }),
    };
    let metadata = Metadata {
        actor: Some("http".into()),
        request_id: Some(request_id.clone()),
        correlation_id: Some(request_id),
        node: Some(state.runtime.config.node_id.clone()),
        ..Metadata::default()
    };
    let invocation = state
        .runtime
        .invoke(&entry, &script_id, input, "http", metadata)
        .await
        .map_err(|_| ApiError::overloaded())?
        .ok_or_else(|| ApiError::not_found("script"))?;
    Ok(outcome_response(&invocation))
}

pub(crate) fn strip_port(host: &str) -> &str {
    // IPv6 literals keep their brackets; nothing maps to them anyway.
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(']') || h.ends_with(']') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }
        _ => host,
    }
}

/// The HTTP answer for a finished run, per the contract's outcome table.
pub fn outcome_response(invocation: &Invocation) -> Response {
    let mut response = match &invocation.result.outcome {
        Outcome::Response(r) => {
            let mut response = Response::new(Body::from(r.body.clone()));
            *response.status_mut() =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in &r.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        Outcome::ScriptError {
            message,
            line,
            position,
        } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "script_error",
            message.clone(),
        )
        .with("line", *line)
        .with("position", *position)
        .into_response(),
        Outcome::LimitExceeded { limit } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "limit_exceeded",
            format!("the script exceeded a sandbox limit: {limit}"),
        )
        .with("limit", *limit)
        .into_response(),
        Outcome::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the script ran past its time limit",
        )
        .into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&invocation.id) {
        response.headers_mut().insert(INVOCATION_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("a.example.com:8080"), "a.example.com");
        assert_eq!(strip_port("a.example.com"), "a.example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }
}
