//! Triggers of an app: webhooks (`POST /hooks/{id}`), cron schedules and event
//! subscriptions. Each one queues its script through the outbox.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use picloud_actors::{AppCommand, SecretText};
use picloud_events::domain::{Trigger, TriggerKind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::load_app;
use super::scripts::max_attempts;
use crate::auth::{Capability, Principal, authorize};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::ApiState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    script_id: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCron {
    script_id: String,
    schedule: String,
    timezone: String,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    script_id: String,
    event: String,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTrigger {
    enabled: bool,
}

/// A trigger as the API shows it (a webhook's secret never leaves the node).
pub fn view(app_id: &str, t: &Trigger) -> Value {
    let mut v = json!({
        "id": t.id,
        "app_id": app_id,
        "kind": t.kind.name(),
        "script_id": t.script_id,
        "enabled": t.enabled,
        "max_attempts": t.max_attempts,
        "created_at": t.created_at,
    });
    match &t.kind {
        TriggerKind::Webhook { .. } => {
            v["url"] = json!(format!("/hooks/{}", t.id));
            v["signed"] = json!(t.kind.signed());
        }
        TriggerKind::Cron { schedule, timezone } => {
            v["schedule"] = json!(schedule);
            v["timezone"] = json!(timezone);
            let next = picloud_cron::Schedule::parse(schedule, timezone)
                .ok()
                .and_then(|s| {
                    s.next_after(Utc::now())
                        .map(|at| at.with_timezone(&s.timezone()).to_rfc3339())
                });
            v["next_fire_at"] = json!(if t.enabled { next } else { None });
        }
        TriggerKind::Event { event } => {
            v["event"] = json!(event);
        }
    }
    v
}

async fn create(
    state: &ApiState,
    principal: &Principal,
    key: &str,
    script_id: String,
    kind: TriggerKind,
    attempts: Option<u32>,
    secret: Option<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = load_app(state, key)?;
    authorize(principal, &Capability::AppWriteRoute(entry.app.id.clone()))?;
    let max_attempts = max_attempts(attempts)?;
    let trigger_id = uuid::Uuid::now_v7().to_string();
    let app = state
        .command_app(
            principal,
            &entry.app.id,
            AppCommand::CreateTrigger {
                trigger_id: trigger_id.clone(),
                script_id,
                kind,
                max_attempts,
                secret: secret.map(SecretText),
            },
        )
        .await?;
    let trigger = app
        .triggers
        .get(&trigger_id)
        .ok_or_else(|| ApiError::internal("create trigger", "trigger missing after append"))?;
    Ok((StatusCode::CREATED, Json(view(&app.id, trigger))))
}

pub async fn create_webhook(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = TriggerKind::Webhook {
        secret: None,
        sealed_secret: None,
    };
    create(
        &state,
        &principal,
        &key,
        body.script_id,
        kind,
        body.max_attempts,
        body.secret,
    )
    .await
}

pub async fn create_cron(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<CreateCron>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = TriggerKind::Cron {
        schedule: body.schedule,
        timezone: body.timezone,
    };
    create(
        &state,
        &principal,
        &key,
        body.script_id,
        kind,
        body.max_attempts,
        None,
    )
    .await
}

pub async fn create_event(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<CreateEvent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = TriggerKind::Event { event: body.event };
    create(
        &state,
        &principal,
        &key,
        body.script_id,
        kind,
        body.max_attempts,
        None,
    )
    .await
}

/// The app's triggers, oldest first.
pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppRead(entry.app.id.clone()))?;
    let mut triggers: Vec<&Trigger> = entry.app.triggers.values().collect();
    triggers.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let triggers: Vec<Value> = triggers
        .into_iter()
        .map(|t| view(&entry.app.id, t))
        .collect();
    Ok(Json(json!({ "triggers": triggers })))
}

pub async fn update(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateTrigger>,
) -> ApiResult<Json<Value>> {
    let entry = state
        .runtime
        .catalog
        .app_of_trigger(&id)
        .ok_or_else(|| ApiError::not_found("trigger"))?;
    authorize(&principal, &Capability::AppWriteRoute(entry.app.id.clone()))?;
    let app = state
        .command_app(
            &principal,
            &entry.app.id,
            AppCommand::SetTriggerEnabled {
                trigger_id: id.clone(),
                enabled: body.enabled,
            },
        )
        .await?;
    let trigger = app
        .triggers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("trigger"))?;
    Ok(Json(view(&app.id, trigger)))
}

pub async fn delete(
    State(state): State<ApiState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = state
        .runtime
        .catalog
        .app_of_trigger(&id)
        .ok_or_else(|| ApiError::not_found("trigger"))?;
    authorize(&principal, &Capability::AppWriteRoute(entry.app.id.clone()))?;
    state
        .command(
            &principal,
            &entry.app.id,
            AppCommand::DeleteTrigger { trigger_id: id },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
