//! JSON shapes of the admin API's resources, in one place.

use picloud_events::domain::{App, AppRole, Route, Script, ScriptKind, Token, User};
use serde_json::{Value, json};

pub fn app(app: &App) -> Value {
    let mut v = json!({
        "id": app.id,
        "slug": app.slug,
        "name": app.name,
        "domains": app.domains.iter().collect::<Vec<_>>(),
        "created_at": app.created_at,
        "record": app.record.as_str(),
    });
    // Git sync: the bound repository and the commit that is live.
    if let Some(git) = &app.git {
        v["git"] = json!({
            "url": git.url,
            "branch": git.branch,
            "path": git.path,
            "live_commit": git.live_commit,
        });
    }
    v
}

pub fn kind(kind: ScriptKind) -> &'static str {
    match kind {
        ScriptKind::Endpoint => "endpoint",
        ScriptKind::Module => "module",
    }
}

/// A script with its live version; `with_source` adds the live source.
pub fn script(app_id: &str, script: &Script, with_source: bool) -> Value {
    let live = script.live();
    let mut v = json!({
        "id": script.id,
        "app_id": app_id,
        "name": script.name,
        "kind": kind(script.kind),
        "version": script.live_version,
        "latest_version": script.latest_version(),
        "sandbox": live.map(|l| serde_json::to_value(&l.sandbox).unwrap_or_default()),
        "permissions": live.and_then(|l| l.permissions.clone()),
        "created_at": script.created_at,
        "updated_at": script.updated_at,
    });
    if with_source {
        v["source"] = json!(live.map(|l| l.source.to_string()));
    }
    v
}

pub fn versions(script: &Script) -> Value {
    let versions: Vec<Value> = script
        .versions
        .values()
        .rev()
        .map(|v| {
            json!({
                "version": v.version,
                "live": v.version == script.live_version,
                "saved_at": v.saved_at,
                "source": v.source.to_string(),
                "sandbox": serde_json::to_value(&v.sandbox).unwrap_or_default(),
                "permissions": v.permissions,
            })
        })
        .collect();
    json!({ "versions": versions })
}

pub fn route(app_id: &str, route: &Route) -> Value {
    json!({
        "id": route.id,
        "app_id": app_id,
        "method": route.method,
        "path": route.path,
        "script_id": route.script_id,
        "created_at": route.created_at,
    })
}

/// A user; never the password hash or token hashes.
pub fn user(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "role": user.role.as_str(),
        "disabled": user.disabled,
        "has_password": user.password_hash.is_some(),
        "created_at": user.created_at,
    })
}

/// An API token without its hash (the value itself is shown once, at creation).
pub fn token(user_id: &str, token: &Token) -> Value {
    json!({
        "id": token.id,
        "user_id": user_id,
        "name": token.name,
        "scopes": token.scopes,
        "expires_at": token.expires_at,
        "created_at": token.issued_at,
        "revoked": token.revoked,
    })
}

pub fn member(user_id: &str, username: Option<&str>, role: AppRole) -> Value {
    json!({
        "user_id": user_id,
        "username": username,
        "role": role.as_str(),
    })
}
