//! `GET /api/v1/admin/audit`: who changed what, when — the event log read for
//! people. Same filters as `/events`; invocation records and the bookkeeping
//! streams (name claims, the owners set) are left out.

use axum::Json;
use axum::extract::{Query, State};
use picloud_events::RecordedEvent;
use serde_json::{Value, json};

use super::events::{Browse, BrowseQuery};
use crate::auth::{Capability, Principal, authorize};
use crate::error::ApiResult;
use crate::state::ApiState;

/// Pages read from the log to fill one answer, at most.
const MAX_PAGES: usize = 20;

fn is_bookkeeping(stream: &str) -> bool {
    [
        "invocation-",
        "runs-",
        "gitdeploy-",
        "slug-",
        "domain-",
        "username-",
    ]
    .iter()
    .any(|p| stream.starts_with(p))
        || stream == "owners"
}

fn text(data: &Value, key: &str) -> String {
    match data.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The resource an event is about and a one-line summary.
fn describe(event: &RecordedEvent) -> (Value, String) {
    let d = &event.data;
    let app = event.metadata.app.clone();
    let (kind, id, summary) = match event.event_type.as_str() {
        "AppCreated" => (
            "app",
            text(d, "app_id"),
            format!("created app '{}'", text(d, "slug")),
        ),
        "AppRenamed" => (
            "app",
            app.clone().unwrap_or_default(),
            format!("renamed the app to '{}'", text(d, "name")),
        ),
        "AppRecordSet" => (
            "app",
            app.clone().unwrap_or_default(),
            format!("set the app's run recording to '{}'", text(d, "record")),
        ),
        "AppDeleted" => (
            "app",
            app.clone().unwrap_or_default(),
            "deleted the app".into(),
        ),
        "DomainAdded" => (
            "domain",
            text(d, "domain"),
            format!("added domain {}", text(d, "domain")),
        ),
        "DomainRemoved" => (
            "domain",
            text(d, "domain"),
            format!("removed domain {}", text(d, "domain")),
        ),
        "ScriptCreated" => (
            "script",
            text(d, "script_id"),
            format!("created {} script '{}'", text(d, "kind"), text(d, "name")),
        ),
        "ScriptVersionSaved" => (
            "script",
            text(d, "script_id"),
            format!("saved version {} of a script", text(d, "version")),
        ),
        "ScriptLiveVersionSet" => (
            "script",
            text(d, "script_id"),
            format!("rolled a script back to version {}", text(d, "version")),
        ),
        "ScriptDeleted" => ("script", text(d, "script_id"), "deleted a script".into()),
        "RouteAdded" => (
            "route",
            text(d, "route_id"),
            format!("added route {} {}", text(d, "method"), text(d, "path")),
        ),
        "RouteRemoved" => ("route", text(d, "route_id"), "removed a route".into()),
        "MemberSet" => (
            "member",
            text(d, "user_id"),
            format!("made a user an app {}", text(d, "role")),
        ),
        "MemberRemoved" => ("member", text(d, "user_id"), "removed a member".into()),
        "TriggerCreated" => (
            "trigger",
            text(d, "trigger_id"),
            format!(
                "created a {} trigger",
                d["kind"]
                    .as_object()
                    .and_then(|k| k.keys().next().cloned())
                    .unwrap_or_default()
            ),
        ),
        "TriggerEnabledSet" => (
            "trigger",
            text(d, "trigger_id"),
            if d["enabled"].as_bool() == Some(true) {
                "enabled a trigger".into()
            } else {
                "disabled a trigger".into()
            },
        ),
        "TriggerDeleted" => ("trigger", text(d, "trigger_id"), "deleted a trigger".into()),
        "SecretSet" => (
            "secret",
            text(d, "name"),
            format!("set the secret {}", text(d, "name")),
        ),
        "SecretDeleted" => (
            "secret",
            text(d, "name"),
            format!("deleted the secret {}", text(d, "name")),
        ),
        "GitBound" => (
            "git",
            text(d, "url"),
            format!(
                "bound the app to {} branch {}",
                text(d, "url"),
                text(d, "branch")
            ),
        ),
        "GitUnbound" => ("git", String::new(), "unbound the app from git".into()),
        "GitDeployed" => (
            "git",
            text(d, "commit"),
            format!("deployed commit {}", text(d, "commit")),
        ),
        "GitDeployFailed" => (
            "git",
            text(d, "commit"),
            format!("a git deploy failed: {}", text(d, "error")),
        ),
        "MasterKeyRegistered" => (
            "instance",
            String::new(),
            "registered the master key".into(),
        ),
        "InstanceBootstrapped" => (
            "instance",
            String::new(),
            "bootstrapped the instance".into(),
        ),
        "UserCreated" => (
            "user",
            text(d, "user_id"),
            format!(
                "created user '{}' as {}",
                text(d, "username"),
                text(d, "role")
            ),
        ),
        "UserRoleChanged" => (
            "user",
            user_of(event),
            format!("changed a user's role to {}", text(d, "role")),
        ),
        "UserDisabledSet" => (
            "user",
            user_of(event),
            if d.get("disabled") == Some(&Value::Bool(true)) {
                "disabled a user".into()
            } else {
                "enabled a user".into()
            },
        ),
        "UserPasswordSet" => ("user", user_of(event), "set a user's password".into()),
        "UserDeleted" => ("user", user_of(event), "deleted a user".into()),
        "TokenIssued" => (
            "token",
            text(d, "token_id"),
            if text(d, "kind") == "session" {
                "logged in".into()
            } else {
                format!(
                    "issued token '{}' with scopes {}",
                    text(d, "name"),
                    d.get("scopes").map(Value::to_string).unwrap_or_default()
                )
            },
        ),
        "TokenRevoked" => (
            "token",
            text(d, "token_id"),
            "revoked a token or ended a session".into(),
        ),
        other => ("event", event.stream.clone(), other.to_owned()),
    };
    (json!({ "kind": kind, "id": id, "app": app }), summary)
}

fn user_of(event: &RecordedEvent) -> String {
    event
        .stream
        .strip_prefix("user-")
        .unwrap_or_default()
        .to_owned()
}

pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceReadEvents)?;
    let browse = Browse::parse(&state, q)?;
    let catalog = &state.runtime.catalog;
    let mut entries = Vec::new();
    let mut after = browse.after;
    let mut exhausted = false;
    for _ in 0..MAX_PAGES {
        let page = state
            .runtime
            .store
            .browse(&browse.filter, after, browse.limit)
            .await?;
        exhausted = page.len() < browse.limit;
        for event in &page {
            after = event.position;
            if is_bookkeeping(&event.stream) {
                continue;
            }
            let (resource, summary) = describe(event);
            let actor = match event.metadata.actor.as_deref() {
                Some(actor) => match actor.strip_prefix("user:") {
                    Some(id) => json!({
                        "id": id,
                        "username": catalog.user(id).map(|u| u.username.clone()),
                    }),
                    None => json!({ "id": actor }),
                },
                None => Value::Null,
            };
            entries.push(json!({
                "position": event.position,
                "at": event.recorded_at,
                "actor": actor,
                "token": event.metadata.token,
                "action": event.event_type,
                "resource": resource,
                "summary": summary,
                "request_id": event.metadata.request_id,
                "node": event.metadata.node,
            }));
            if entries.len() == browse.limit {
                break;
            }
        }
        if exhausted || entries.len() == browse.limit {
            break;
        }
    }
    let next = (!exhausted || entries.len() == browse.limit).then_some(after);
    Ok(Json(json!({ "entries": entries, "next": next })))
}
