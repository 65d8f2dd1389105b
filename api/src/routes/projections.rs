//! Read models: `GET /projections` (name, checkpoint, lag) and
//! `POST /projections/{name}/rebuild` (replay the whole log into it).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;

pub async fn list(State(state): State<ApiState>, principal: Principal) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceManageProjections)?;
    let projections: Vec<Value> = state
        .runtime
        .projections()
        .await?
        .iter()
        .map(|p| json!({ "name": p.name, "checkpoint": p.checkpoint, "lag": p.lag }))
        .collect();
    Ok(Json(json!({ "projections": projections })))
}

pub async fn rebuild(
    State(state): State<ApiState>,
    principal: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceManageProjections)?;
    let started = std::time::Instant::now();
    match state.runtime.rebuild(&name).await {
        None => Err(ApiError::not_found("projection")),
        Some(Err(e)) => Err(ApiError::unavailable(format!(
            "rebuild of {name} failed: {e}"
        ))),
        Some(Ok(report)) => Ok(Json(json!({
            "name": name,
            "checkpoint": report.position,
            "identical": report.identical,
            "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        }))),
    }
}
