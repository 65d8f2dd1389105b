//! An app's key-value data as admins see it: read, write and delete one key,
//! list keys by prefix. The same table and caps as the scripts' `kv::*`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use picloud_actors::services::{
    MAX_KEYS_PER_APP, MAX_VALUE_BYTES, check_key, kv_message, value_text,
};
use picloud_events::{KvEntry, KvError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use super::secrets::value_too_large;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutValue {
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

fn key_ok(key: &str) -> ApiResult<()> {
    check_key(key).map_err(|m| ApiError::invalid("key", m))
}

fn view(entry: &KvEntry) -> Value {
    let value: Value = serde_json::from_str(&entry.value).unwrap_or(Value::Null);
    json!({"key": entry.key, "value": value, "updated_at": entry.updated_at})
}

/// `GET /apps/{app}/kv/{key}` → `{"key","value","updated_at"}`.
pub async fn get(
    State(state): State<ApiState>,
    principal: Principal,
    Path((app, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &app)?;
    authorize(&principal, &Capability::AppKvRead(entry.app.id.clone()))?;
    key_ok(&key)?;
    let found = state.runtime.store.kv_get(&entry.app.id, &key).await?;
    found
        .map(|e| Json(view(&e)))
        .ok_or_else(|| ApiError::not_found("key"))
}

/// `PUT /apps/{app}/kv/{key}` `{"value": <any JSON>}` → 204.
pub async fn put(
    State(state): State<ApiState>,
    principal: Principal,
    Path((app, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<PutValue>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &app)?;
    authorize(&principal, &Capability::AppKvWrite(entry.app.id.clone()))?;
    key_ok(&key)?;
    let text = value_text(&body.value).map_err(|_| value_too_large(MAX_VALUE_BYTES))?;
    match state
        .runtime
        .store
        .kv_put(&entry.app.id, &key, &text, MAX_KEYS_PER_APP)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(KvError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_keys",
            kv_message(&e),
        )
        .with("limit", MAX_KEYS_PER_APP)),
    }
}

/// `DELETE /apps/{app}/kv/{key}` → 204, or 404 if there was no such key.
pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path((app, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &app)?;
    authorize(&principal, &Capability::AppKvWrite(entry.app.id.clone()))?;
    key_ok(&key)?;
    if state.runtime.store.kv_delete(&entry.app.id, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("key"))
    }
}

/// `GET /apps/{app}/kv?prefix=&after=&limit=` → `{"entries": [...], "next"}`;
/// `next` is the `after` of the following page (absent on the last).
pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(app): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &app)?;
    authorize(&principal, &Capability::AppKvRead(entry.app.id.clone()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            format!("limit is 1 to {MAX_LIMIT}"),
        ));
    }
    let prefix = query.prefix.unwrap_or_default();
    let entries = state
        .runtime
        .store
        .kv_list(&entry.app.id, &prefix, query.after.as_deref(), limit)
        .await?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.key.clone()))
        .flatten();
    let entries: Vec<Value> = entries.iter().map(view).collect();
    Ok(Json(json!({ "entries": entries, "next": next })))
}
