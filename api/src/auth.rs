//! Who is calling (`Principal`, from a bearer token or a dashboard session cookie)
//! and what they may do (`authorize`).
//!
//! Every admin handler resolves the capability for the resource it loaded and calls
//! `authorize` once before reading or changing anything. That one call decides, in
//! order:
//!
//! 1. the **role**: instance owners and admins may act on every app; a member acts
//!    on an app only through a membership (`viewer < developer < admin`), and an app
//!    they are not a member of is answered 404, as if it did not exist;
//! 2. the **scope** of the token: a token can only narrow what its user may do
//!    ([`scopes`]). Sessions carry the user's whole role (`admin` scope).
//!
//! Escalation rules that depend on the target (who may grant `owner`, mint a token for
//! whom) are checked by the user and token handlers after `authorize`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use chrono::Utc;
use picloud_actors::Catalog;
use picloud_actors::bootstrap::token_hash;
use picloud_events::Metadata;
use picloud_events::domain::{AppRole, Role, TokenKind};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::RequestId;
use crate::state::ApiState;

/// The session cookie (HttpOnly) and the CSRF cookie the dashboard reads.
pub const SESSION_COOKIE: &str = "picloud_session";
pub const CSRF_COOKIE: &str = "picloud_csrf";
/// The header a cookie-authenticated write must carry, equal to the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Session,
}

/// An authenticated caller.
#[derive(Clone)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub token_id: String,
    pub role: Role,
    pub scopes: Vec<String>,
    pub request_id: String,
    pub via: Via,
    /// The actor written in event metadata instead of `user:<id>` (in-process
    /// callers such as git sync, `git:<app>`).
    pub actor: Option<String>,
    catalog: Arc<Catalog>,
}

/// A request extension carrying the caller of an in-process request (git sync's
/// deploys through the router). Only code in this process can set it: HTTP
/// clients cannot put extensions on a request.
#[derive(Clone)]
pub struct InProcess(pub Principal);

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// Event metadata naming this caller, the token they used and the request.
    pub fn metadata(&self, node: &str) -> Metadata {
        if let Some(actor) = &self.actor {
            return Metadata {
                actor: Some(actor.clone()),
                request_id: Some(self.request_id.clone()),
                correlation_id: Some(self.request_id.clone()),
                node: Some(node.to_owned()),
                ..Metadata::default()
            };
        }
        Metadata {
            actor: Some(format!("user:{}", self.user_id)),
            token: Some(format!("token:{}", self.token_id)),
            request_id: Some(self.request_id.clone()),
            correlation_id: Some(self.request_id.clone()),
            node: Some(node.to_owned()),
            ..Metadata::default()
        }
    }

    /// A caller inside this node acting as `actor` (e.g. `git:<app>`) with an
    /// instance admin's role and the `admin` scope. It reaches the admin API only
    /// through [`InProcess`], never from the network.
    pub fn in_process(catalog: Arc<Catalog>, actor: String, request_id: String) -> Principal {
        Principal {
            user_id: actor.clone(),
            username: actor.clone(),
            token_id: String::new(),
            role: Role::Admin,
            scopes: vec![scopes::ADMIN.to_owned()],
            request_id,
            via: Via::Bearer,
            actor: Some(actor),
            catalog,
        }
    }

    /// Would `authorize` allow `capability`? (For filtering lists.)
    pub fn allows(&self, capability: &Capability) -> bool {
        authorize(self, capability).is_ok()
    }

    /// Does this principal's token carry `scope` (directly or by implication)?
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| scopes::grants(held, scope))
    }

    /// The role this principal has in an app, if any: instance owners and admins
    /// are admins of every app.
    pub fn app_role(&self, app_id: &str) -> Option<AppRole> {
        if self.role >= Role::Admin {
            return Some(AppRole::Admin);
        }
        let entry = self.catalog.app(app_id)?;
        entry.app.members.get(&self.user_id).copied()
    }
}

/// What an endpoint needs, resolved for the resource it touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    InstanceCreateApp,
    InstanceListApps,
    InstanceReadEvents,
    InstanceManageUsers,
    InstanceManageProjections,
    /// Seeing the cluster's nodes (`GET /nodes`).
    InstanceReadNodes,
    /// Managing one's own API tokens (any authenticated user).
    OwnTokens,
    AppRead(String),
    AppAdmin(String),
    AppManageDomains(String),
    AppManageMembers(String),
    AppWriteScript(String),
    AppWriteRoute(String),
    AppInvoke(String),
    AppLogRead(String),
    /// Setting and deleting secrets (listing names is `AppRead`).
    AppManageSecrets(String),
    /// Reading the app's kv data.
    AppKvRead(String),
    /// Writing the app's kv data.
    AppKvWrite(String),
}

/// Who may hold a capability: a minimum instance role, or a minimum role in an app.
enum Need<'a> {
    Anyone,
    Instance(Role),
    App(&'a str, AppRole),
}

impl Capability {
    pub fn name(&self) -> &'static str {
        match self {
            Capability::InstanceCreateApp => "InstanceCreateApp",
            Capability::InstanceListApps => "InstanceListApps",
            Capability::InstanceReadEvents => "InstanceReadEvents",
            Capability::InstanceManageUsers => "InstanceManageUsers",
            Capability::InstanceManageProjections => "InstanceManageProjections",
            Capability::InstanceReadNodes => "InstanceReadNodes",
            Capability::OwnTokens => "OwnTokens",
            Capability::AppRead(_) => "AppRead",
            Capability::AppAdmin(_) => "AppAdmin",
            Capability::AppManageDomains(_) => "AppManageDomains",
            Capability::AppManageMembers(_) => "AppManageMembers",
            Capability::AppWriteScript(_) => "AppWriteScript",
            Capability::AppWriteRoute(_) => "AppWriteRoute",
            Capability::AppInvoke(_) => "AppInvoke",
            Capability::AppLogRead(_) => "AppLogRead",
            Capability::AppManageSecrets(_) => "AppManageSecrets",
            Capability::AppKvRead(_) => "AppKvRead",
            Capability::AppKvWrite(_) => "AppKvWrite",
        }
    }

    /// The scope a token needs (`None`: any token).
    fn scope(&self) -> Option<&'static str> {
        match self {
            Capability::InstanceCreateApp
            | Capability::AppAdmin(_)
            | Capability::AppManageDomains(_)
            | Capability::AppManageMembers(_) => Some(scopes::APPS_WRITE),
            Capability::InstanceListApps | Capability::AppRead(_) | Capability::AppKvRead(_) => {
                Some(scopes::APPS_READ)
            }
            Capability::AppManageSecrets(_) => Some(scopes::SECRETS_WRITE),
            Capability::InstanceReadEvents
            | Capability::InstanceManageProjections
            | Capability::InstanceReadNodes => Some(scopes::ADMIN),
            Capability::InstanceManageUsers => Some(scopes::USERS_MANAGE),
            Capability::OwnTokens => None,
            Capability::AppWriteScript(_)
            | Capability::AppWriteRoute(_)
            | Capability::AppInvoke(_)
            | Capability::AppKvWrite(_) => Some(scopes::SCRIPTS_WRITE),
            Capability::AppLogRead(_) => Some(scopes::LOGS_READ),
        }
    }

    fn need(&self) -> Need<'_> {
        match self {
            Capability::InstanceListApps | Capability::OwnTokens => Need::Anyone,
            Capability::InstanceCreateApp
            | Capability::InstanceReadEvents
            | Capability::InstanceManageUsers
            | Capability::InstanceManageProjections
            | Capability::InstanceReadNodes => Need::Instance(Role::Admin),
            Capability::AppRead(app) | Capability::AppLogRead(app) => {
                Need::App(app, AppRole::Viewer)
            }
            Capability::AppWriteScript(app)
            | Capability::AppWriteRoute(app)
            | Capability::AppInvoke(app)
            | Capability::AppManageSecrets(app)
            | Capability::AppKvRead(app)
            | Capability::AppKvWrite(app) => Need::App(app, AppRole::Developer),
            Capability::AppAdmin(app)
            | Capability::AppManageDomains(app)
            | Capability::AppManageMembers(app) => Need::App(app, AppRole::Admin),
        }
    }
}

/// The single authorization decision.
pub fn authorize(principal: &Principal, capability: &Capability) -> Result<(), ApiError> {
    let name = capability.name();
    match capability.need() {
        Need::Anyone => {}
        Need::Instance(role) => {
            if principal.role < role {
                return Err(ApiError::forbidden(format!(
                    "not allowed: {name} needs the instance role {} or above",
                    role.as_str()
                )));
            }
        }
        Need::App(app_id, needed) => match principal.app_role(app_id) {
            // Not a member: the app does not exist for this caller.
            None => return Err(ApiError::not_found("app")),
            Some(role) if role < needed => {
                return Err(ApiError::forbidden(format!(
                    "not allowed: {name} needs the app role {} or above",
                    needed.as_str()
                )));
            }
            Some(_) => {}
        },
    }
    if let Some(scope) = capability.scope()
        && !principal.has_scope(scope)
    {
        return Err(ApiError::forbidden(format!(
            "not allowed: {name} needs a token with the scope {scope}"
        ))
        .with("scope", scope));
    }
    Ok(())
}

/// Token scopes. Every scope also grants `apps:read` (finding the app one works on);
/// `admin` grants everything the user's role allows.
pub mod scopes {
    pub const ADMIN: &str = "admin";
    pub const APPS_READ: &str = "apps:read";
    pub const APPS_WRITE: &str = "apps:write";
    pub const SCRIPTS_WRITE: &str = "scripts:write";
    pub const LOGS_READ: &str = "logs:read";
    pub const SECRETS_WRITE: &str = "secrets:write";
    pub const USERS_MANAGE: &str = "users:manage";

    pub const ALL: [&str; 7] = [
        ADMIN,
        APPS_READ,
        APPS_WRITE,
        SCRIPTS_WRITE,
        LOGS_READ,
        SECRETS_WRITE,
        USERS_MANAGE,
    ];

    /// Does holding `held` grant `needed`?
    pub fn grants(held: &str, needed: &str) -> bool {
        held == ADMIN || held == needed || (needed == APPS_READ && ALL.contains(&held))
    }
}

/// The CSRF value bound to a session token: the dashboard reads it from the CSRF
/// cookie and sends it back in `x-csrf-token`; another site can do neither.
pub fn csrf_for(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"picloud-csrf:");
    hasher.update(session_token.as_bytes());
    hex::encode(hasher.finalize())
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Resolve a token value (bearer or session) to a principal, or 401.
pub fn principal_for(
    catalog: &Arc<Catalog>,
    token: &str,
    via: Via,
    request_id: String,
) -> Result<Principal, ApiError> {
    let invalid = || ApiError::unauthorized("invalid or expired credentials");
    let owner = catalog
        .token_owner(&token_hash(token))
        .ok_or_else(invalid)?;
    let user = catalog
        .user(&owner.user_id)
        .filter(|u| u.is_active())
        .ok_or_else(invalid)?;
    let record = user
        .tokens
        .get(&owner.token_id)
        .filter(|t| t.is_live(Utc::now()))
        .ok_or_else(invalid)?;
    // A session value only works as a cookie, an API token only as a bearer.
    let expected = match via {
        Via::Bearer => TokenKind::Api,
        Via::Session => TokenKind::Session,
    };
    if record.kind != expected {
        return Err(invalid());
    }
    Ok(Principal {
        user_id: user.id.clone(),
        username: user.username.clone(),
        token_id: record.id.clone(),
        role: user.role,
        scopes: record.scopes.clone(),
        request_id,
        via,
        actor: None,
        catalog: catalog.clone(),
    })
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let RequestId(request_id) = RequestId::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        if let Some(InProcess(principal)) = parts.extensions.get::<InProcess>() {
            return Ok(principal.clone());
        }
        let catalog = &state.runtime.catalog;
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
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
            return principal_for(catalog, token, Via::Bearer, request_id);
        }
        let Some(session) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ApiError::unauthorized(
                "missing Authorization: Bearer <token> (or a session cookie)",
            ));
        };
        let principal = principal_for(catalog, session, Via::Session, request_id)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), csrf_for(session).as_bytes()) {
                return Err(ApiError::forbidden(
                    "a write with a session cookie needs the x-csrf-token header",
                )
                .with("reason", "csrf"));
            }
        }
        Ok(principal)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_grants_apps_read_and_admin_grants_everything() {
        for scope in scopes::ALL {
            assert!(scopes::grants(scope, scopes::APPS_READ), "{scope}");
            assert!(scopes::grants(scopes::ADMIN, scope), "{scope}");
        }
        assert!(!scopes::grants(scopes::APPS_READ, scopes::APPS_WRITE));
        assert!(!scopes::grants(scopes::LOGS_READ, scopes::SCRIPTS_WRITE));
        assert!(!scopes::grants("unknown", scopes::APPS_READ));
    }

    #[test]
    fn cookies_are_found_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; picloud_session=abc".parse().expect("header"));
        headers.append(COOKIE, "picloud_csrf=def".parse().expect("header"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), Some("def"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn the_csrf_value_depends_on_the_session() {
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(constant_time_eq(
            csrf_for("a").as_bytes(),
            csrf_for("a").as_bytes()
        ));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
