//! An app's secrets: set, delete, and list names with times. Values go in and
//! never come out: they are sealed under the master key before they reach the
//! log, and scripts read them with `secrets::get(name)`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use picloud_actors::app::decide::MAX_SECRET_BYTES;
use picloud_actors::{AppCommand, SecretText};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    value: String,
}

/// `PUT /apps/{app}/secrets/{name}` `{"value"}` → 204.
pub async fn set(
    State(state): State<ApiState>,
    principal: Principal,
    Path((key, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetSecret>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageSecrets(entry.app.id.clone()),
    )?;
    if body.value.len() > MAX_SECRET_BYTES {
        return Err(value_too_large(MAX_SECRET_BYTES));
    }
    state
        .command(
            &principal,
            &entry.app.id,
            AppCommand::SetSecret {
                name,
                value: SecretText(body.value),
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /apps/{app}/secrets/{name}` → 204.
pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path((key, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageSecrets(entry.app.id.clone()),
    )?;
    state
        .command(&principal, &entry.app.id, AppCommand::DeleteSecret { name })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /apps/{app}/secrets` → `{"secrets": [{"name","created_at","updated_at"}]}`.
pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let secrets: Vec<Value> = entry
        .app
        .secrets
        .iter()
        .map(|(name, s)| {
            json!({"name": name, "created_at": s.created_at, "updated_at": s.updated_at})
        })
        .collect();
    Ok(Json(json!({ "secrets": secrets })))
}

/// 413 for a value past its cap (the request itself was within the body cap).
pub fn value_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "value_too_large",
        format!("the value is larger than {limit} bytes"),
    )
    .with("limit", limit)
}
