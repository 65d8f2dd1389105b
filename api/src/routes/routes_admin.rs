//! HTTP routes of an app: (method or `*`, path pattern) → script.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use picloud_actors::AppCommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;
use crate::views;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoute {
    method: String,
    path: String,
    script_id: String,
}

pub async fn create(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<CreateRoute>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppWriteRoute(entry.app.id.clone()))?;
    let route_id = uuid::Uuid::now_v7().to_string();
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::AddRoute {
                route_id: route_id.clone(),
                method: body.method,
                path: body.path,
                script_id: body.script_id,
            },
        )
        .await?;
    let route = app
        .routes
        .get(&route_id)
        .ok_or_else(|| ApiError::internal("create route", "route missing after append"))?;
    Ok((StatusCode::CREATED, Json(views::route(&app.id, route))))
}

/// Routes in match order (the order the edge tries them).
pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let routes: Vec<Value> = entry
        .routes
        .entries()
        .iter()
        .filter_map(|r| entry.app.routes.get(&r.id))
        .map(|r| views::route(&entry.app.id, r))
        .collect();
    Ok(Json(json!({ "routes": routes })))
}

pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = state
        .runtime
        .catalog
        .app_of_route(&id)
        .ok_or_else(|| ApiError::not_found("route"))?;
    authorize(&principal, &Capability::AppWriteRoute(entry.app.id.clone()))?;
    state
        .command(
            &principal,
            &entry.app.id,
            AppCommand::RemoveRoute { route_id: id },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
