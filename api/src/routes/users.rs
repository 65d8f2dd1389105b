//! Instance users: `GET/POST /users`, `PATCH/DELETE /users/{id}`.
//!
//! Beyond `InstanceManageUsers` (admins and owners): only an owner may make or
//! change an owner (422 `cannot_escalate` / 403), and the last active owner cannot
//! be demoted, disabled or deleted (409 `last_owner`, decided with the `owners`
//! stream so concurrent changes cannot race past it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use picloud_actors::UserCommand;
use picloud_actors::validate::validate_password;
use picloud_events::domain::{Role, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;
use crate::{password, views};

pub fn parse_role(role: &str) -> ApiResult<Role> {
    Role::parse(role).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!("unknown role '{role}' (owner, admin or member)"),
        )
    })
}

pub fn cannot_escalate(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_escalate", message)
}

/// A live user by id, or 404.
pub fn load_user(state: &ApiState, id: &str) -> ApiResult<Arc<User>> {
    state
        .runtime
        .catalog
        .user(id)
        .filter(|u| !u.deleted)
        .ok_or_else(|| ApiError::not_found("user"))
}

async fn hashed(password: Option<String>) -> ApiResult<Option<String>> {
    match password {
        None => Ok(None),
        Some(p) => {
            validate_password(&p).map_err(|e| ApiError::invalid(e.field, e.reason))?;
            password::hash(p).await.map(Some)
        }
    }
}

pub async fn list(State(state): State<ApiState>, principal: Principal) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceManageUsers)?;
    let users: Vec<Value> = state
        .runtime
        .catalog
        .users()
        .iter()
        .map(|u| views::user(u))
        .collect();
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    role: String,
    password: Option<String>,
}

pub async fn create(
    State(state): State<ApiState>,
    principal: Principal,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    authorize(&principal, &Capability::InstanceManageUsers)?;
    let role = parse_role(&body.role)?;
    if role > principal.role {
        return Err(cannot_escalate("only an owner can create an owner"));
    }
    let password_hash = hashed(body.password).await?;
    let user_id = uuid::Uuid::now_v7().to_string();
    let user = state
        .user_command(
            &principal,
            &user_id,
            UserCommand::Create {
                username: body.username,
                role,
                password_hash,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((StatusCode::CREATED, Json(views::user(&user))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

/// Only an owner may change an owner.
fn check_target(principal: &Principal, target: &User) -> ApiResult<()> {
    if target.role > principal.role {
        return Err(ApiError::forbidden(format!(
            "only an owner can change the {} '{}'",
            target.role.as_str(),
            target.username
        )));
    }
    Ok(())
}

pub async fn update(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceManageUsers)?;
    let target = load_user(&state, &id)?;
    check_target(&principal, &target)?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    if role.is_some_and(|r| r > principal.role) {
        return Err(cannot_escalate("only an owner can grant the owner role"));
    }
    let password_hash = hashed(body.password).await?;
    let mut commands = Vec::new();
    if let Some(role) = role {
        commands.push(UserCommand::SetRole { role });
    }
    if let Some(disabled) = body.disabled {
        commands.push(UserCommand::SetDisabled { disabled });
    }
    if let Some(password_hash) = password_hash {
        commands.push(UserCommand::SetPassword { password_hash });
    }
    let mut user = Some((*target).clone());
    for command in commands {
        user = state.user_command(&principal, &id, command).await?;
    }
    let user = user.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(views::user(&user)))
}

pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&principal, &Capability::InstanceManageUsers)?;
    let target = load_user(&state, &id)?;
    check_target(&principal, &target)?;
    state
        .user_command(&principal, &id, UserCommand::Delete)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
