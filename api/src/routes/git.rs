//! Git sync: an app bound to a folder of a git repository at a branch
//! (`POST/GET/DELETE /api/v1/admin/apps/{app}/git`), redeployed when the git
//! host's push webhook arrives (`POST /hooks/git/{app}`; the deploy itself is in
//! `crate::gitsync`).
//!
//! Repositories are `https://` or `http://` URLs (fetched under the node's
//! outbound guard) or on the server's file system (`file://` URLs or absolute
//! paths); ssh and anything else is refused with 422 naming `url`, and so is a
//! URL with credentials in it: `credentials_secret` names the app secret that
//! holds them (a token, or `user:password`), never shown by any API.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use picloud_actors::AppCommand;
use picloud_actors::SecretText;
use picloud_actors::keys::git_purpose;
use picloud_events::domain::{App, GitBinding};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use super::hooks::verify_git_push;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, RequestId, read_body};
use crate::gitsync::Push;
use crate::state::ApiState;

/// The largest push body accepted, whatever the node's body limit (above it:
/// 413 and nothing deploys). A deploy needs only the body's `ref` and `after`;
/// GitHub's payload for a push of many commits can be larger, and is refused.
pub const PUSH_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindGit {
    url: String,
    branch: Option<String>,
    path: Option<String>,
    secret: Option<String>,
    credentials_secret: Option<String>,
}

/// The binding as the API shows it; the webhook secret is never shown (`signed`
/// says whether there is one).
pub fn view(app: &App, git: &GitBinding) -> Value {
    json!({
        "url": git.url,
        "branch": git.branch,
        "path": git.path,
        "signed": git.sealed_secret.is_some(),
        "credentials_secret": git.credentials_secret,
        "bound_at": git.bound_at,
        "live_commit": git.live_commit,
        "deployed_at": git.deployed_at,
        "last_error": git.last_error.as_ref().map(|e| json!({
            "commit": e.commit,
            "error": e.error,
            "at": e.at,
        })),
        "webhook_path": format!("/hooks/git/{}", app.slug),
    })
}

pub async fn bind(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<BindGit>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppAdmin(entry.app.id.clone()))?;
    let command = AppCommand::BindGit {
        url: body.url,
        branch: body.branch.unwrap_or_else(|| "main".into()),
        path: body.path.unwrap_or_else(|| ".".into()),
        secret: body.secret.map(SecretText),
        credentials_secret: body.credentials_secret,
    };
    let app = state
        .command_app(&principal, &entry.app.id, command)
        .await?;
    let git = app
        .git
        .as_ref()
        .ok_or_else(|| ApiError::not_found("git binding"))?;
    Ok((StatusCode::CREATED, Json(view(&app, git))))
}

pub async fn get(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let git = entry
        .app
        .git
        .as_ref()
        .ok_or_else(|| ApiError::not_found("git binding"))?;
    Ok(Json(view(&entry.app, git)))
}

pub async fn unbind(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppAdmin(entry.app.id.clone()))?;
    state
        .command_app(&principal, &entry.app.id, AppCommand::UnbindGit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /hooks/git/{app}` (slug or id): a push from the git host.
pub async fn push(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    req: Request,
) -> Response {
    super::hooks::answer(&state, accept_push(&state, &key, req).await)
}

async fn accept_push(state: &ApiState, key: &str, req: Request) -> Result<Response, ApiError> {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    state.runtime.sync_with_cluster().await;
    let entry = state
        .runtime
        .catalog
        .find_app(key)
        .ok_or_else(|| ApiError::not_found("git binding"))?;
    let git = entry
        .app
        .git
        .clone()
        .ok_or_else(|| ApiError::not_found("git binding"))?;
    let headers = req.headers().clone();
    let body = read_body(req.into_body(), PUSH_BODY_LIMIT).await?;
    if let Some(sealed) = &git.sealed_secret {
        let secret = state
            .runtime
            .config
            .master_key
            .open_text(&git_purpose(&entry.app.id), sealed)
            .map_err(|_| {
                ApiError::internal("git webhook secret", "the sealed secret does not open")
            })?;
        verify_git_push(&secret, &headers, &body)
            .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", why))?;
    }
    // GitHub and Gitea name the pushed ref in `ref`; a body without one (a ping,
    // a manual call) deploys the branch tip.
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(pushed) = payload.get("ref").and_then(Value::as_str)
        && pushed != format!("refs/heads/{}", git.branch)
    {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "skipped": "other branch", "ref": pushed })),
        )
            .into_response());
    }
    // A zero id (a branch deleted) names no commit.
    let pushed = payload
        .get("after")
        .and_then(Value::as_str)
        .filter(|after| !after.is_empty() && after.bytes().any(|b| b != b'0'));
    let outcome = crate::gitsync::push(
        state,
        &entry.app.id,
        &entry.app.slug,
        pushed,
        git.bound_at,
        &request_id,
    )
    .await?;
    let answer = match outcome {
        Push::Start { .. } => json!({ "deploying": true, "branch": git.branch }),
        Push::Queued => json!({ "deploying": true, "queued": true, "branch": git.branch }),
        Push::AlreadyDeploying => {
            json!({ "deploying": false, "already": "deploying", "commit": pushed })
        }
        Push::UpToDate => json!({ "deploying": false, "already": "live", "commit": pushed }),
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
