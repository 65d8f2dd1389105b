//! Scripts: create, edit (every save a new version), versions, rollback, delete,
//! and the synchronous admin invoke.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use picloud_actors::{AppCommand, AppEntry};
use picloud_events::domain::{InvocationRequest, ScriptKind};
use picloud_sandbox::{OverrideError, Overrides, RunInput, parse_overrides};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use super::edge::outcome_response;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, RequestId};
use crate::state::ApiState;
use crate::views;

/// The app that owns a script; 404 when no app does.
fn load_script_app(state: &ApiState, script_id: &str) -> ApiResult<Arc<AppEntry>> {
    state
        .runtime
        .catalog
        .app_of_script(script_id)
        .ok_or_else(|| ApiError::not_found("script"))
}

fn check_source(state: &ApiState, source: &str) -> ApiResult<()> {
    state.runtime.sandbox.compile(source).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "compile_error",
            format!("script does not compile: {}", e.message),
        )
        .with("field", "source")
        .with("line", e.line)
        .with("position", e.position)
    })
}

fn check_sandbox(state: &ApiState, value: &Value) -> ApiResult<Overrides> {
    parse_overrides(value, &state.runtime.limit_settings().ceilings).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sandbox",
            e.to_string(),
        );
        match e {
            OverrideError::UnknownField { field } | OverrideError::InvalidValue { field } => {
                err = err.with("field", format!("sandbox.{field}"));
            }
            OverrideError::AboveCeiling {
                field,
                requested,
                ceiling,
            } => {
                err = err
                    .with("field", format!("sandbox.{field}"))
                    .with("requested", requested)
                    .with("ceiling", ceiling);
            }
            OverrideError::NotAnObject => err = err.with("field", "sandbox"),
            OverrideError::InvalidRecord => err = err.with("field", "sandbox.record"),
        }
        err
    })
}

/// A permissions manifest as given: `null` is no manifest (the app's defaults).
/// Its contents are checked with the command (422 naming the field).
fn check_permissions(value: Option<Value>) -> ApiResult<Option<Value>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(ApiError::invalid(
            "permissions",
            "permissions must be a JSON object",
        )),
    }
}

/// A field that may be given as `null` (to clear it) as opposed to left out:
/// present → `Some(value)`, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScript {
    name: String,
    source: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    sandbox: Option<Value>,
    #[serde(default)]
    permissions: Option<Value>,
}

fn parse_kind(kind: Option<&str>) -> ApiResult<ScriptKind> {
    match kind {
        None | Some("endpoint") => Ok(ScriptKind::Endpoint),
        Some("module") => Ok(ScriptKind::Module),
        Some(other) => Err(ApiError::invalid(
            "kind",
            format!("kind must be \"endpoint\" or \"module\", not {other:?}"),
        )),
    }
}

pub async fn create(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<CreateScript>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = load_app(&state, &key)?;
    authorize(
        &principal,
        &Capability::AppWriteScript(entry.app.id.clone()),
    )?;
    let kind = parse_kind(body.kind.as_deref())?;
    check_source(&state, &body.source)?;
    let sandbox = match &body.sandbox {
        Some(v) if !v.is_null() => check_sandbox(&state, v)?,
        _ => Overrides::default(),
    };
    let permissions = check_permissions(body.permissions)?;
    let script_id = uuid::Uuid::now_v7().to_string();
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::CreateScript {
                script_id: script_id.clone(),
                name: body.name,
                kind,
                source: body.source,
                sandbox,
                permissions,
            },
        )
        .await?;
    let script = app
        .scripts
        .get(&script_id)
        .ok_or_else(|| ApiError::internal("create script", "script missing after append"))?;
    Ok((
        StatusCode::CREATED,
        Json(views::script(&app.id, script, true)),
    ))
}

pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let mut scripts: Vec<_> = entry.app.scripts.values().collect();
    scripts.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let scripts: Vec<Value> = scripts
        .into_iter()
        .map(|s| views::script(&entry.app.id, s, false))
        .collect();
    Ok(Json(json!({ "scripts": scripts })))
}

pub async fn get(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_script_app(&state, &id)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let script = entry
        .app
        .scripts
        .get(&id)
        .ok_or_else(|| ApiError::not_found("script"))?;
    Ok(Json(views::script(&entry.app.id, script, true)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateScript {
    #[serde(default)]
    source: Option<String>,
    /// `null` resets every override.
    #[serde(default, deserialize_with = "present")]
    sandbox: Option<Value>,
    /// `null` removes the manifest.
    #[serde(default, deserialize_with = "present")]
    permissions: Option<Value>,
}

pub async fn update(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateScript>,
) -> ApiResult<Json<Value>> {
    let entry = load_script_app(&state, &id)?;
    authorize(
        &principal,
        &Capability::AppWriteScript(entry.app.id.clone()),
    )?;
    if body.source.is_none() && body.sandbox.is_none() && body.permissions.is_none() {
        return Err(ApiError::invalid(
            "source",
            "nothing to change: give source, sandbox or permissions",
        ));
    }
    if let Some(source) = &body.source {
        check_source(&state, source)?;
    }
    let sandbox = match &body.sandbox {
        None => None,
        Some(Value::Null) => Some(Overrides::default()),
        Some(v) => Some(check_sandbox(&state, v)?),
    };
    let permissions = match body.permissions {
        None => None,
        given => Some(check_permissions(given)?),
    };
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::UpdateScript {
                script_id: id.clone(),
                source: body.source,
                sandbox,
                permissions,
            },
        )
        .await?;
    let script = app
        .scripts
        .get(&id)
        .ok_or_else(|| ApiError::not_found("script"))?;
    Ok(Json(views::script(&app.id, script, true)))
}

pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = load_script_app(&state, &id)?;
    authorize(
        &principal,
        &Capability::AppWriteScript(entry.app.id.clone()),
    )?;
    state
        .command(
            &principal,
            &entry.app.id,
            AppCommand::DeleteScript {
                script_id: id.clone(),
            },
        )
        .await?;
    state.runtime.sandbox.evict(&id);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn versions(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_script_app(&state, &id)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let script = entry
        .app
        .scripts
        .get(&id)
        .ok_or_else(|| ApiError::not_found("script"))?;
    Ok(Json(views::versions(script)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    version: u64,
}

pub async fn rollback(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rollback>,
) -> ApiResult<Json<Value>> {
    let entry = load_script_app(&state, &id)?;
    authorize(
        &principal,
        &Capability::AppWriteScript(entry.app.id.clone()),
    )?;
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::Rollback {
                script_id: id.clone(),
                version: body.version,
            },
        )
        .await?;
    let script = app
        .scripts
        .get(&id)
        .ok_or_else(|| ApiError::not_found("script"))?;
    Ok(Json(views::script(&app.id, script, true)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

/// Attempts an asynchronous invocation may make when none are asked for.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// The most attempts anyone may ask for.
pub const MAX_ATTEMPTS_CEILING: u32 = 25;

/// `max_attempts` of a request body: 1..=25, default 5.
pub fn max_attempts(requested: Option<u32>) -> ApiResult<u32> {
    match requested {
        None => Ok(DEFAULT_MAX_ATTEMPTS),
        Some(n) if (1..=MAX_ATTEMPTS_CEILING).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "max_attempts",
            format!("max_attempts must be between 1 and {MAX_ATTEMPTS_CEILING}"),
        )),
    }
}

#[derive(Deserialize)]
pub struct InvokeQuery {
    #[serde(default, rename = "async")]
    is_async: Option<bool>,
}

/// Run the script's live version now and answer with its result, exactly as the
/// invocation edge would (`ctx.event.kind` is `"manual"`, with the payload).
pub async fn invoke(
    State(state): State<ApiState>,
    principal: Principal,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    Query(q): Query<InvokeQuery>,
    JsonBody(body): JsonBody<InvokeBody>,
) -> ApiResult<Response> {
    let entry = load_script_app(&state, &id)?;
    authorize(&principal, &Capability::AppInvoke(entry.app.id.clone()))?;
    let mut metadata = principal.metadata(&state.runtime.config.node_id);
    metadata.request_id = Some(request_id.clone());
    if q.is_async == Some(true) {
        let max_attempts = max_attempts(body.max_attempts)?;
        let live = entry
            .app
            .scripts
            .get(&id)
            .and_then(|s| s.live().map(|_| s.kind));
        if live != Some(ScriptKind::Endpoint) {
            return Err(ApiError::not_found("script"));
        }
        let invocation_id = uuid::Uuid::now_v7().to_string();
        let request = InvocationRequest {
            id: invocation_id.clone(),
            app_id: entry.app.id.clone(),
            script_id: id.clone(),
            trigger: "async".into(),
            trigger_id: None,
            event: json!({ "kind": "async", "payload": body.payload.unwrap_or(Value::Null) }),
            request: None,
            max_attempts,
            idempotency_key: format!("async:{invocation_id}"),
            requested_at: chrono::Utc::now(),
            depth: 0,
            lease: None,
        };
        state
            .runtime
            .enqueue(request, &metadata, Vec::new())
            .await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "invocation_id": invocation_id })),
        )
            .into_response());
    }
    let input = RunInput {
        app_id: entry.app.id.clone(),
        app_slug: entry.app.slug.clone(),
        invocation_id: String::new(),
        request: None,
        params: Default::default(),
        event: json!({ "kind": "manual", "payload": body.payload.unwrap_or(Value::Null) }),
    };
    let invocation = state
        .runtime
        .invoke(&entry, &id, input, "manual", metadata)
        .await
        .map_err(|_| ApiError::overloaded())?
        .ok_or_else(|| ApiError::not_found("script"))?;
    Ok(outcome_response(&invocation))
}
