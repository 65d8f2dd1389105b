//! Who is calling (`Principal`, from a bearer token) and what they may do
//! (`authorize`). Every admin handler resolves the capability for the resource it
//! loaded and calls `authorize` once before reading or changing anything: that one
//! call is where roles, app memberships and token scopes are decided.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use picloud_actors::bootstrap::token_hash;
use picloud_events::Metadata;
use picloud_events::domain::Role;

use crate::error::ApiError;
use crate::extract::RequestId;
use crate::state::ApiState;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: String,
    pub token_id: String,
    pub role: Role,
    pub scopes: Vec<String>,
    pub request_id: String,
}

impl Principal {
    /// Event metadata naming this caller and request.
    pub fn metadata(&self, node: &str) -> Metadata {
        Metadata {
            actor: Some(format!("user:{}", self.user_id)),
            request_id: Some(self.request_id.clone()),
            correlation_id: Some(self.request_id.clone()),
            node: Some(node.to_owned()),
            ..Metadata::default()
        }
    }
}

/// What an endpoint needs, resolved for the resource it touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    InstanceCreateApp,
    InstanceListApps,
    InstanceReadEvents,
    InstanceManageUsers,
    AppRead(String),
    AppAdmin(String),
    AppManageDomains(String),
    AppWriteScript(String),
    AppWriteRoute(String),
    AppInvoke(String),
    AppLogRead(String),
}

/// The single authorization decision. Today every user is an owner or admin of the
/// instance (users and app memberships come with the access work), and those roles
/// may do everything; a member may do nothing yet.
pub fn authorize(principal: &Principal, capability: &Capability) -> Result<(), ApiError> {
    match principal.role {
        Role::Owner | Role::Admin => Ok(()),
        Role::Member => Err(ApiError::forbidden(format!(
            "not allowed: {}",
            capability_name(capability)
        ))),
    }
}

pub fn capability_name(capability: &Capability) -> &'static str {
    match capability {
        Capability::InstanceCreateApp => "InstanceCreateApp",
        Capability::InstanceListApps => "InstanceListApps",
        Capability::InstanceReadEvents => "InstanceReadEvents",
        Capability::InstanceManageUsers => "InstanceManageUsers",
        Capability::AppRead(_) => "AppRead",
        Capability::AppAdmin(_) => "AppAdmin",
        Capability::AppManageDomains(_) => "AppManageDomains",
        Capability::AppWriteScript(_) => "AppWriteScript",
        Capability::AppWriteRoute(_) => "AppWriteRoute",
        Capability::AppInvoke(_) => "AppInvoke",
        Capability::AppLogRead(_) => "AppLogRead",
    }
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
        let catalog = &state.runtime.catalog;
        let owner = catalog
            .token_owner(&token_hash(token))
            .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
        let user = catalog
            .user(&owner.user_id)
            .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
        let token = user
            .tokens
            .get(&owner.token_id)
            .filter(|t| !t.revoked)
            .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
        if token.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(ApiError::unauthorized("token expired"));
        }
        let RequestId(request_id) = RequestId::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        Ok(Principal {
            user_id: user.id.clone(),
            token_id: token.id.clone(),
            role: user.role,
            scopes: token.scopes.clone(),
            request_id,
        })
    }
}
