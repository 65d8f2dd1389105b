//! Reading an app's state from the admin API and applying a plan through it.
//!
//! Both go through [`AdminApi`], one JSON call at a time, so the same code runs
//! from the CLI (over HTTP) and, later, inside a node for git sync (over the
//! router in process).

use std::collections::HashMap;
use std::future::Future;

use serde_json::{Value, json};

use super::plan::{Action, Plan, ServerRoute, ServerScript, ServerState, ServerTrigger};
use super::project::{DesiredTrigger, TriggerSpec};

/// A failed admin API call: the status when the server answered, and its message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiCallError {
    pub status: Option<u16>,
    pub message: String,
}

/// One JSON call to the admin API: `path` relative to `/api/v1/admin`; a 2xx
/// answer's JSON body (`null` when empty), else the error.
pub trait AdminApi {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> impl Future<Output = Result<Value, ApiCallError>> + Send;
}

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_owned()
}

fn malformed(what: &str) -> ApiCallError {
    ApiCallError {
        status: None,
        message: format!("the server's answer has no {what}"),
    }
}

/// The app `slug` as the server has it; `None` when there is no such app.
pub async fn fetch_state(
    api: &impl AdminApi,
    slug: &str,
) -> Result<Option<ServerState>, ApiCallError> {
    let app = match api.call("GET", &format!("/apps/{slug}"), None).await {
        Ok(app) => app,
        Err(e) if e.status == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut state = ServerState {
        app_id: field(&app, "id"),
        name: field(&app, "name"),
        domains: app["domains"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        ..ServerState::default()
    };
    let scripts = api
        .call("GET", &format!("/apps/{slug}/scripts"), None)
        .await?;
    for s in scripts["scripts"]
        .as_array()
        .ok_or_else(|| malformed("scripts"))?
    {
        // The list leaves the source out; each script's page has it.
        let full = api
            .call("GET", &format!("/scripts/{}", field(s, "id")), None)
            .await?;
        state.scripts.push(ServerScript {
            id: field(&full, "id"),
            name: field(&full, "name"),
            kind: field(&full, "kind"),
            source: field(&full, "source"),
            sandbox: full["sandbox"].clone(),
            permissions: Some(full["permissions"].clone()).filter(|p| !p.is_null()),
        });
    }
    let routes = api
        .call("GET", &format!("/apps/{slug}/routes"), None)
        .await?;
    for r in routes["routes"]
        .as_array()
        .ok_or_else(|| malformed("routes"))?
    {
        state.routes.push(ServerRoute {
            id: field(r, "id"),
            method: field(r, "method"),
            path: field(r, "path"),
            script_id: field(r, "script_id"),
        });
    }
    let triggers = api
        .call("GET", &format!("/apps/{slug}/triggers"), None)
        .await?;
    for t in triggers["triggers"]
        .as_array()
        .ok_or_else(|| malformed("triggers"))?
    {
        let spec = match t["kind"].as_str() {
            Some("cron") => TriggerSpec::Cron {
                schedule: field(t, "schedule"),
                timezone: field(t, "timezone"),
            },
            Some("webhook") => TriggerSpec::Webhook {
                signed: t["signed"].as_bool().unwrap_or(false),
            },
            Some("event") => TriggerSpec::Event {
                event: field(t, "event"),
            },
            _ => continue,
        };
        state.triggers.push(ServerTrigger {
            id: field(t, "id"),
            script_id: field(t, "script_id"),
            spec,
            max_attempts: t["max_attempts"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(super::project::DEFAULT_MAX_ATTEMPTS),
            enabled: t["enabled"].as_bool().unwrap_or(true),
        });
    }
    Ok(Some(state))
}

/// Applying stopped at a change: the lines of the changes already applied, and why.
#[derive(Debug, thiserror::Error)]
#[error("{line}: {error}")]
pub struct ApplyError {
    pub applied: Vec<String>,
    /// The change that failed.
    pub line: String,
    pub error: ApiCallError,
}

/// Apply `plan` in order; `current` is the state it was planned against (script
/// ids by name). Returns the lines of the changes applied.
pub async fn apply(
    api: &impl AdminApi,
    plan: &Plan,
    current: Option<&ServerState>,
) -> Result<Vec<String>, ApplyError> {
    let mut ids: HashMap<String, String> = current
        .map(|c| {
            c.scripts
                .iter()
                .map(|s| (s.name.clone(), s.id.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut applied = Vec::new();
    for change in &plan.changes {
        if let Err(error) = apply_one(api, &plan.app, &change.action, &mut ids).await {
            return Err(ApplyError {
                applied,
                line: change.line(),
                error,
            });
        }
        applied.push(change.line());
    }
    Ok(applied)
}

async fn apply_one(
    api: &impl AdminApi,
    app: &str,
    action: &Action,
    ids: &mut HashMap<String, String>,
) -> Result<(), ApiCallError> {
    let script_id = |ids: &HashMap<String, String>, name: &str| {
        ids.get(name).cloned().ok_or_else(|| ApiCallError {
            status: None,
            message: format!("no script \"{name}\" on the server"),
        })
    };
    match action {
        Action::CreateApp { name } => {
            let mut body = json!({ "slug": app });
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            api.call("POST", "/apps", Some(body)).await?;
        }
        Action::RenameApp { name } => {
            api.call(
                "PATCH",
                &format!("/apps/{app}"),
                Some(json!({ "name": name })),
            )
            .await?;
        }
        Action::AddDomain { domain } => {
            api.call(
                "POST",
                &format!("/apps/{app}/domains"),
                Some(json!({ "domain": domain })),
            )
            .await?;
        }
        Action::RemoveDomain { domain } => {
            api.call("DELETE", &format!("/apps/{app}/domains/{domain}"), None)
                .await?;
        }
        Action::CreateScript {
            name,
            kind,
            source,
            sandbox,
            permissions,
        } => {
            let mut body =
                json!({ "name": name, "kind": kind, "source": source, "sandbox": sandbox });
            if let Some(p) = permissions {
                body["permissions"] = p.clone();
            }
            let created = api
                .call("POST", &format!("/apps/{app}/scripts"), Some(body))
                .await?;
            let id = created["id"]
                .as_str()
                .ok_or_else(|| malformed("script id"))?;
            ids.insert(name.clone(), id.to_owned());
        }
        Action::UpdateScript {
            id,
            source,
            sandbox,
            permissions,
        } => {
            let mut body = json!({});
            if let Some(s) = source {
                body["source"] = json!(s);
            }
            if let Some(s) = sandbox {
                body["sandbox"] = s.clone();
            }
            if let Some(p) = permissions {
                body["permissions"] = p.clone().unwrap_or(Value::Null);
            }
            api.call("PUT", &format!("/scripts/{id}"), Some(body))
                .await?;
        }
        Action::DeleteScript { id } => {
            api.call("DELETE", &format!("/scripts/{id}"), None).await?;
        }
        Action::AddRoute {
            method,
            path,
            script,
        } => {
            let body =
                json!({ "method": method, "path": path, "script_id": script_id(ids, script)? });
            api.call("POST", &format!("/apps/{app}/routes"), Some(body))
                .await?;
        }
        Action::RemoveRoute { id } => {
            api.call("DELETE", &format!("/routes/{id}"), None).await?;
        }
        Action::ReplaceRoute {
            id,
            method,
            path,
            script,
        } => {
            // The same (method, path) cannot exist twice: remove, then add.
            let script_id = script_id(ids, script)?;
            api.call("DELETE", &format!("/routes/{id}"), None).await?;
            let body = json!({ "method": method, "path": path, "script_id": script_id });
            api.call("POST", &format!("/apps/{app}/routes"), Some(body))
                .await?;
        }
        Action::CreateTrigger { trigger } => {
            create_trigger(api, app, trigger, &script_id(ids, &trigger.script)?).await?;
        }
        Action::ReplaceTrigger { id, trigger } => {
            // The new one first, so a schedule never goes without a trigger.
            create_trigger(api, app, trigger, &script_id(ids, &trigger.script)?).await?;
            api.call("DELETE", &format!("/triggers/{id}"), None).await?;
        }
        Action::SetTriggerEnabled { id, enabled } => {
            api.call(
                "PATCH",
                &format!("/triggers/{id}"),
                Some(json!({ "enabled": enabled })),
            )
            .await?;
        }
        Action::DeleteTrigger { id } => {
            api.call("DELETE", &format!("/triggers/{id}"), None).await?;
        }
    }
    Ok(())
}

async fn create_trigger(
    api: &impl AdminApi,
    app: &str,
    t: &DesiredTrigger,
    script_id: &str,
) -> Result<(), ApiCallError> {
    let mut body = json!({ "script_id": script_id, "max_attempts": t.max_attempts });
    match &t.spec {
        TriggerSpec::Cron { schedule, timezone } => {
            body["schedule"] = json!(schedule);
            body["timezone"] = json!(timezone);
        }
        TriggerSpec::Webhook { .. } => {
            if let Some(secret) = &t.secret {
                body["secret"] = json!(secret);
            }
        }
        TriggerSpec::Event { event } => body["event"] = json!(event),
    }
    let created = api
        .call(
            "POST",
            &format!("/apps/{app}/triggers/{}", t.spec.kind()),
            Some(body),
        )
        .await?;
    if !t.enabled {
        let id = created["id"]
            .as_str()
            .ok_or_else(|| malformed("trigger id"))?;
        api.call(
            "PATCH",
            &format!("/triggers/{id}"),
            Some(json!({ "enabled": false })),
        )
        .await?;
    }
    Ok(())
}
