//! Users, tokens, sessions, memberships, audit and replay through the real router.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{TOKEN, test_app};
use serde_json::{Value, json};

fn code(reply: &common::Reply) -> String {
    reply.json()["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn nobody_climbs_above_their_role() {
    let app = test_app().await;
    let admin = app.user("ann", "admin").await;
    let admin_token = app.token_for(&admin, &["admin"]).await;
    let owner_id = app
        .runtime
        .catalog
        .user_by_name("owner")
        .expect("owner")
        .id
        .clone();

    // An admin cannot create an owner, promote to owner, or touch an owner.
    let r = app
        .call(
            &admin_token,
            "POST",
            "/api/v1/admin/users",
            Some(json!({"username": "eve", "role": "owner"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), code(&r).as_str()),
        (422, "cannot_escalate")
    );
    let member = app.user("bob", "member").await;
    let r = app
        .call(
            &admin_token,
            "PATCH",
            &format!("/api/v1/admin/users/{member}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), code(&r).as_str()),
        (422, "cannot_escalate")
    );
    let r = app
        .call(
            &admin_token,
            "PATCH",
            &format!("/api/v1/admin/users/{owner_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // ... nor mint a token for an owner.
    let r = app
        .call(
            &admin_token,
            "POST",
            "/api/v1/admin/tokens",
            Some(json!({"name": "x", "scopes": ["admin"], "user_id": owner_id})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A token cannot mint a wider token.
    let narrow = app.token_for(&admin, &["apps:read", "users:manage"]).await;
    let r = app
        .call(
            &narrow,
            "POST",
            "/api/v1/admin/tokens",
            Some(json!({"name": "x", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), code(&r).as_str()),
        (422, "cannot_escalate")
    );
    // Unknown roles and scopes are 422 naming the field.
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/users",
            Some(json!({"username": "zed", "role": "root"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["field"].as_str()),
        (422, Some("role"))
    );
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/tokens",
            Some(json!({"name": "x", "scopes": ["apps:everything"]})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["field"].as_str()),
        (422, Some("scopes"))
    );
    // The owner may grant owner.
    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/users/{admin}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["role"], "owner");
}

#[tokio::test]
async fn the_last_owner_stays() {
    let app = test_app().await;
    let owner_id = app
        .runtime
        .catalog
        .user_by_name("owner")
        .expect("owner")
        .id
        .clone();
    for body in [json!({"role": "admin"}), json!({"disabled": true})] {
        let r = app
            .admin(
                "PATCH",
                &format!("/api/v1/admin/users/{owner_id}"),
                Some(body),
            )
            .await;
        assert_eq!(
            (r.status.as_u16(), code(&r).as_str()),
            (409, "last_owner"),
            "{}",
            r.text()
        );
    }
    let r = app
        .admin("DELETE", &format!("/api/v1/admin/users/{owner_id}"), None)
        .await;
    assert_eq!((r.status.as_u16(), code(&r).as_str()), (409, "last_owner"));
    // With a second owner, the first may step down.
    let second = app.user("second", "owner").await;
    let second_token = app.token_for(&second, &["admin"]).await;
    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/users/{owner_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Now the second is the last one, and the first (an admin now) cannot touch them.
    let r = app
        .admin("DELETE", &format!("/api/v1/admin/users/{second}"), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = app
        .call(
            &second_token,
            "DELETE",
            &format!("/api/v1/admin/users/{second}"),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), code(&r).as_str()), (409, "last_owner"));
}

#[tokio::test]
async fn revoked_expired_disabled_and_deleted_credentials_are_401() {
    let app = test_app().await;
    let user = app.user("carl", "admin").await;
    let token = app.token_for(&user, &["admin"]).await;
    assert_eq!(
        app.call(&token, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        200
    );

    // Listing shows the token without its value or hash; revoking it ends it.
    let r = app
        .admin("GET", &format!("/api/v1/admin/tokens?user_id={user}"), None)
        .await;
    let tokens = r.json()["tokens"].as_array().cloned().unwrap_or_default();
    assert_eq!(tokens.len(), 1, "{}", r.text());
    assert!(!r.text().contains(&token) && tokens[0].get("hash").is_none());
    let id = tokens[0]["id"].as_str().expect("id").to_owned();
    let r = app
        .admin("DELETE", &format!("/api/v1/admin/tokens/{id}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        app.call(&token, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        401
    );

    // Disabled: every token stops; enabled again: it works again.
    let token = app.token_for(&user, &["admin"]).await;
    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/users/{user}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        app.call(&token, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        401
    );
    app.admin(
        "PATCH",
        &format!("/api/v1/admin/users/{user}"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(
        app.call(&token, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        200
    );

    // Deleted: gone for good, and the username is free again.
    assert_eq!(
        app.admin("DELETE", &format!("/api/v1/admin/users/{user}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.call(&token, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        401
    );
    app.user("carl", "member").await;

    // Expired: a token whose expiry has passed.
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/tokens",
            Some(json!({"name": "brief", "scopes": ["apps:read"], "expires_at": soon})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let brief = r.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.call(&brief, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        200
    );
    while chrono::Utc::now() <= soon {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.call(&brief, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        401
    );
    // Forged and truncated tokens.
    for bad in ["pc_forged", &TOKEN[..TOKEN.len() - 1], ""] {
        assert_eq!(
            app.call(bad, "GET", "/api/v1/admin/apps", None)
                .await
                .status,
            401,
            "{bad}"
        );
    }
}

fn cookies(reply: &common::Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

fn cookie_value(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .expect("cookie set")
        .to_owned()
}

#[tokio::test]
async fn a_session_cookie_reads_freely_and_writes_only_with_the_csrf_header() {
    let app = test_app().await;
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/users",
            Some(json!({"username": "dana", "role": "admin", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["has_password"], true);
    let login = |password: &'static str| {
        Request::builder()
            .method("POST")
            .uri("/api/v1/auth/login")
            .body(Body::from(
                json!({"username": "dana", "password": password}).to_string(),
            ))
            .expect("request")
    };
    let r = app.send(login("wrong password")).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = app.send(login("correct horse battery")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let set = cookies(&r);
    assert!(
        set.iter().any(|c| c.starts_with("picloud_session=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")),
        "{set:?}"
    );
    let session = cookie_value(&set, "picloud_session");
    let csrf = cookie_value(&set, "picloud_csrf");
    let with_cookie = |method: &str, path: &str, csrf_header: Option<&str>| {
        let mut b = Request::builder().method(method).uri(path).header(
            "cookie",
            format!("picloud_session={session}; picloud_csrf={csrf}"),
        );
        if let Some(h) = csrf_header {
            b = b.header("x-csrf-token", h);
        }
        b.body(Body::from(json!({"slug": "from-dashboard"}).to_string()))
            .expect("request")
    };
    assert_eq!(
        app.send(with_cookie("GET", "/api/v1/admin/apps", None))
            .await
            .status,
        200
    );
    let r = app
        .send(with_cookie("POST", "/api/v1/admin/apps", None))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = app
        .send(with_cookie(
            "POST",
            "/api/v1/admin/apps",
            Some("not-the-value"),
        ))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = app
        .send(with_cookie("POST", "/api/v1/admin/apps", Some(&csrf)))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // A session value is not a bearer token.
    assert_eq!(
        app.call(&session, "GET", "/api/v1/admin/apps", None)
            .await
            .status,
        401
    );
    // Logout ends it.
    let r = app
        .send(
            Request::builder()
                .method("POST")
                .uri("/api/v1/auth/logout")
                .header("cookie", format!("picloud_session={session}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        app.send(with_cookie("GET", "/api/v1/admin/apps", None))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn members_see_only_their_apps_and_nothing_of_the_others() {
    let app = test_app().await;
    app.deploy("mine", "1", None).await;
    let theirs = app.deploy("theirs", "2", None).await;
    let member = app.user("mia", "member").await;
    let token = app.token_for(&member, &["admin"]).await;
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/mine/members",
            Some(json!({"user_id": member, "role": "developer"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app.call(&token, "GET", "/api/v1/admin/apps", None).await;
    let slugs: Vec<Value> = r.json()["apps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| a["slug"].clone())
        .collect();
    assert_eq!(slugs, [json!("mine")]);
    for path in [
        "/api/v1/admin/apps/theirs".to_owned(),
        "/api/v1/admin/apps/theirs/scripts".to_owned(),
        format!("/api/v1/admin/scripts/{theirs}"),
    ] {
        let r = app.call(&token, "GET", &path, None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(
            !r.text().contains("theirs") || r.text().contains("not found"),
            "{}",
            r.text()
        );
    }
    // Membership listing names the member.
    let r = app
        .admin("GET", "/api/v1/admin/apps/mine/members", None)
        .await;
    assert_eq!(r.json()["members"][0]["username"], "mia");
}

#[tokio::test]
async fn the_audit_trail_names_who_did_what_and_never_shows_secrets() {
    let app = test_app().await;
    let ann = app.user("ann", "admin").await;
    let token = app.token_for(&ann, &["admin"]).await;
    let r = app
        .call(
            &token,
            "POST",
            "/api/v1/admin/apps",
            Some(json!({"slug": "audited"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let request_id = r.header("x-request-id").expect("request id").to_owned();
    app.admin(
        "POST",
        "/api/v1/admin/users",
        Some(json!({"username": "pat", "role": "member", "password": "a long password"})),
    )
    .await;

    let r = app
        .admin("GET", "/api/v1/admin/audit?actor=ann", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let entries = r.json()["entries"].as_array().cloned().unwrap_or_default();
    let created = entries
        .iter()
        .find(|e| e["action"] == "AppCreated")
        .expect("the app creation is audited");
    assert_eq!(created["actor"]["username"], "ann");
    assert_eq!(created["request_id"], request_id.as_str());
    assert!(
        created["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("token:"))
    );
    assert!(
        created["summary"]
            .as_str()
            .is_some_and(|s| s.contains("audited"))
    );

    // Filtering by time: nothing before the epoch of this test.
    let r = app
        .admin(
            "GET",
            "/api/v1/admin/events?until=2000-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(r.json()["events"], json!([]));
    let r = app
        .admin("GET", "/api/v1/admin/events?since=not-a-time", None)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["field"].as_str()),
        (422, Some("since"))
    );

    // Neither token values nor password hashes appear anywhere in the log's views.
    let all = app
        .admin("GET", "/api/v1/admin/events?limit=1000", None)
        .await
        .text();
    assert!(!all.contains(&token) && !all.contains(TOKEN));
    assert!(!all.contains("$argon2"), "password hashes are redacted");
    assert!(all.contains("[redacted]"));
}

#[tokio::test]
async fn rebuilding_every_projection_gives_the_same_state() {
    let app = test_app().await;
    let script = app.deploy("replayed", "#{ n: 1 }", None).await;
    for _ in 0..5 {
        let r = app
            .admin(
                "POST",
                &format!("/api/v1/admin/scripts/{script}/invoke"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let member = app.user("rita", "member").await;
    app.admin(
        "POST",
        "/api/v1/admin/apps/replayed/members",
        Some(json!({"user_id": member, "role": "viewer"})),
    )
    .await;
    // Wait (bounded) until the invocations read model has all five.
    let mut before = Value::Null;
    for _ in 0..500 {
        let r = app
            .admin("GET", "/api/v1/admin/apps/replayed/invocations", None)
            .await;
        if r.json()["invocations"]
            .as_array()
            .is_some_and(|a| a.len() == 5)
        {
            before = r.json();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_ne!(before, Value::Null, "invocations were recorded");
    let apps_before = app
        .admin("GET", "/api/v1/admin/apps/replayed", None)
        .await
        .json();

    let r = app.admin("GET", "/api/v1/admin/projections", None).await;
    let names: Vec<Value> = r.json()["projections"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("catalog"), json!("invocations"), json!("outbox")]
    );

    let r = app
        .admin("POST", "/api/v1/admin/projections/catalog/rebuild", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["identical"], true, "{}", r.text());
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/projections/invocations/rebuild",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .admin("POST", "/api/v1/admin/projections/outbox/rebuild", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .admin("POST", "/api/v1/admin/projections/nope/rebuild", None)
        .await;
    assert_eq!(r.status, 404);

    assert_eq!(
        app.admin("GET", "/api/v1/admin/apps/replayed/invocations", None)
            .await
            .json(),
        before
    );
    assert_eq!(
        app.admin("GET", "/api/v1/admin/apps/replayed", None)
            .await
            .json(),
        apps_before
    );
    // Still serving, and the member still a member.
    let r = app
        .admin("GET", "/api/v1/admin/apps/replayed/members", None)
        .await;
    assert_eq!(r.json()["members"][0]["username"], "rita");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_demoted_at_once_leave_one_owner() {
    for round in 0..5 {
        let app = test_app().await;
        let first = app
            .runtime
            .catalog
            .user_by_name("owner")
            .expect("owner")
            .id
            .clone();
        let second = app.user(&format!("second-{round}"), "owner").await;
        // Each owner steps down with their own token, so neither loses the right
        // to act before acting: the race is only about the last owner.
        let second_token = app.token_for(&second, &["admin"]).await;
        let demote = |id: String, token: String| {
            let app = &app;
            async move {
                app.call(
                    &token,
                    "PATCH",
                    &format!("/api/v1/admin/users/{id}"),
                    Some(json!({"role": "admin"})),
                )
                .await
            }
        };
        let (a, b) = tokio::join!(
            demote(first, common::TOKEN.to_owned()),
            demote(second, second_token)
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{} / {}", a.text(), b.text());
        assert_eq!(app.runtime.catalog.active_owner_ids().len(), 1);
    }
}
