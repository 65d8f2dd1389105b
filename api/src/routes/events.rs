//! Browsing the event log: `GET /api/v1/admin/events`.

use axum::Json;
use axum::extract::{Query, State};
use picloud_events::event::EventFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::invocations::parse_limit;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;

#[derive(Deserialize)]
pub struct BrowseQuery {
    after: Option<String>,
    limit: Option<String>,
    stream: Option<String>,
    app: Option<String>,
    actor: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

pub async fn browse(
    State(state): State<ApiState>,
    principal: Principal,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceReadEvents)?;
    let after =
        match q.after.as_deref() {
            None => 0,
            Some(s) => s.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
                ApiError::invalid("after", "after must be a position (integer ≥ 0)")
            })?,
        };
    let limit = parse_limit(q.limit.as_deref(), 100, 1000)?;
    // `app` may be a slug; the log indexes app ids.
    let app = q.app.map(|key| {
        state
            .runtime
            .catalog
            .find_app(&key)
            .map(|e| e.app.id.clone())
            .unwrap_or(key)
    });
    let filter = EventFilter {
        stream: q.stream,
        app,
        actor: q.actor,
        event_type: q.event_type,
        since: None,
        until: None,
    };
    let events = state.runtime.store.browse(&filter, after, limit).await?;
    let next = if events.len() == limit {
        events.last().map(|e| e.position)
    } else {
        None
    };
    Ok(Json(json!({ "events": events, "next": next })))
}
