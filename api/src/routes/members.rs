//! App members: `GET/POST /apps/{app}/members`, `PATCH/DELETE …/members/{user}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use picloud_actors::AppCommand;
use picloud_events::domain::{App, AppRole};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;
use crate::views;

fn parse_role(role: &str) -> ApiResult<AppRole> {
    AppRole::parse(role).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!("unknown app role '{role}' (admin, developer or viewer)"),
        )
    })
}

fn member_view(state: &ApiState, app: &App, user_id: &str) -> Value {
    let username = state
        .runtime
        .catalog
        .user(user_id)
        .map(|u| u.username.clone());
    match app.members.get(user_id) {
        Some(role) => views::member(user_id, username.as_deref(), *role),
        None => json!({ "user_id": user_id }),
    }
}

pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let catalog = &state.runtime.catalog;
    let members: Vec<Value> = entry
        .app
        .members
        .iter()
        // A deleted user's membership is inert; it is not shown.
        .filter_map(|(id, role)| {
            let user = catalog.user(id).filter(|u| !u.deleted)?;
            Some(views::member(id, Some(&user.username), *role))
        })
        .collect();
    Ok(Json(json!({ "members": members })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    user_id: String,
    role: String,
}

pub async fn add(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<AddMember>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageMembers(entry.app.id.clone()),
    )?;
    let role = parse_role(&body.role)?;
    if state
        .runtime
        .catalog
        .user(&body.user_id)
        .filter(|u| !u.deleted)
        .is_none()
    {
        return Err(ApiError::invalid("user_id", "no such user"));
    }
    if entry.app.members.contains_key(&body.user_id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "member_exists",
            "the user is already a member; PATCH the membership to change the role",
        ));
    }
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::SetMember {
                user_id: body.user_id.clone(),
                role,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(member_view(&state, &app, &body.user_id)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    role: String,
}

pub async fn update(
    State(state): State<ApiState>,
    principal: Principal,
    Path((key, user_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateMember>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageMembers(entry.app.id.clone()),
    )?;
    let role = parse_role(&body.role)?;
    if !entry.app.members.contains_key(&user_id) {
        return Err(ApiError::not_found("member"));
    }
    if entry.app.members.get(&user_id) == Some(&role) {
        return Ok(Json(member_view(&state, &entry.app, &user_id)));
    }
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::SetMember {
                user_id: user_id.clone(),
                role,
            },
        )
        .await?;
    Ok(Json(member_view(&state, &app, &user_id)))
}

pub async fn remove(
    State(state): State<ApiState>,
    principal: Principal,
    Path((key, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageMembers(entry.app.id.clone()),
    )?;
    state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::RemoveMember { user_id },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
