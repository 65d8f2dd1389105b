//! The `ctx` constant (CONTRACT.md, "Invocation").

use bytes::Bytes;
use picloud_sandbox::{HttpRequest, Limits, NoModules};

use crate::common::*;

fn request() -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/orders/42".into(),
        query: vec![
            ("page".into(), "2".into()),
            ("page".into(), "3".into()),
            ("q".into(), "tea".into()),
        ],
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Tag".into(), "a".into()),
            ("x-tag".into(), "b".into()),
        ],
        body: Bytes::from_static(br#"{"qty": 3, "items": ["tea"]}"#),
    }
}

fn run_http(source: &str, request: HttpRequest) -> String {
    body(&run_full(
        source,
        &Limits::DEFAULT,
        http_input(request),
        &NoModules,
    ))
}

#[test]
fn request_fields_are_exposed() {
    let out = run_http(
        "let r = ctx.request; [r.method, r.path, r.query.page, r.query.q, r.headers[\"content-type\"], r.headers[\"x-tag\"]]",
        request(),
    );
    assert_eq!(
        out,
        r#"["POST","/orders/42","2","tea","application/json","a, b"]"#
    );
}

#[test]
fn body_is_text_and_json_is_parsed() {
    let out = run_http(
        "[ctx.request.body.len(), ctx.request.json.qty, ctx.request.json.items[0]]",
        request(),
    );
    assert_eq!(out, r#"[28,3,"tea"]"#);
}

#[test]
fn json_is_unit_when_the_body_is_not_json_and_body_is_lossy_utf8() {
    let req = HttpRequest {
        body: Bytes::from_static(b"a=1&\xff"),
        ..request()
    };
    assert_eq!(
        run_http("[ctx.request.json == (), ctx.request.body]", req),
        "[true,\"a=1&\u{fffd}\"]"
    );
}

#[test]
fn json_is_unit_and_body_empty_without_a_body() {
    let req = HttpRequest {
        body: Bytes::new(),
        ..request()
    };
    assert_eq!(
        run_http("[ctx.request.json == (), ctx.request.body]", req),
        "[true,\"\"]"
    );
}

#[test]
fn request_is_unit_without_an_http_request() {
    assert_eq!(body(&run("ctx.request == ()")), "true");
}

#[test]
fn params_event_app_and_invocation_id_are_exposed() {
    let mut input = input();
    input.params.insert("id".into(), "42".into());
    input.event = serde_json::json!({
        "kind": "cron",
        "cron": {"schedule": "0 * * * * *", "scheduled_at": "2024-01-01T00:00:00Z", "timezone": "UTC"}
    });
    let r = run_full(
        "#{ id: ctx.params.id, kind: ctx.event.kind, tz: ctx.event.cron.timezone, app: ctx.app, inv: ctx.invocation_id }",
        &Limits::DEFAULT,
        input,
        &NoModules,
    );
    let json: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id": "42", "kind": "cron", "tz": "UTC", "app": {"id": "app-1", "slug": "demo"}, "inv": "inv-1"})
    );
}

#[test]
fn ctx_is_constant() {
    for source in [
        "ctx = 1;",
        r#"ctx.app.id = "x";"#,
        r#"ctx.app.id += "x";"#,
        r#"ctx.event.kind = "cron";"#,
        "ctx.app.clear();",
    ] {
        let message = script_error(&run(source));
        assert!(
            message.to_lowercase().contains("constant"),
            "{source}: {message}"
        );
    }
    // A copy can be changed freely, and ctx itself is untouched.
    assert_eq!(
        body(&run(
            r#"let c = ctx; c.app.id = "x"; let a = ctx.app; a.slug += "!"; [c.app.id, a.slug, ctx.app.id]"#
        )),
        r#"["x","demo!","app-1"]"#
    );
}

#[test]
fn scripts_see_nothing_of_the_host() {
    for source in [
        r#"eval("1 + 1")"#,
        r#"import "/etc/passwd" as p;"#,
        "sleep(1)",
        "sleep(0.5)",
    ] {
        let r = run(source);
        assert!(
            matches!(r.outcome, picloud_sandbox::Outcome::ScriptError { .. }),
            "{source}: {:?}",
            r.outcome
        );
    }
    assert!(SANDBOX.compile(r#"eval("1")"#).is_err());
}
