//! Dashboard sessions: `POST /api/v1/auth/login`, `POST /api/v1/auth/logout`, and
//! `GET /api/v1/admin/me` (who the caller is).
//!
//! A session is a token of kind `session` (hash in the log like any token, so every
//! node of a cluster knows it), carried in an HttpOnly, SameSite=Strict cookie that
//! lives 12 hours. A second, readable cookie holds the CSRF value derived from the
//! session; cookie-authenticated writes must echo it in `x-csrf-token`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use picloud_actors::UserCommand;
use picloud_actors::bootstrap::{new_token, token_hash};
use picloud_events::Metadata;
use picloud_events::domain::TokenKind;
use serde::Deserialize;

use crate::auth::{CSRF_COOKIE, SESSION_COOKIE, Via, cookie, csrf_for, principal_for};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, RequestId};
use crate::password;
use crate::state::ApiState;

/// How long a session lasts.
const SESSION_HOURS: i64 = 12;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// `Secure` when the client reached us over HTTPS (Caddy sets `x-forwarded-proto`).
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https { "; Secure" } else { "" }
}

fn set_cookies(response: &mut Response, session: &str, csrf: &str, max_age: i64, secure: &str) {
    for cookie in [
        format!(
            "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}"),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
}

pub async fn login(
    State(state): State<ApiState>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> ApiResult<Response> {
    let refused = || ApiError::unauthorized("invalid username or password");
    if body.password.len() > 1024 {
        return Err(refused());
    }
    let user = state
        .runtime
        .catalog
        .user_by_name(&body.username)
        .filter(|u| u.is_active());
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    // Verified even for an unknown user, so timing does not tell which it was.
    if !password::verify(body.password, phc).await {
        return Err(refused());
    }
    let user = user.ok_or_else(refused)?;
    let session = new_token();
    let token_id = uuid::Uuid::now_v7().to_string();
    let metadata = Metadata {
        actor: Some(format!("user:{}", user.id)),
        token: Some(format!("token:{token_id}")),
        request_id: Some(request_id.clone()),
        correlation_id: Some(request_id),
        node: Some(state.runtime.config.node_id.clone()),
        ..Metadata::default()
    };
    state
        .runtime
        .user_command(
            &user.id,
            UserCommand::IssueToken {
                token_id,
                name: "session".into(),
                hash: token_hash(&session),
                scopes: vec!["admin".into()],
                expires_at: Some(Utc::now() + Duration::hours(SESSION_HOURS)),
                kind: TokenKind::Session,
            },
            metadata,
        )
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookies(
        &mut response,
        &session,
        &csrf_for(&session),
        SESSION_HOURS * 3600,
        secure(&headers),
    );
    Ok(response)
}

/// Ends the session named by the cookie (if it is still valid) and clears both
/// cookies. Always 204: logging out twice is not an error.
pub async fn logout(
    State(state): State<ApiState>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(session) = cookie(&headers, SESSION_COOKIE)
        && let Ok(principal) =
            principal_for(&state.runtime.catalog, session, Via::Session, request_id)
    {
        let metadata = principal.metadata(&state.runtime.config.node_id);
        state
            .runtime
            .user_command(
                &principal.user_id,
                UserCommand::RevokeToken {
                    token_id: principal.token_id.clone(),
                },
                metadata,
            )
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookies(&mut response, "", "", 0, secure(&headers));
    Ok(response)
}

/// `GET /api/v1/admin/me`: who the caller is (any valid token or session). The
/// dashboard asks it on load to learn whether it is logged in and what to show.
pub async fn me(principal: crate::auth::Principal) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "id": principal.user_id,
        "username": principal.username,
        "role": principal.role.as_str(),
        "scopes": principal.scopes,
        "via": match principal.via {
            Via::Bearer => "token",
            Via::Session => "session",
        },
    }))
}
