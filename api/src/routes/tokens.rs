//! API tokens: `POST/GET /tokens`, `DELETE /tokens/{id}`.
//!
//! A token is shown once, at creation; the log and the catalog keep its SHA-256.
//! Its scopes must be known, and no wider than the scopes of the token that mints it
//! (422 `cannot_escalate`). Admins and owners may mint and revoke tokens of users
//! whose role is not above theirs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use picloud_actors::UserCommand;
use picloud_actors::bootstrap::{new_token, token_hash};
use picloud_events::domain::TokenKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::users::{cannot_escalate, load_user};
use crate::auth::{Capability, Principal, authorize, scopes};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;
use crate::views;

/// At most this many scopes on one token (there are only a handful).
const MAX_SCOPES: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    user_id: Option<String>,
}

/// Authorize acting on `user_id`'s tokens: one's own always; another user's only
/// with `InstanceManageUsers` and never above one's own role.
fn authorize_for(
    state: &ApiState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<std::sync::Arc<picloud_events::domain::User>> {
    if user_id == principal.user_id {
        authorize(principal, &Capability::OwnTokens)?;
        return load_user(state, user_id);
    }
    authorize(principal, &Capability::InstanceManageUsers)?;
    let target = load_user(state, user_id)?;
    if target.role > principal.role {
        return Err(ApiError::forbidden(format!(
            "only an owner can manage the tokens of the {} '{}'",
            target.role.as_str(),
            target.username
        )));
    }
    Ok(target)
}

pub async fn create(
    State(state): State<ApiState>,
    principal: Principal,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user_id = body.user_id.unwrap_or_else(|| principal.user_id.clone());
    let target = authorize_for(&state, &principal, &user_id).map_err(|e| {
        // Naming a user that does not exist is a field error, not a missing page.
        if e.status == StatusCode::NOT_FOUND {
            ApiError::invalid("user_id", "no such user")
        } else {
            e
        }
    })?;
    if body.scopes.is_empty() || body.scopes.len() > MAX_SCOPES {
        return Err(ApiError::invalid(
            "scopes",
            format!(
                "give 1 to {MAX_SCOPES} scopes, from: {}",
                scopes::ALL.join(", ")
            ),
        ));
    }
    let mut granted: Vec<String> = Vec::new();
    for scope in &body.scopes {
        if !scopes::ALL.contains(&scope.as_str()) {
            return Err(ApiError::invalid(
                "scopes",
                format!(
                    "unknown scope '{scope}' (known: {})",
                    scopes::ALL.join(", ")
                ),
            )
            .with("scope", scope.as_str()));
        }
        if !principal.has_scope(scope) {
            return Err(cannot_escalate(&format!(
                "a token cannot grant the scope '{scope}', which the calling token lacks"
            )));
        }
        if !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    let value = new_token();
    let token_id = uuid::Uuid::now_v7().to_string();
    let user = state
        .user_command(
            &principal,
            &target.id,
            UserCommand::IssueToken {
                token_id: token_id.clone(),
                name: body.name,
                hash: token_hash(&value),
                scopes: granted,
                expires_at: body.expires_at,
                kind: TokenKind::Api,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let token = user
        .tokens
        .get(&token_id)
        .ok_or_else(|| ApiError::internal("token issued", "not in the user state"))?;
    let mut view = views::token(&user.id, token);
    view["token"] = json!(value);
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    user_id: Option<String>,
}

pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let user_id = q.user_id.unwrap_or_else(|| principal.user_id.clone());
    let user = authorize_for(&state, &principal, &user_id)?;
    let tokens: Vec<Value> = user
        .tokens
        .values()
        .filter(|t| t.kind == TokenKind::Api)
        .map(|t| views::token(&user.id, t))
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

pub async fn revoke(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let catalog = &state.runtime.catalog;
    let owner = catalog
        .users()
        .into_iter()
        .find(|u| u.tokens.get(&id).is_some_and(|t| t.kind == TokenKind::Api))
        .ok_or_else(|| ApiError::not_found("token"))?;
    match authorize_for(&state, &principal, &owner.id) {
        Ok(_) => {}
        // Someone else's token that one may not manage: as if it did not exist.
        Err(e) if e.status == StatusCode::FORBIDDEN && owner.id != principal.user_id => {
            return Err(ApiError::not_found("token"));
        }
        Err(e) => return Err(e),
    }
    state
        .user_command(
            &principal,
            &owner.id,
            UserCommand::RevokeToken { token_id: id },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
