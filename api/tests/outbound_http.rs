//! Scripts' outbound HTTP through a whole node: the executor lends the guarded
//! client to every run. The reachable server listens on 127.0.0.2, exempted the way
//! an operator would (`PICLOUD_HTTP_ALLOW_CIDRS`); nothing leaves loopback.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_calls_out_and_answers_with_what_it_got() {
    let (app, server) = common::test_app_with_http_server().await;
    let source = format!(
        r#"let r = http::get("{}");
           #{{ status: 200, body: #{{ upstream: r.status, ok: r.body.ok }} }}"#,
        server.url("/json")
    );
    let id = app.deploy("caller", &source, None).await;
    let r = app.get(&format!("/caller/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({ "upstream": 200, "ok": true }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_is_a_script_error_and_the_node_stays_healthy() {
    let (app, _server) = common::test_app_with_http_server().await;
    let id = app
        .deploy("refused", r#"http::get("http://2130706433:8080/")"#, None)
        .await;
    let r = app.get(&format!("/refused/{id}/")).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["code"], "script_error");
    let message = r.json()["error"].as_str().expect("error").to_owned();
    assert!(
        message.contains("http: destination refused (loopback)"),
        "{message}"
    );
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_a_slow_upstream_ends_in_a_504() {
    let (app, server) = common::test_app_with_http_server().await;
    let source = format!(r#"http::get("{}")"#, server.url("/hang"));
    let id = app
        .deploy(
            "slow",
            &source,
            Some(serde_json::json!({ "timeout_ms": 300 })),
        )
        .await;
    let r = app.get(&format!("/slow/{id}/")).await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["code"], "timeout");
}
