//! Invocation records: list per app (newest first, filtered) and detail with logs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use picloud_events::domain::{InvocationStatus, InvocationsProjection};
use picloud_events::readmodel::DocQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestId;
use crate::state::ApiState;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    script: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

/// `before` is the `next` cursor of a previous page (microseconds since the epoch)
/// or an RFC 3339 time.
fn parse_before(before: &str) -> ApiResult<i64> {
    if let Ok(micros) = before.parse::<i64>() {
        return Ok(micros);
    }
    chrono::DateTime::parse_from_rfc3339(before)
        .map(|t| t.timestamp_micros())
        .map_err(|_| ApiError::invalid("before", "before must be a cursor or an RFC 3339 time"))
}

pub fn parse_limit(limit: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    match limit {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {max}"),
            )),
        },
    }
}

pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppLogRead(entry.app.id.clone()))?;
    if let Some(status) = &q.status
        && InvocationStatus::parse(status).is_none()
    {
        return Err(ApiError::invalid(
            "status",
            format!("unknown status {status:?}"),
        ));
    }
    let limit = parse_limit(q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let before_sort = q.before.as_deref().map(parse_before).transpose()?;
    let docs = state
        .runtime
        .store
        .query_docs(&DocQuery {
            collection: InvocationsProjection::COLLECTION.to_owned(),
            app: Some(entry.app.id.clone()),
            tag1: q.status.clone(),
            tag2: q.script.clone(),
            before_sort,
            limit,
        })
        .await?;
    let next = if docs.len() == limit {
        docs.last().map(|d| d.sort.to_string())
    } else {
        None
    };
    let invocations: Vec<Value> = docs.into_iter().map(|d| summary(d.body)).collect();
    Ok(Json(json!({ "invocations": invocations, "next": next })))
}

/// A list entry: the record without its log lines.
fn summary(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        let count = o.get("logs").and_then(|l| l.as_array()).map_or(0, Vec::len);
        o.remove("logs");
        o.insert("log_count".into(), json!(count));
    }
    body
}

pub async fn get(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let doc = state
        .runtime
        .store
        .get_doc(InvocationsProjection::COLLECTION, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("invocation"))?;
    let app_id = doc.app.clone().unwrap_or_default();
    authorize(&principal, &Capability::AppLogRead(app_id))?;
    Ok(Json(doc.body))
}

/// Queue a dead asynchronous invocation again: 202 `{"invocation_id","status":"queued"}`;
/// 409 `not_dead` when it is not dead (still queued, succeeded, or a synchronous run).
pub async fn redrive(
    State(state): State<ApiState>,
    principal: Principal,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let loaded = state
        .runtime
        .load_invocation(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("invocation"))?;
    let invocation = match loaded {
        Ok(invocation) => invocation,
        Err(app_id) => {
            authorize(&principal, &Capability::AppInvoke(app_id))?;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_dead",
                "only dead asynchronous invocations can be re-driven; this was a synchronous run",
            ));
        }
    };
    authorize(
        &principal,
        &Capability::AppInvoke(invocation.request.app_id.clone()),
    )?;
    if invocation.status != InvocationStatus::Dead {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!(
                "only dead invocations can be re-driven; this one is {}",
                invocation.status.as_str()
            ),
        )
        .with("status", invocation.status.as_str()));
    }
    let mut metadata = principal.metadata(&state.runtime.config.node_id);
    metadata.request_id = Some(request_id);
    state.runtime.redrive(&invocation, &metadata).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "invocation_id": id, "status": "queued" })),
    )
        .into_response())
}
