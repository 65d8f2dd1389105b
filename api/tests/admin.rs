//! The admin API against the real router: resources, and every kind of bad input.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{TOKEN, test_app, test_app_with};
use picloud_actors::RuntimeConfig;
use picloud_api::ApiConfig;
use serde_json::json;

#[tokio::test]
async fn health_version_and_readiness_answer() {
    let app = test_app().await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status.as_u16(), r.json()), (200, json!({"ok": true})));
    let v = app.get("/version").await.json();
    assert_eq!(v["product"], env!("CARGO_PKG_VERSION"));
    assert!(v["schema"].as_u64().is_some_and(|s| s >= 1));
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn missing_malformed_and_wrong_tokens_are_401_json() {
    let app = test_app().await;
    let r = app.get("/api/v1/admin/apps").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "unauthorized");
    for header in ["Bearer", "Basic abc", "Bearer wrong-token"] {
        let req = Request::builder()
            .uri("/api/v1/admin/apps")
            .header("authorization", header)
            .body(Body::empty())
            .expect("req");
        let r = app.send(req).await;
        assert_eq!(r.status, 401, "{header}");
        assert!(r.json()["error"].is_string());
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_one_is_echoed() {
    let app = test_app().await;
    assert!(app.get("/healthz").await.header("x-request-id").is_some());
    assert!(
        app.get("/api/v1/admin/apps")
            .await
            .header("x-request-id")
            .is_some()
    );
    assert!(app.get("/nope/x").await.header("x-request-id").is_some());
    let req = Request::builder()
        .uri("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .expect("req");
    assert_eq!(app.send(req).await.header("x-request-id"), Some("abc-123"));
}

#[tokio::test]
async fn app_lifecycle_by_id_or_slug() {
    let app = test_app().await;
    let created = app
        .admin(
            "POST",
            "/api/v1/admin/apps",
            Some(json!({"slug": "shop", "name": "Shop"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let body = created.json();
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(body["domains"], json!([]));
    assert!(body["created_at"].is_string());
    assert_eq!(
        app.admin("GET", &format!("/api/v1/admin/apps/{id}"), None)
            .await
            .json()["slug"],
        "shop"
    );
    let renamed = app
        .admin(
            "PATCH",
            "/api/v1/admin/apps/shop",
            Some(json!({"name": "The Shop"})),
        )
        .await;
    assert_eq!(renamed.json()["name"], "The Shop");
    let list = app.admin("GET", "/api/v1/admin/apps", None).await.json();
    assert_eq!(list["apps"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.admin("DELETE", "/api/v1/admin/apps/shop", None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.admin("GET", "/api/v1/admin/apps/shop", None)
            .await
            .status,
        404
    );
    // The slug is free again.
    let again = app
        .admin("POST", "/api/v1/admin/apps", Some(json!({"slug": "shop"})))
        .await;
    assert_eq!(again.status, 201, "{}", again.text());
}

#[tokio::test]
async fn bad_app_input_is_refused_and_changes_nothing() {
    let app = test_app().await;
    let cases: [(&str, u16, &str); 6] = [
        ("{\"slug\": ", 400, "malformed_json"),
        ("not json", 400, "malformed_json"),
        ("{}", 422, "invalid_field"),
        ("{\"slug\": 5}", 422, "invalid_field"),
        ("{\"slug\": \"ok\", \"extra\": 1}", 422, "invalid_field"),
        ("{\"slug\": \"Bad Slug\"}", 422, "invalid_field"),
    ];
    for (body, status, code) in cases {
        let r = app.raw("POST", "/api/v1/admin/apps", body).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{body}");
    }
    let r = app
        .raw("POST", "/api/v1/admin/apps", "{\"slug\": \"api\"}")
        .await;
    assert_eq!(r.status, 422, "reserved slug");
    assert_eq!(r.json()["field"], "slug");
    let list = app.admin("GET", "/api/v1/admin/apps", None).await.json();
    assert_eq!(list["apps"], json!([]));
}

#[tokio::test]
async fn a_body_over_the_cap_is_413() {
    let app = test_app_with(
        RuntimeConfig::default(),
        ApiConfig {
            body_limit: 1024,
            ..ApiConfig::default()
        },
    )
    .await;
    let big = format!("{{\"slug\": \"{}\"}}", "a".repeat(4096));
    let r = app.raw("POST", "/api/v1/admin/apps", &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "body_too_large");
}

#[tokio::test]
async fn slug_check_reports_taken_and_invalid() {
    let app = test_app().await;
    app.admin("POST", "/api/v1/admin/apps", Some(json!({"slug": "taken"})))
        .await;
    let check = |slug: &'static str| {
        let app = &app;
        async move {
            app.admin(
                "GET",
                &format!("/api/v1/admin/apps/slug-check?slug={slug}"),
                None,
            )
            .await
            .json()
        }
    };
    assert_eq!(check("free").await, json!({"available": true}));
    assert_eq!(check("taken").await["available"], false);
    assert_eq!(check("-bad-").await["available"], false);
    assert!(check("-bad-").await["reason"].is_string());
}

#[tokio::test]
async fn domains_are_unique_across_apps_and_serve_the_app() {
    let app = test_app().await;
    let id = app.deploy("one", "\"from one\"", None).await;
    app.admin("POST", "/api/v1/admin/apps", Some(json!({"slug": "two"})))
        .await;
    let add = app
        .admin(
            "POST",
            "/api/v1/admin/apps/one/domains",
            Some(json!({"domain": "Api.Example.com"})),
        )
        .await;
    assert_eq!(add.status, 201, "{}", add.text());
    assert_eq!(add.json()["domains"], json!(["api.example.com"]));
    let taken = app
        .admin(
            "POST",
            "/api/v1/admin/apps/two/domains",
            Some(json!({"domain": "api.example.com"})),
        )
        .await;
    assert_eq!(taken.status, 409);
    let bad = app
        .admin(
            "POST",
            "/api/v1/admin/apps/two/domains",
            Some(json!({"domain": "127.0.0.1"})),
        )
        .await;
    assert_eq!(bad.status, 422);
    // The domain serves the app's routes without the slug prefix.
    let req = Request::builder()
        .uri(format!("/{id}/x"))
        .header("host", "api.example.com:8080")
        .body(Body::empty())
        .expect("req");
    let r = app.send(req).await;
    assert_eq!((r.status.as_u16(), r.text()), (200, "from one".to_owned()));
    assert_eq!(
        app.get("/api/v1/admin/domains/check?domain=api.example.com")
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/api/v1/admin/domains/check?domain=nope.example.com")
            .await
            .status,
        404
    );
    let removed = app
        .admin(
            "DELETE",
            "/api/v1/admin/apps/one/domains/api.example.com",
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        app.get("/api/v1/admin/domains/check?domain=api.example.com")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn scripts_version_and_roll_back() {
    let app = test_app().await;
    let id = app.deploy("v", "\"one\"", None).await;
    let put = app
        .admin(
            "PUT",
            &format!("/api/v1/admin/scripts/{id}"),
            Some(json!({"source": "\"two\""})),
        )
        .await;
    assert_eq!(put.json()["version"], 2);
    assert_eq!(app.get(&format!("/v/{id}/")).await.text(), "two");
    let versions = app
        .admin("GET", &format!("/api/v1/admin/scripts/{id}/versions"), None)
        .await
        .json();
    assert_eq!(versions["versions"][0]["version"], 2);
    assert_eq!(versions["versions"][0]["live"], true);
    let back = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{id}/rollback"),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(back.json()["version"], 1);
    assert_eq!(app.get(&format!("/v/{id}/")).await.text(), "one");
    // The next save is version 3, not 2 again.
    let put = app
        .admin(
            "PUT",
            &format!("/api/v1/admin/scripts/{id}"),
            Some(json!({"source": "\"three\""})),
        )
        .await;
    assert_eq!(put.json()["version"], 3);
    let bad = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{id}/rollback"),
            Some(json!({"version": 9})),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        app.admin("DELETE", &format!("/api/v1/admin/scripts/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(app.get(&format!("/v/{id}/")).await.status, 404);
    assert_eq!(
        app.admin("GET", &format!("/api/v1/admin/scripts/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_script_that_does_not_compile_is_422_with_line_and_position() {
    let app = test_app().await;
    app.admin("POST", "/api/v1/admin/apps", Some(json!({"slug": "c"})))
        .await;
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/c/scripts",
            Some(json!({"name": "broken", "source": "let x = 1;\nlet y = ;"})),
        )
        .await;
    assert_eq!(r.status, 422);
    let body = r.json();
    assert_eq!(body["code"], "compile_error");
    assert_eq!(body["line"], 2);
    assert!(body["position"].as_u64().is_some());
    let scripts = app
        .admin("GET", "/api/v1/admin/apps/c/scripts", None)
        .await
        .json();
    assert_eq!(scripts["scripts"], json!([]));
}

#[tokio::test]
async fn sandbox_overrides_above_the_ceiling_or_unknown_are_422() {
    let app = test_app().await;
    app.admin("POST", "/api/v1/admin/apps", Some(json!({"slug": "s"})))
        .await;
    let over = app
        .admin(
            "POST",
            "/api/v1/admin/apps/s/scripts",
            Some(json!({"name": "a", "source": "1", "sandbox": {"max_operations": 1_000_000_000_000u64}})),
        )
        .await;
    assert_eq!(over.status, 422);
    let body = over.json();
    assert_eq!(body["field"], "sandbox.max_operations");
    assert_eq!(body["requested"], 1_000_000_000_000u64);
    assert!(body["ceiling"].as_u64().is_some());
    let unknown = app
        .admin(
            "POST",
            "/api/v1/admin/apps/s/scripts",
            Some(json!({"name": "a", "source": "1", "sandbox": {"max_bananas": 1}})),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.json()["field"], "sandbox.max_bananas");
    let ok = app
        .admin(
            "POST",
            "/api/v1/admin/apps/s/scripts",
            Some(json!({"name": "a", "source": "1", "sandbox": {"max_operations": 5000}})),
        )
        .await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.json()["sandbox"]["max_operations"], 5000);
}

#[tokio::test]
async fn routes_conflict_on_duplicates_and_list_in_match_order() {
    let app = test_app().await;
    let id = app.deploy("r", "1", None).await;
    let add = |method: &'static str, path: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            app.admin(
                "POST",
                "/api/v1/admin/apps/r/routes",
                Some(json!({"method": method, "path": path, "script_id": id})),
            )
            .await
        }
    };
    assert_eq!(add("GET", "/users/:id").await.status, 201);
    let dup = add("GET", "/users/:other").await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["code"], "route_exists");
    assert_eq!(add("GET", "/users/me").await.status, 201);
    assert_eq!(add("BREW", "/coffee").await.status, 422);
    assert_eq!(add("GET", "users").await.status, 422);
    let routes = app
        .admin("GET", "/api/v1/admin/apps/r/routes", None)
        .await
        .json();
    let paths: Vec<&str> = routes["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    let me = paths.iter().position(|p| *p == "/users/me");
    let param = paths.iter().position(|p| *p == "/users/:id");
    assert!(me < param, "static before param: {paths:?}");
    let route_id = routes["routes"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.admin("DELETE", &format!("/api/v1/admin/routes/{route_id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.admin("DELETE", &format!("/api/v1/admin/routes/{route_id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn unknown_resources_are_404_json() {
    let app = test_app().await;
    for path in [
        "/api/v1/admin/apps/nope",
        "/api/v1/admin/scripts/nope",
        "/api/v1/admin/invocations/nope",
        "/api/v1/admin/no-such-endpoint",
    ] {
        let r = app.admin("GET", path, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn the_event_log_can_be_browsed_and_filtered() {
    let app = test_app().await;
    app.deploy("ev", "1", None).await;
    let all = app
        .admin("GET", "/api/v1/admin/events?limit=1000", None)
        .await
        .json();
    let events = all["events"].as_array().expect("events");
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for t in [
        "AppCreated",
        "ScriptCreated",
        "ScriptVersionSaved",
        "RouteAdded",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let first = &events[0];
    for field in [
        "position",
        "stream",
        "version",
        "type",
        "data",
        "metadata",
        "recorded_at",
    ] {
        assert!(!first[field].is_null(), "{field}");
    }
    let by_app = app
        .admin("GET", "/api/v1/admin/events?app=ev&type=RouteAdded", None)
        .await
        .json();
    assert_eq!(by_app["events"].as_array().map(Vec::len), Some(1));
    assert!(
        by_app["events"][0]["metadata"]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("user:"))
    );
    let paged = app
        .admin("GET", "/api/v1/admin/events?limit=2", None)
        .await
        .json();
    let next = paged["next"].as_i64().expect("next cursor");
    let rest = app
        .admin(
            "GET",
            &format!("/api/v1/admin/events?after={next}&limit=1000"),
            None,
        )
        .await
        .json();
    assert_eq!(
        rest["events"].as_array().map(Vec::len).unwrap_or(0) + 2,
        events.len()
    );
    assert_eq!(
        app.admin("GET", "/api/v1/admin/events?after=x", None)
            .await
            .status,
        422
    );
    assert_eq!(
        app.admin("GET", "/api/v1/admin/events?limit=0", None)
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn the_owner_token_works_with_either_bearer_spelling() {
    let app = test_app().await;
    let req = Request::builder()
        .uri("/api/v1/admin/apps")
        .header("authorization", format!("bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req");
    assert_eq!(app.send(req).await.status, 200);
}
