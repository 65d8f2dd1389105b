//! The authorization matrix: every admin route × every kind of caller → the answer.
//!
//! `every_admin_route_has_a_row` walks the router's own list of routes, so adding an
//! endpoint without a row here (that is, without deciding who may call it) fails.

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use common::{TestApp, test_app};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persona {
    Owner,
    Admin,
    /// A member with the `admin` role in the app.
    AppAdmin,
    Developer,
    Viewer,
    /// A member of the instance with no role in the app.
    Outsider,
    /// An instance admin whose token has only `apps:read`.
    ReadOnlyToken,
}

const PERSONAS: [Persona; 7] = [
    Persona::Owner,
    Persona::Admin,
    Persona::AppAdmin,
    Persona::Developer,
    Persona::Viewer,
    Persona::Outsider,
    Persona::ReadOnlyToken,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 2xx.
    Ok,
    Forbidden,
    /// 404: the app does not exist for this caller.
    Hidden,
}

/// Who may do what, by level.
#[derive(Clone, Copy)]
enum Level {
    /// Anyone with a token.
    Anyone,
    /// Needs no token at all.
    Public,
    /// Instance admins and owners, with the given scope on their token.
    Instance {
        read_only_token_ok: bool,
    },
    /// App role viewer and up; `logs`: needs the `logs:read` scope.
    AppRead {
        logs: bool,
    },
    AppDeveloper,
    /// App developers and up, with any token scope that reads (`apps:read`).
    AppDeveloperRead,
    AppAdmin,
}

fn expect(level: Level, who: Persona) -> Expect {
    use Persona::*;
    match level {
        Level::Anyone | Level::Public => Expect::Ok,
        Level::Instance { read_only_token_ok } => match who {
            Owner | Admin => Expect::Ok,
            ReadOnlyToken if read_only_token_ok => Expect::Ok,
            _ => Expect::Forbidden,
        },
        Level::AppRead { logs } => match who {
            Outsider => Expect::Hidden,
            ReadOnlyToken if logs => Expect::Forbidden,
            _ => Expect::Ok,
        },
        Level::AppDeveloper => match who {
            Outsider => Expect::Hidden,
            Viewer | ReadOnlyToken => Expect::Forbidden,
            _ => Expect::Ok,
        },
        Level::AppDeveloperRead => match who {
            Outsider => Expect::Hidden,
            Viewer => Expect::Forbidden,
            _ => Expect::Ok,
        },
        Level::AppAdmin => match who {
            Outsider => Expect::Hidden,
            Developer | Viewer | ReadOnlyToken => Expect::Forbidden,
            _ => Expect::Ok,
        },
    }
}

/// One row: a route, a concrete request for it, and who may make it.
struct Row {
    method: Method,
    path: &'static str,
    level: Level,
    /// Body with placeholders (`{…}` in strings are filled from the fixture).
    body: Option<Value>,
    /// Query string appended to the concrete path.
    query: &'static str,
}

fn row(method: Method, path: &'static str, level: Level, body: Option<Value>) -> Row {
    Row {
        method,
        path,
        level,
        body,
        query: "",
    }
}

fn rows() -> Vec<Row> {
    use Level::*;
    let instance = Instance {
        read_only_token_ok: false,
    };
    let read = AppRead { logs: false };
    let logs = AppRead { logs: true };
    vec![
        row(
            Method::POST,
            "/apps",
            instance,
            Some(json!({"slug": "{new_slug}"})),
        ),
        row(Method::GET, "/apps", Anyone, None),
        Row {
            query: "?slug=free-slug",
            ..row(Method::GET, "/apps/slug-check", instance, None)
        },
        row(Method::GET, "/apps/{app}", read, None),
        row(
            Method::PATCH,
            "/apps/{app}",
            AppAdmin,
            Some(json!({"name": "Renamed"})),
        ),
        row(Method::DELETE, "/apps/{app}", AppAdmin, None),
        row(
            Method::POST,
            "/apps/{app}/domains",
            AppAdmin,
            Some(json!({"domain": "{new_domain}"})),
        ),
        row(
            Method::DELETE,
            "/apps/{app}/domains/{domain}",
            AppAdmin,
            None,
        ),
        Row {
            query: "?domain={domain}",
            ..row(Method::GET, "/domains/check", Public, None)
        },
        Row {
            query: "?schedule=0%20*/5%20*%20*%20*%20*&timezone=Europe/Berlin",
            ..row(Method::GET, "/cron/preview", Anyone, None)
        },
        row(
            Method::POST,
            "/apps/{app}/scripts",
            AppDeveloper,
            Some(json!({"name": "another", "source": "1"})),
        ),
        row(Method::GET, "/apps/{app}/scripts", read, None),
        row(Method::GET, "/scripts/{id}", read, None),
        row(
            Method::PUT,
            "/scripts/{id}",
            AppDeveloper,
            Some(json!({"source": "2"})),
        ),
        row(Method::DELETE, "/scripts/{id}", AppDeveloper, None),
        row(Method::GET, "/scripts/{id}/versions", read, None),
        row(
            Method::POST,
            "/scripts/{id}/rollback",
            AppDeveloper,
            Some(json!({"version": 1})),
        ),
        row(
            Method::POST,
            "/scripts/{id}/invoke",
            AppDeveloper,
            Some(json!({})),
        ),
        row(
            Method::POST,
            "/apps/{app}/routes",
            AppDeveloper,
            Some(json!({"method": "POST", "path": "/other", "script_id": "{script}"})),
        ),
        row(Method::GET, "/apps/{app}/routes", read, None),
        row(Method::DELETE, "/routes/{id}", AppDeveloper, None),
        row(Method::GET, "/apps/{app}/invocations", logs, None),
        row(Method::GET, "/invocations/{id}", logs, None),
        row(
            Method::POST,
            "/invocations/{id}/redrive",
            AppDeveloper,
            None,
        ),
        row(
            Method::POST,
            "/apps/{app}/triggers/webhook",
            AppDeveloper,
            Some(json!({"script_id": "{script}"})),
        ),
        row(
            Method::POST,
            "/apps/{app}/triggers/cron",
            AppDeveloper,
            Some(json!({"script_id": "{script}", "schedule": "0 0 * * * *", "timezone": "UTC"})),
        ),
        row(
            Method::POST,
            "/apps/{app}/triggers/event",
            AppDeveloper,
            Some(json!({"script_id": "{script}", "event": "order.paid"})),
        ),
        row(Method::GET, "/apps/{app}/triggers", read, None),
        row(Method::GET, "/apps/{app}/logs/stream", logs, None),
        row(
            Method::PATCH,
            "/triggers/{id}",
            AppDeveloper,
            Some(json!({"enabled": false})),
        ),
        row(Method::DELETE, "/triggers/{id}", AppDeveloper, None),
        row(Method::GET, "/apps/{app}/secrets", read, None),
        row(
            Method::PUT,
            "/apps/{app}/secrets/{name}",
            AppDeveloper,
            Some(json!({"value": "s3cret"})),
        ),
        row(
            Method::DELETE,
            "/apps/{app}/secrets/{name}",
            AppDeveloper,
            None,
        ),
        row(Method::GET, "/apps/{app}/kv", AppDeveloperRead, None),
        row(Method::GET, "/apps/{app}/kv/{key}", AppDeveloperRead, None),
        row(
            Method::PUT,
            "/apps/{app}/kv/{key}",
            AppDeveloper,
            Some(json!({"value": {"n": 1}})),
        ),
        row(Method::DELETE, "/apps/{app}/kv/{key}", AppDeveloper, None),
        row(Method::GET, "/apps/{app}/members", read, None),
        row(
            Method::POST,
            "/apps/{app}/members",
            AppAdmin,
            Some(json!({"user_id": "{victim}", "role": "viewer"})),
        ),
        row(
            Method::PATCH,
            "/apps/{app}/members/{user}",
            AppAdmin,
            Some(json!({"role": "developer"})),
        ),
        row(Method::DELETE, "/apps/{app}/members/{user}", AppAdmin, None),
        row(Method::GET, "/users", instance, None),
        row(
            Method::POST,
            "/users",
            instance,
            Some(json!({"username": "{new_user}", "role": "member"})),
        ),
        row(
            Method::PATCH,
            "/users/{id}",
            instance,
            Some(json!({"disabled": true})),
        ),
        row(Method::DELETE, "/users/{id}", instance, None),
        row(
            Method::POST,
            "/tokens",
            Anyone,
            Some(json!({"name": "more", "scopes": ["apps:read"]})),
        ),
        row(Method::GET, "/tokens", Anyone, None),
        row(Method::DELETE, "/tokens/{id}", Anyone, None),
        row(Method::GET, "/events", instance, None),
        row(Method::GET, "/audit", instance, None),
        row(Method::GET, "/projections", instance, None),
        row(Method::GET, "/me", Anyone, None),
        row(Method::POST, "/projections/{name}/rebuild", instance, None),
        row(Method::GET, "/nodes", instance, None),
        row(
            Method::POST,
            "/apps/{app}/git",
            AppAdmin,
            Some(json!({"url": "file:///srv/repos/{slug}.git", "secret": "s"})),
        ),
        row(Method::GET, "/apps/{app}/git", read, None),
        row(Method::DELETE, "/apps/{app}/git", AppAdmin, None),
    ]
}

#[test]
fn every_admin_route_has_a_row_and_every_row_a_route() {
    let routes: BTreeSet<(String, String)> = picloud_api::routes::admin_route_list()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_owned()))
        .collect();
    let rows: BTreeSet<(String, String)> = rows()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = routes.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "admin routes without an authorization row (decide who may call them): {missing:?}"
    );
    let stale: Vec<_> = rows.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that no longer exist: {stale:?}"
    );
}

/// The callers, each with a token, created once.
struct People {
    tokens: Vec<(Persona, String, String)>,
}

impl People {
    async fn create(app: &TestApp) -> People {
        let mut tokens = vec![(
            Persona::Owner,
            common::TOKEN.to_owned(),
            app.runtime
                .catalog
                .user_by_name("owner")
                .expect("owner")
                .id
                .clone(),
        )];
        for (persona, name, role, scopes) in [
            (Persona::Admin, "admin1", "admin", vec!["admin"]),
            (Persona::AppAdmin, "appadmin", "member", vec!["admin"]),
            (Persona::Developer, "dev", "member", vec!["admin"]),
            (Persona::Viewer, "viewer", "member", vec!["admin"]),
            (Persona::Outsider, "outsider", "member", vec!["admin"]),
            (Persona::ReadOnlyToken, "reader", "admin", vec!["apps:read"]),
        ] {
            let id = app.user(name, role).await;
            let token = app.token_for(&id, &scopes).await;
            tokens.push((persona, token, id));
        }
        People { tokens }
    }

    fn id(&self, who: Persona) -> &str {
        self.tokens
            .iter()
            .find(|(p, _, _)| *p == who)
            .map(|(_, _, id)| id.as_str())
            .expect("persona")
    }
}

/// Everything one request may touch, created fresh for it.
struct Fixture {
    values: Vec<(&'static str, String)>,
}

/// `dead`: the fixture's invocation is an asynchronous one that died (so it can
/// be re-driven), not a synchronous run.
async fn fixture(app: &TestApp, people: &People, who: Persona, n: usize, dead: bool) -> Fixture {
    let slug = format!("app-{n}");
    let r = app
        .admin("POST", "/api/v1/admin/apps", Some(json!({"slug": slug})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let app_id = r.json()["id"].as_str().expect("id").to_owned();
    let domain = format!("d{n}.example.com");
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/domains"),
            Some(json!({"domain": domain})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/scripts"),
            Some(json!({"name": "main", "source": "#{ ok: true }"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let script = r.json()["id"].as_str().expect("id").to_owned();
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/routes"),
            Some(json!({"method": "GET", "path": "/x", "script_id": script})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let route = r.json()["id"].as_str().expect("id").to_owned();
    for (persona, role) in [
        (Persona::AppAdmin, "admin"),
        (Persona::Developer, "developer"),
        (Persona::Viewer, "viewer"),
    ] {
        let r = app
            .admin(
                "POST",
                &format!("/api/v1/admin/apps/{slug}/members"),
                Some(json!({"user_id": people.id(persona), "role": role})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // A user to add, and one who is a member already (to change or remove).
    let victim = app.user(&format!("victim-{n}"), "member").await;
    let member = app.user(&format!("member-{n}"), "member").await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/members"),
            Some(json!({"user_id": member, "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // A spare token of the caller, to revoke.
    let caller = people.id(who).to_owned();
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/tokens",
            Some(json!({"name": "spare", "scopes": ["apps:read"], "user_id": caller})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let spare = r.json()["id"].as_str().expect("id").to_owned();
    // A finished invocation of this app.
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{script}/invoke"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let invocation = r
        .header("x-invocation-id")
        .expect("invocation id")
        .to_owned();
    wait_for_invocation(app, &invocation).await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/triggers/webhook"),
            Some(json!({"script_id": script})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let trigger = r.json()["id"].as_str().expect("id").to_owned();
    // A secret and a kv key to read and delete ({name} of the secret routes is
    // filled with "invocations", the projection name).
    let r = app
        .admin(
            "PUT",
            &format!("/api/v1/admin/apps/{slug}/secrets/invocations"),
            Some(json!({"value": "fixture"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = app
        .admin(
            "PUT",
            &format!("/api/v1/admin/apps/{slug}/kv/fixture-key"),
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // A git binding to read and remove.
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/git"),
            Some(json!({"url": "/srv/repos/fixture.git"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let invocation = if dead {
        dead_invocation(app, &slug).await
    } else {
        invocation
    };
    Fixture {
        values: vec![
            ("app", app_id),
            ("slug", slug),
            ("domain", domain),
            ("script", script),
            ("route", route),
            ("victim", victim),
            ("member", member),
            ("spare_token", spare),
            ("invocation", invocation),
            ("trigger", trigger),
            ("new_slug", format!("new-{n}")),
            ("new_domain", format!("new{n}.example.com")),
            ("new_user", format!("new-user-{n}")),
        ],
    }
}

/// An asynchronous invocation of a failing script with one attempt, once dead.
async fn dead_invocation(app: &TestApp, slug: &str) -> String {
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/scripts"),
            Some(json!({"name": "fails", "source": "throw \"no\";"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let script = r.json()["id"].as_str().expect("id").to_owned();
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{script}/invoke?async=true"),
            Some(json!({"max_attempts": 1})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["invocation_id"].as_str().expect("id").to_owned();
    for _ in 0..1000 {
        let r = app
            .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
            .await;
        if r.status == 200 && r.json()["status"] == "dead" {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("invocation {id} never died");
}

/// The recorder writes invocation records off the request path: wait (bounded) for
/// this one to be readable.
async fn wait_for_invocation(app: &TestApp, id: &str) {
    for _ in 0..500 {
        let r = app
            .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
            .await;
        if r.status == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("invocation {id} was never recorded");
}

impl Fixture {
    fn get(&self, key: &str) -> &str {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no fixture value {key}"))
    }

    /// The concrete path for a route template.
    fn path(&self, template: &str) -> String {
        let id = if template.starts_with("/scripts/") {
            self.get("script")
        } else if template.starts_with("/routes/") {
            self.get("route")
        } else if template.starts_with("/triggers/") {
            self.get("trigger")
        } else if template.starts_with("/invocations/") {
            self.get("invocation")
        } else if template.starts_with("/users/") {
            self.get("victim")
        } else if template.starts_with("/tokens/") {
            self.get("spare_token")
        } else {
            ""
        };
        template
            .replace("{app}", self.get("slug"))
            .replace("{domain}", self.get("domain"))
            .replace("{user}", self.get("member"))
            .replace("{name}", "invocations")
            .replace("{key}", "fixture-key")
            .replace("{id}", id)
    }

    fn fill(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => {
                let mut out = s.clone();
                for (key, v) in &self.values {
                    out = out.replace(&format!("{{{key}}}"), v);
                }
                Value::String(out)
            }
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.fill(v))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.fill(v)).collect()),
            other => other.clone(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let app = test_app().await;
    let people = People::create(&app).await;
    let covered: Vec<Persona> = people.tokens.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(covered, PERSONAS, "every persona has a caller");
    let mut n = 0;
    let mut failures = Vec::new();
    for row in rows() {
        for (who, token, _) in &people.tokens {
            n += 1;
            let fx = fixture(&app, &people, *who, n, row.path.ends_with("/redrive")).await;
            let path = format!(
                "/api/v1/admin{}{}",
                fx.path(row.path),
                fx.fill(&json!(row.query)).as_str().unwrap_or_default()
            );
            let body = row.body.as_ref().map(|b| fx.fill(b));
            let reply = app.call(token, row.method.as_str(), &path, body).await;
            let want = expect(row.level, *who);
            let got = match reply.status.as_u16() {
                200..=299 => Expect::Ok,
                403 => Expect::Forbidden,
                404 => Expect::Hidden,
                _ => {
                    failures.push(format!(
                        "{} {} as {who:?}: unexpected {} {}",
                        row.method,
                        row.path,
                        reply.status,
                        reply.text()
                    ));
                    continue;
                }
            };
            if got != want {
                failures.push(format!(
                    "{} {} as {who:?}: want {want:?}, got {} {}",
                    row.method,
                    row.path,
                    reply.status,
                    reply.text()
                ));
            }
            // Denials are JSON errors with a code.
            if got != Expect::Ok {
                assert!(reply.json()["code"].is_string(), "{}", reply.text());
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn public_routes_need_no_token_and_every_other_admin_route_does() {
    let app = test_app().await;
    for row in rows() {
        let path = format!("/api/v1/admin{}", row.path);
        let req = axum::http::Request::builder()
            .method(row.method.clone())
            .uri(&path)
            .body(axum::body::Body::empty())
            .expect("request");
        let reply = app.send(req).await;
        match row.level {
            Level::Public => assert_ne!(reply.status, 401, "{path}"),
            _ => assert_eq!(reply.status, 401, "{} {path}: {}", row.method, reply.text()),
        }
    }
}
