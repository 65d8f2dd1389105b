//! Browsing the event log: `GET /api/v1/admin/events` (raw events) and, in
//! `audit.rs`, the readable view of the same log.
//!
//! Filters: `stream`, `app` (id or slug), `actor` (user id, `user:<id>`, or a
//! username), `type`, `since`/`until` (RFC 3339); pages by position (`after`,
//! `next`). Password hashes are redacted: the log keeps them (a restored log must
//! let people log in), the API never shows them; sealed secrets show as `[sealed]`.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use picloud_events::RecordedEvent;
use picloud_events::event::EventFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::invocations::parse_limit;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;

#[derive(Deserialize)]
pub struct BrowseQuery {
    pub after: Option<String>,
    pub limit: Option<String>,
    pub stream: Option<String>,
    pub app: Option<String>,
    pub actor: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// The validated query: the store's filter, the position to start after, the limit.
pub struct Browse {
    pub filter: EventFilter,
    pub after: i64,
    pub limit: usize,
}

fn parse_time(field: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(field, format!("{field} must be an RFC 3339 time")))
        })
        .transpose()
}

impl Browse {
    pub fn parse(state: &ApiState, q: BrowseQuery) -> ApiResult<Browse> {
        let after = match q.after.as_deref() {
            None => 0,
            Some(s) => s.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
                ApiError::invalid("after", "after must be a position (integer ≥ 0)")
            })?,
        };
        let limit = parse_limit(q.limit.as_deref(), 100, 1000)?;
        let catalog = &state.runtime.catalog;
        // `app` may be a slug; the log indexes app ids.
        let app = q.app.map(|key| {
            catalog
                .find_app(&key)
                .map(|e| e.app.id.clone())
                .unwrap_or(key)
        });
        // `actor` may be a user id, `user:<id>` or a username.
        let actor = q.actor.map(|a| {
            if a.contains(':') {
                a
            } else if let Some(user) = catalog.user_by_name(&a) {
                format!("user:{}", user.id)
            } else {
                format!("user:{a}")
            }
        });
        let filter = EventFilter {
            stream: q.stream,
            app,
            actor,
            event_type: q.event_type,
            since: parse_time("since", q.since.as_deref())?,
            until: parse_time("until", q.until.as_deref())?,
        };
        Ok(Browse {
            filter,
            after,
            limit,
        })
    }
}

/// An event as the API shows it: password hashes and webhook secrets of old
/// logs redacted, sealed values (secrets, webhook secrets) replaced by
/// `[sealed]` (the log keeps the ciphertext; nobody needs to read it here).
pub fn event_view(event: &RecordedEvent) -> Value {
    let mut value = json!(event);
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        if data.contains_key("password_hash") {
            data.insert("password_hash".into(), json!("[redacted]"));
        }
        if event.event_type == "SecretSet" && data.contains_key("sealed") {
            data.insert("sealed".into(), json!("[sealed]"));
        }
        if event.event_type == "GitBound" && data.get("sealed_secret").is_some_and(|s| !s.is_null())
        {
            data.insert("sealed_secret".into(), json!("[sealed]"));
        }
        if let Some(webhook) = data
            .get_mut("kind")
            .and_then(|k| k.get_mut("webhook"))
            .and_then(Value::as_object_mut)
        {
            if webhook.get("secret").is_some_and(|s| !s.is_null()) {
                webhook.insert("secret".into(), json!("[redacted]"));
            }
            if webhook.get("sealed_secret").is_some_and(|s| !s.is_null()) {
                webhook.insert("sealed_secret".into(), json!("[sealed]"));
            }
        }
    }
    value
}

pub async fn browse(
    State(state): State<ApiState>,
    principal: Principal,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceReadEvents)?;
    let browse = Browse::parse(&state, q)?;
    let events = state
        .runtime
        .store
        .browse(&browse.filter, browse.after, browse.limit)
        .await?;
    let next = if events.len() == browse.limit {
        events.last().map(|e| e.position)
    } else {
        None
    };
    let events: Vec<Value> = events.iter().map(event_view).collect();
    Ok(Json(json!({ "events": events, "next": next })))
}
