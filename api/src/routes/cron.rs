//! `GET /api/v1/admin/cron/preview`: the next fires of a schedule in a zone, for the
//! dashboard's next-fire preview and for checking a schedule before saving it.
//!
//! It reads nothing but its query, so it asks for the weakest read capability,
//! `InstanceListApps`: anyone signed in with a token of any scope.

use axum::Json;
use axum::extract::Query;
use chrono::{DateTime, Utc};
use picloud_cron::Schedule;
use serde::Deserialize;
use serde_json::{Value, json};

use super::invocations::parse_limit;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};

const DEFAULT_COUNT: usize = 5;
const MAX_COUNT: usize = 100;

#[derive(Deserialize)]
pub struct PreviewQuery {
    schedule: Option<String>,
    timezone: Option<String>,
    after: Option<String>,
    count: Option<String>,
}

pub async fn preview(
    principal: Principal,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceListApps)?;
    let schedule = required("schedule", q.schedule.as_deref())?;
    let timezone = required("timezone", q.timezone.as_deref())?;
    let schedule = Schedule::parse(schedule, timezone)
        .map_err(|e| ApiError::invalid(e.field(), e.to_string()))?;
    let after = match q.after.as_deref() {
        None => Utc::now(),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::invalid("after", "after must be an RFC 3339 time"))?,
    };
    let count = parse_limit(q.count.as_deref(), DEFAULT_COUNT, MAX_COUNT).map_err(|_| {
        ApiError::invalid("count", format!("count must be between 1 and {MAX_COUNT}"))
    })?;
    let zone = schedule.timezone();
    let fires: Vec<String> = schedule
        .upcoming(after)
        .take(count)
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .collect();
    Ok(Json(json!({ "fires": fires })))
}

fn required<'a>(field: &str, value: Option<&'a str>) -> ApiResult<&'a str> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}
