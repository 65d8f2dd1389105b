//! The invocation edge: `ctx`, result mapping, outcomes, load shedding, records.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{test_app, test_app_with};
use picloud_actors::RuntimeConfig;
use picloud_api::ApiConfig;
use serde_json::json;

#[tokio::test]
async fn ctx_carries_the_request_params_and_app() {
    let app = test_app().await;
    let id = app
        .deploy(
            "ctx",
            r#"#{ method: ctx.request.method, path: ctx.request.path, q: ctx.request.query.q,
                 h: ctx.request.headers["x-thing"], body: ctx.request.body, json: ctx.request.json,
                 rest: ctx.params.rest, slug: ctx.app.slug, kind: ctx.event.kind,
                 has_id: ctx.invocation_id.len() > 0 }"#,
            None,
        )
        .await;
    let req = Request::builder()
        .method("POST")
        .uri(format!("/ctx/{id}/a/b?q=1"))
        .header("X-Thing", "yes")
        .body(Body::from("{\"n\": 2}"))
        .expect("req");
    let r = app.send(req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"method": "POST", "path": format!("/{id}/a/b"), "q": "1", "h": "yes",
               "body": "{\"n\": 2}", "json": {"n": 2}, "rest": "a/b", "slug": "ctx",
               "kind": "http", "has_id": true})
    );
}

#[tokio::test]
async fn results_map_to_responses_as_the_contract_says() {
    let app = test_app().await;
    let cases = [
        ("\"text\"", 200, Some("text/plain"), "text"),
        ("[1, 2]", 200, Some("application/json"), "[1,2]"),
        ("()", 204, None, ""),
        (
            "#{ status: 201, headers: #{ \"x-a\": \"b\" }, body: #{ ok: true } }",
            201,
            Some("application/json"),
            "{\"ok\":true}",
        ),
        (
            "#{ status: 418, body: \"teapot\" }",
            418,
            Some("text/plain"),
            "teapot",
        ),
    ];
    for (source, status, content_type, body) in cases {
        let id = app.deploy("map", source, None).await;
        let r = app.get(&format!("/map/{id}/")).await;
        assert_eq!(r.status.as_u16(), status, "{source}");
        if let Some(ct) = content_type {
            assert!(
                r.header("content-type").is_some_and(|h| h.starts_with(ct)),
                "{source}: {:?}",
                r.header("content-type")
            );
        }
        assert_eq!(r.text(), body, "{source}");
    }
}

#[tokio::test]
async fn a_script_error_is_500_with_line_and_position() {
    let app = test_app().await;
    let id = app.deploy("err", "let a = 1;\nthrow \"boom\";", None).await;
    let r = app.get(&format!("/err/{id}/")).await;
    assert_eq!(r.status, 500);
    let body = r.json();
    assert_eq!(body["code"], "script_error");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("boom")));
    assert_eq!(body["line"], 2);
}

#[tokio::test]
async fn limits_are_507_naming_the_limit_and_the_wall_clock_is_504() {
    let app = test_app().await;
    let ops = app
        .deploy("lim", "loop {}", Some(json!({"max_operations": 10000})))
        .await;
    let r = app.get(&format!("/lim/{ops}/")).await;
    assert_eq!(r.status, 507);
    assert_eq!(r.json()["limit"], "max_operations");
    let strings = app
        .deploy("lim", "let s = \"x\"; loop { s += s; }", None)
        .await;
    let r = app.get(&format!("/lim/{strings}/")).await;
    assert_eq!(r.status, 507);
    assert_eq!(r.json()["limit"], "max_string_size");
    let slow = app
        .deploy(
            "lim",
            "loop {}",
            Some(json!({"timeout_ms": 200, "max_operations": 1_000_000_000})),
        )
        .await;
    let r = app.get(&format!("/lim/{slow}/")).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["code"], "timeout");
    // The node is fine afterwards.
    let ok = app.deploy("lim", "\"still here\"", None).await;
    assert_eq!(app.get(&format!("/lim/{ok}/")).await.text(), "still here");
}

#[tokio::test]
async fn modules_are_imported_from_the_same_app_only() {
    let app = test_app().await;
    app.admin("POST", "/api/v1/admin/apps", Some(json!({"slug": "mods"})))
        .await;
    let m = app
        .admin(
            "POST",
            "/api/v1/admin/apps/mods/scripts",
            Some(
                json!({"name": "greet", "kind": "module", "source": "fn hello(n) { \"hi \" + n }"}),
            ),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text());
    let id = app
        .deploy(
            "mods",
            "import \"greet\" as g; g::hello(ctx.params.rest)",
            None,
        )
        .await;
    assert_eq!(app.get(&format!("/mods/{id}/bob")).await.text(), "hi bob");
    // Another app cannot see it.
    let other = app
        .deploy("other", "import \"greet\" as g; g::hello(\"x\")", None)
        .await;
    let r = app.get(&format!("/other/{other}/")).await;
    assert_eq!(r.status, 500);
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("greet"))
    );
}

#[tokio::test]
async fn unknown_apps_and_paths_are_404_json() {
    let app = test_app().await;
    let id = app.deploy("known", "1", None).await;
    assert_eq!(app.get("/unknown/x").await.json()["code"], "not_found");
    let r = app.get("/known/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "no_route");
    assert_eq!(app.get(&format!("/known/{id}/x")).await.status, 200);
    // `GET /` is the dashboard now; other methods on `/` are still the edge's.
    assert_eq!(app.raw("POST", "/", "").await.status, 404);
}

#[tokio::test]
async fn an_invocation_body_over_the_cap_is_413() {
    let app = test_app_with(
        RuntimeConfig::default(),
        ApiConfig {
            body_limit: 512,
            ..ApiConfig::default()
        },
    )
    .await;
    let id = app.deploy("cap", "ctx.request.body.len()", None).await;
    let req = Request::builder()
        .method("POST")
        .uri(format!("/cap/{id}/"))
        .body(Body::from(vec![b'x'; 2000]))
        .expect("req");
    let r = app.send(req).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "body_too_large");
}

#[tokio::test]
async fn a_full_queue_sheds_load_with_503_and_retry_after() {
    let config = RuntimeConfig {
        slots: 1,
        queue: 1,
        ..RuntimeConfig::default()
    };
    let app = std::sync::Arc::new(test_app_with(config, ApiConfig::default()).await);
    let slow = app
        .deploy(
            "busy",
            "loop {}",
            Some(json!({"timeout_ms": 1500, "max_operations": 1_000_000_000})),
        )
        .await;
    let stats = app.runtime.executor.stats.clone();
    let first = {
        let app = app.clone();
        let path = format!("/busy/{slow}/");
        tokio::spawn(async move { app.get(&path).await.status.as_u16() })
    };
    wait_until(|| stats.busy.load(Ordering::Relaxed) == 1).await;
    let second = {
        let app = app.clone();
        let path = format!("/busy/{slow}/");
        tokio::spawn(async move { app.get(&path).await.status.as_u16() })
    };
    wait_until(|| stats.queued.load(Ordering::Relaxed) == 1).await;
    let third = app.get(&format!("/busy/{slow}/")).await;
    assert_eq!(third.status, 503);
    assert_eq!(third.json()["code"], "overloaded");
    assert_eq!(third.header("retry-after"), Some("1"));
    assert_eq!(first.await.ok(), Some(504));
    assert_eq!(second.await.ok(), Some(504));
}

async fn wait_until(mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 4 s");
}

#[tokio::test]
async fn runs_are_recorded_with_their_logs_and_listed_newest_first() {
    let app = test_app().await;
    let id = app
        .deploy("rec", "log::info(\"hello \" + ctx.params.rest); if ctx.params.rest == \"bad\" { throw \"no\" } \"ok\"", None)
        .await;
    let good = app.get(&format!("/rec/{id}/good")).await;
    let invocation = good.header("x-invocation-id").expect("id").to_owned();
    assert_eq!(app.get(&format!("/rec/{id}/bad")).await.status, 500);
    let detail = app.invocation_detail(&invocation).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["trigger"], "http");
    assert_eq!(detail["logs"][0]["message"], "hello good");
    assert_eq!(detail["logs"][0]["level"], "info");
    let mut list = json!(null);
    for _ in 0..400 {
        list = app
            .admin("GET", "/api/v1/admin/apps/rec/invocations", None)
            .await
            .json();
        if list["invocations"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(list["invocations"][0]["status"], "failed", "{list}");
    assert_eq!(list["invocations"][1]["status"], "succeeded");
    let failed = app
        .admin(
            "GET",
            "/api/v1/admin/apps/rec/invocations?status=failed",
            None,
        )
        .await
        .json();
    assert_eq!(failed["invocations"].as_array().map(Vec::len), Some(1));
    assert_eq!(failed["invocations"][0]["error"]["code"], "script_error");
    assert_eq!(
        app.admin(
            "GET",
            "/api/v1/admin/apps/rec/invocations?status=weird",
            None
        )
        .await
        .status,
        422
    );
}

#[tokio::test]
async fn the_admin_invoke_runs_the_live_version_with_a_payload() {
    let app = test_app().await;
    let id = app
        .deploy(
            "inv",
            "#{ kind: ctx.event.kind, got: ctx.event.payload.n }",
            None,
        )
        .await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{id}/invoke"),
            Some(json!({"payload": {"n": 7}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"kind": "manual", "got": 7}));
    assert!(r.header("x-invocation-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_runs_answers_and_slots() {
    let app = common::test_app().await;
    let id = app.deploy("metered", "\"ok\"", None).await;
    let entry = app.runtime.catalog.app_by_slug("metered").expect("app");
    for _ in 0..3 {
        assert_eq!(app.get(&format!("/metered/{id}/x")).await.status, 200);
    }
    assert_eq!(app.get("/metered/nowhere").await.status, 404);
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let text = r.text();
    let runs = format!(
        "picloud_invocations_total{{app=\"{}\",script=\"{id}\",trigger=\"http\",status=\"succeeded\"}} 3",
        entry.app.id
    );
    assert!(text.contains(&runs), "{text}");
    assert!(
        text.contains("picloud_http_responses_total{kind=\"edge\",class=\"2xx\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("picloud_http_responses_total{kind=\"edge\",class=\"4xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("picloud_invocation_duration_seconds_count 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE picloud_slots_busy gauge"), "{text}");
    assert!(text.contains("picloud_projection_lag_outbox "), "{text}");
    assert!(
        text.contains("picloud_invocation_records_dropped 0"),
        "{text}"
    );
}
