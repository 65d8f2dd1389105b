//! Apps, their slugs and their custom domains.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use picloud_actors::validate::{normalize_domain, validate_slug};
use picloud_actors::{AppCommand, AppEntry};
use picloud_sandbox::RecordSetting;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;
use crate::views;

/// Load an app by id or slug; 404 when it does not exist.
pub fn load_app(state: &ApiState, key: &str) -> ApiResult<Arc<AppEntry>> {
    state
        .runtime
        .catalog
        .find_app(key)
        .ok_or_else(|| ApiError::not_found("app"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    slug: String,
    name: Option<String>,
}

pub async fn create(
    State(state): State<ApiState>,
    principal: Principal,
    JsonBody(body): JsonBody<CreateApp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    authorize(&principal, &Capability::InstanceCreateApp)?;
    let app_id = uuid::Uuid::now_v7().to_string();
    let app = state
        .command_app(
            &principal,
            &app_id,
            AppCommand::Create {
                slug: body.slug,
                name: body.name,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::app(&app))))
}

pub async fn list(State(state): State<ApiState>, principal: Principal) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceListApps)?;
    let apps: Vec<Value> = state
        .runtime
        .catalog
        .apps()
        .iter()
        // Members see the apps they belong to.
        .filter(|e| principal.allows(&Capability::AppRead(e.app.id.clone())))
        .map(|e| views::app(&e.app))
        .collect();
    Ok(Json(json!({ "apps": apps })))
}

#[derive(Deserialize)]
pub struct SlugQuery {
    slug: Option<String>,
}

pub async fn slug_check(
    State(state): State<ApiState>,
    principal: Principal,
    Query(q): Query<SlugQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceCreateApp)?;
    let slug = q
        .slug
        .ok_or_else(|| ApiError::invalid("slug", "the slug query parameter is required"))?;
    if let Err(e) = validate_slug(&slug) {
        return Ok(Json(json!({ "available": false, "reason": e.reason })));
    }
    if state.runtime.catalog.app_by_slug(&slug).is_some() {
        return Ok(Json(json!({ "available": false, "reason": "taken" })));
    }
    Ok(Json(json!({ "available": true })))
}

pub async fn get(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    Ok(Json(views::app(&entry.app)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    name: Option<String>,
    /// `"full"` or `"off"`: the app's default run recording.
    record: Option<String>,
}

pub async fn update(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<UpdateApp>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppAdmin(entry.app.id.clone()))?;
    // Checked before anything changes: a bad `record` leaves the name alone too.
    let record = match body.record.as_deref() {
        None => None,
        Some(text) => Some(
            RecordSetting::parse(text)
                .ok_or_else(|| ApiError::invalid("record", "record must be \"full\" or \"off\""))?,
        ),
    };
    let mut app = entry.app.clone();
    if let Some(name) = body.name {
        app = state
            .command_app(&principal, &entry.app.id, AppCommand::Rename { name })
            .await?;
    }
    if let Some(record) = record {
        app = state
            .command_app(&principal, &entry.app.id, AppCommand::SetRecord { record })
            .await?;
    }
    Ok(Json(views::app(&app)))
}

pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppAdmin(entry.app.id.clone()))?;
    for script_id in entry.app.scripts.keys() {
        state.runtime.sandbox.evict(script_id);
    }
    state
        .command(&principal, &entry.app.id, AppCommand::Delete)
        .await?;
    // The app's kv data goes with it (it lives beside the log, not in it).
    if let Err(e) = state.runtime.store.kv_clear(&entry.app.id).await {
        tracing::warn!(app = %entry.app.id, error = %e, "could not remove a deleted app's kv data");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    domain: String,
}

pub async fn add_domain(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<AddDomain>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageDomains(entry.app.id.clone()),
    )?;
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::AddDomain {
                domain: body.domain,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::app(&app))))
}

pub async fn remove_domain(
    State(state): State<ApiState>,
    principal: Principal,
    Path((key, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppManageDomains(entry.app.id.clone()),
    )?;
    state
        .command(
            &principal,
            &entry.app.id,
            AppCommand::RemoveDomain { domain },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct DomainQuery {
    domain: Option<String>,
}

/// Caddy's on-demand TLS `ask`: 200 when the domain belongs to an app, else 404.
/// Unauthenticated by design (Caddy calls it without a token); it reveals only
/// whether a name is served here, which the TLS handshake would reveal anyway.
pub async fn domain_check(
    State(state): State<ApiState>,
    Query(q): Query<DomainQuery>,
) -> ApiResult<Json<Value>> {
    let domain = q
        .domain
        .ok_or_else(|| ApiError::invalid("domain", "the domain query parameter is required"))?;
    let domain =
        normalize_domain(&domain).map_err(|e| ApiError::invalid("domain", e.to_string()))?;
    match state.runtime.catalog.app_by_domain(&domain) {
        Some(_) => Ok(Json(json!({ "domain": domain }))),
        None => Err(ApiError::not_found("domain")),
    }
}
