//! `GET /api/v1/admin/me`: who the caller is, by token or by session cookie.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::test_app;
use serde_json::json;

#[tokio::test]
async fn me_names_the_caller() {
    let app = test_app().await;
    let r = app.admin("GET", "/api/v1/admin/me", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let me = r.json();
    assert_eq!(me["username"], "owner");
    assert_eq!(me["role"], "owner");
    assert_eq!(me["via"], "token");
    assert!(me["id"].is_string());
    let anonymous = app.get("/api/v1/admin/me").await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn me_answers_a_session_cookie() {
    let app = test_app().await;
    let id = app.user("dora", "member").await;
    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/users/{id}"),
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let login = Request::builder()
        .method("POST")
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"username": "dora", "password": "correct horse battery"}).to_string(),
        ))
        .expect("request");
    let r = app.send(login).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let session = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("picloud_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned();
    let req = Request::builder()
        .uri("/api/v1/admin/me")
        .header("cookie", session)
        .body(Body::empty())
        .expect("request");
    let me = app.send(req).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["username"], "dora");
    assert_eq!(me.json()["role"], "member");
    assert_eq!(me.json()["via"], "session");
}
