//! Triggers through the router: webhooks (signatures, dedupe, body cap, enable and
//! delete), cron schedules firing through the outbox, and event subscriptions'
//! validation.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use common::{Reply, TestApp, test_app_with};
use hmac::{Hmac, Mac};
use picloud_actors::RuntimeConfig;
use picloud_api::ApiConfig;
use serde_json::{Value, json};
use sha2::Sha256;

async fn app() -> TestApp {
    test_app_with(
        RuntimeConfig {
            retry_base: Duration::from_millis(20),
            ..RuntimeConfig::default()
        },
        ApiConfig {
            body_limit: 4096,
            ..ApiConfig::default()
        },
    )
    .await
}

async fn webhook(
    app: &TestApp,
    slug: &str,
    source: &str,
    secret: Option<&str>,
) -> (String, String) {
    let script = app.deploy(slug, source, None).await;
    let mut body = json!({ "script_id": script });
    if let Some(s) = secret {
        body["secret"] = json!(s);
    }
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/triggers/webhook"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let t = r.json();
    assert_eq!(t["kind"], "webhook");
    assert_eq!(
        t["url"],
        format!("/hooks/{}", t["id"].as_str().expect("id"))
    );
    assert!(t.get("secret").is_none(), "the secret is never shown: {t}");
    (t["id"].as_str().expect("id").to_owned(), script)
}

async fn post_hook(app: &TestApp, id: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/hooks/{id}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.send(req.body(Body::from(body.to_owned())).expect("request"))
        .await
}

async fn wait_doc(app: &TestApp, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..1500 {
        let r = app
            .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
            .await;
        if r.status == 200 {
            last = r.json();
            if last["status"] == status {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("invocation {id} never reached {status}: {last}");
}

fn log_messages(doc: &Value) -> Vec<String> {
    doc["logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivery_is_queued_once_and_the_script_sees_it() {
    let app = app().await;
    let (id, _) = webhook(
        &app,
        "hooked",
        r#"log::info(`${ctx.event.kind} ${ctx.event.json.n} ${ctx.request.method} ${ctx.event.headers["x-custom"]}`);
           log::info(`${ctx.request.json.n} ${ctx.request.headers["x-custom"]} ${ctx.request.body} ${ctx.event.body}`);
           "ok""#,
        None,
    )
    .await;
    let head = [
        ("webhook-id", "msg_1"),
        ("x-custom", "yes"),
        ("authorization", "Bearer hidden"),
    ];
    let r = post_hook(&app, &id, &head, r#"{"n": 42}"#).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let invocation = r.json()["invocation_id"].as_str().expect("id").to_owned();
    // The same delivery again: the first invocation, not a second one.
    let again = post_hook(&app, &id, &head, r#"{"n": 42}"#).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["invocation_id"], invocation.as_str());
    assert_eq!(again.json()["duplicate"], true);

    let doc = wait_doc(&app, &invocation, "succeeded").await;
    assert_eq!(doc["trigger"], "webhook");
    assert_eq!(
        log_messages(&doc),
        ["webhook 42 POST yes", r#"42 yes {"n": 42} {"n": 42}"#]
    );
    // Exactly one invocation for the two posts, and no credential in the log.
    let r = app
        .admin("GET", "/api/v1/admin/apps/hooked/invocations", None)
        .await;
    assert_eq!(r.json()["invocations"].as_array().map(Vec::len), Some(1));
    let r = app
        .admin(
            "GET",
            &format!("/api/v1/admin/events?stream=invocation-{invocation}"),
            None,
        )
        .await;
    assert!(!r.text().contains("Bearer hidden"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_need_a_valid_signature() {
    let app = app().await;
    let key = b"0123456789abcdef0123456789abcdef";
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let (id, _) = webhook(&app, "signed", "\"ok\"", Some(&secret)).await;
    let body = r#"{"type":"ping"}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
    mac.update(format!("msg_9.{ts}.{body}").as_bytes());
    let sig = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let head = app.runtime.store.head_position().await.expect("head");
    for (headers, why) in [
        (vec![], "unsigned"),
        (
            vec![
                ("webhook-id", "msg_9"),
                ("webhook-timestamp", ts.as_str()),
                ("webhook-signature", "v1,AAAA"),
            ],
            "wrong signature",
        ),
        (
            vec![
                ("webhook-id", "msg_9"),
                ("webhook-timestamp", "1000"),
                ("webhook-signature", sig.as_str()),
            ],
            "stale timestamp",
        ),
        (
            vec![("x-hub-signature-256", "sha256=00")],
            "wrong GitHub signature",
        ),
    ] {
        let r = post_hook(&app, &id, &headers, body).await;
        assert_eq!(r.status, 401, "{why}: {}", r.text());
        assert_eq!(r.json()["code"], "invalid_signature", "{why}");
    }
    assert_eq!(
        app.runtime.store.head_position().await.expect("head"),
        head,
        "nothing queued"
    );

    let good = [
        ("webhook-id", "msg_9"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    let r = post_hook(&app, &id, &good, body).await;
    assert_eq!(r.status, 202, "{}", r.text());

    // GitHub's scheme with the same key.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
    mac.update(body.as_bytes());
    let gh = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let github = [
        ("x-hub-signature-256", gh.as_str()),
        ("x-github-delivery", "d-1"),
    ];
    let r = post_hook(&app, &id, &github, body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let first = r.json()["invocation_id"].clone();
    // GitHub redelivers with the same X-GitHub-Delivery: not queued twice.
    let again = post_hook(&app, &id, &github, body).await;
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(again.json()["invocation_id"], first);
    assert_eq!(again.json()["duplicate"], true);
    // And the secret never shows in the event log.
    let r = app
        .admin("GET", "/api/v1/admin/events?type=TriggerCreated", None)
        .await;
    assert!(!r.text().contains(&secret), "{}", r.text());
    assert!(
        r.text().contains(r#""sealed_secret":"[sealed]""#),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_deleted_or_oversized_deliveries_are_refused() {
    let app = app().await;
    let (id, _) = webhook(&app, "gated", "\"ok\"", None).await;
    assert_eq!(post_hook(&app, "nope", &[], "{}").await.status, 404);
    let big = "x".repeat(5000);
    assert_eq!(post_hook(&app, &id, &[], &big).await.status, 413);

    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/triggers/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enabled"], false);
    assert_eq!(post_hook(&app, &id, &[], "{}").await.status, 404);
    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/triggers/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(post_hook(&app, &id, &[], "{}").await.status, 202);

    let r = app
        .admin("GET", "/api/v1/admin/apps/gated/triggers", None)
        .await;
    assert_eq!(r.json()["triggers"].as_array().map(Vec::len), Some(1));
    let r = app
        .admin("DELETE", &format!("/api/v1/admin/triggers/{id}"), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(post_hook(&app, &id, &[], "{}").await.status, 404);
    let r = app
        .admin("DELETE", &format!("/api/v1/admin/triggers/{id}"), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_settings_are_validated() {
    let app = app().await;
    let script = app.deploy("checked", "\"ok\"", None).await;
    // A script of another app is no target: events stay within their app.
    let foreign = app.deploy("elsewhere", "\"ok\"", None).await;
    let cases = [
        (
            "event",
            json!({"script_id": foreign, "event": "order.paid"}),
            "script_id",
        ),
        (
            "cron",
            json!({"script_id": script, "schedule": "* * * *", "timezone": "UTC"}),
            "schedule",
        ),
        (
            "cron",
            json!({"script_id": script, "schedule": "0 * * * * *", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            "cron",
            json!({"script_id": "missing", "schedule": "0 * * * * *", "timezone": "UTC"}),
            "script_id",
        ),
        (
            "event",
            json!({"script_id": script, "event": "has space"}),
            "event",
        ),
        (
            "webhook",
            json!({"script_id": script, "secret": ""}),
            "secret",
        ),
        (
            "webhook",
            json!({"script_id": script, "max_attempts": 0}),
            "max_attempts",
        ),
    ];
    let head = app.runtime.store.head_position().await.expect("head");
    for (kind, body, field) in cases {
        let r = app
            .admin(
                "POST",
                &format!("/api/v1/admin/apps/checked/triggers/{kind}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{body}: {}", r.text());
    }
    assert_eq!(app.runtime.store.head_position().await.expect("head"), head);
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/checked/triggers/event",
            Some(json!({"script_id": script, "event": "order.paid"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["event"], "order.paid");

    // A cron trigger's next tick is in its answer and in the list.
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/checked/triggers/cron",
            Some(
                json!({"script_id": script, "schedule": "0 0 12 * * *", "timezone": "Asia/Tokyo"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let next = r.json()["next_fire_at"].clone();
    assert!(
        next.as_str()
            .is_some_and(|n| n.ends_with("T12:00:00+09:00")),
        "{next}"
    );
    let r = app
        .admin("GET", "/api/v1/admin/apps/checked/triggers", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json()["triggers"]
        .as_array()
        .and_then(|l| l.iter().find(|t| t["kind"] == "cron").cloned())
        .expect("the cron trigger is listed");
    assert_eq!(listed["next_fire_at"], next, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_trigger_fires_every_second_through_the_outbox() {
    let app = app().await;
    let script = app
        .deploy(
            "ticks",
            "log::info(ctx.event.cron.scheduled_at); \"tick\"",
            None,
        )
        .await;
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/ticks/triggers/cron",
            Some(json!({"script_id": script, "schedule": "* * * * * *", "timezone": "Europe/Berlin"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let trigger = r.json();
    let next = trigger["next_fire_at"].as_str().expect("next_fire_at");
    assert!(
        next.ends_with("+01:00") || next.ends_with("+02:00"),
        "{next}"
    );

    // Twenty seconds of an every-second schedule: 19 to 21 ticks, each its own
    // scheduled second, each run once.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let id = trigger["id"].as_str().expect("id");
    let r = app
        .admin(
            "PATCH",
            &format!("/api/v1/admin/triggers/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["next_fire_at"], Value::Null);
    let claimed = app
        .runtime
        .store
        .read_stream(&format!("cron-{id}"), 1, 1000)
        .await
        .expect("ticks");
    assert!(
        (19..=21).contains(&claimed.len()),
        "{} ticks in 20 s",
        claimed.len()
    );
    let mut scheduled: Vec<String> = Vec::new();
    for _ in 0..1000 {
        let r = app
            .admin(
                "GET",
                "/api/v1/admin/apps/ticks/invocations?status=succeeded&limit=100",
                None,
            )
            .await;
        let ids: Vec<String> = r.json()["invocations"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() >= claimed.len() {
            scheduled.clear();
            for id in ids {
                let doc = app
                    .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
                    .await
                    .json();
                assert_eq!(doc["trigger"], "cron");
                scheduled.extend(log_messages(&doc));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        scheduled.len(),
        claimed.len(),
        "every claimed tick ran once"
    );
    let mut distinct = scheduled.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        scheduled.len(),
        "distinct scheduled_at: {scheduled:?}"
    );
    // Disabled: no more ticks are claimed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = app
        .runtime
        .store
        .read_stream(&format!("cron-{id}"), 1, 1000)
        .await
        .expect("ticks");
    assert_eq!(after.len(), claimed.len(), "a disabled trigger stays quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_deliveries_are_all_accepted_and_run_once() {
    let app = app().await;
    // The script counts its own runs, per delivery, in kv.
    let (id, _) = webhook(
        &app,
        "burst",
        r#"kv::incr("n:" + ctx.event.json.n, 1); "ok""#,
        None,
    )
    .await;
    let mut tasks = Vec::new();
    for n in 0..1000 {
        let router = app.router.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::builder()
                .method("POST")
                .uri(format!("/hooks/{id}"))
                .header("webhook-id", format!("burst-{n}"))
                .body(Body::from(format!("{{\"n\":{n}}}")))
                .expect("request");
            let r = router.oneshot(req).await.expect("infallible");
            r.status().as_u16()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        if t.await.expect("task") == 202 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1000);
    // Every one runs, once: 1,000 completions, no more.
    let mut completed = 0;
    for _ in 0..3000 {
        let events = app
            .runtime
            .store
            .browse(
                &picloud_events::EventFilter {
                    event_type: Some("InvocationCompleted".into()),
                    ..Default::default()
                },
                0,
                5000,
            )
            .await
            .expect("browse");
        completed = events.len();
        if completed >= 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(completed, 1000);
    // And each delivery's script ran exactly once: 1,000 counters, each at 1.
    let app_id = app.app_id("burst").await;
    let counters = app
        .runtime
        .store
        .kv_list(&app_id, "n:", None, 2000)
        .await
        .expect("kv list");
    assert_eq!(counters.len(), 1000, "every delivery ran");
    let twice: Vec<_> = counters.iter().filter(|e| e.value != "1").collect();
    assert!(twice.is_empty(), "ran more than once: {twice:?}");
}

/// Deploy a named endpoint script in `slug` (no route); answers its id.
async fn script(app: &TestApp, slug: &str, name: &str, source: &str) -> String {
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/scripts"),
            Some(json!({"name": name, "source": source})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_owned()
}

async fn subscribe(app: &TestApp, slug: &str, script_id: &str, event: &str) {
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/apps/{slug}/triggers/event"),
            Some(json!({"script_id": script_id, "event": event})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

async fn invocations_of(app: &TestApp, slug: &str, trigger: &str) -> Vec<Value> {
    let r = app
        .admin(
            "GET",
            &format!("/api/v1/admin/apps/{slug}/invocations?limit=500"),
            None,
        )
        .await;
    r.json()["invocations"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|i| i["trigger"] == trigger)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emitted_event_runs_every_subscriber_of_the_app() {
    let app = app().await;
    let emitter = app
        .deploy(
            "shop",
            "#{ queued: events::emit(\"order.paid\", #{ n: 5 }) }",
            None,
        )
        .await;
    for name in ["mail", "invoice", "stats"] {
        let id = script(
            &app,
            "shop",
            name,
            &format!("log::info(`{name} ${{ctx.event.name}} ${{ctx.event.payload.n}} ${{ctx.event.depth}}`); ()"),
        )
        .await;
        subscribe(&app, "shop", &id, "order.paid").await;
    }
    // Another app's subscriber of the same name never runs.
    let foreign = app
        .deploy("elsewhere", "log::info(\"foreign\"); ()", None)
        .await;
    subscribe(&app, "elsewhere", &foreign, "order.paid").await;

    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{emitter}/invoke"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["queued"], 3);
    let mut lines = Vec::new();
    for _ in 0..1000 {
        let runs = invocations_of(&app, "shop", "event").await;
        let done: Vec<&Value> = runs.iter().filter(|i| i["status"] == "succeeded").collect();
        if done.len() == 3 {
            for i in done {
                let id = i["id"].as_str().expect("id");
                let doc = app
                    .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
                    .await
                    .json();
                lines.extend(log_messages(&doc));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lines.sort();
    assert_eq!(
        lines,
        [
            "invoice order.paid 5 1",
            "mail order.paid 5 1",
            "stats order.paid 5 1"
        ]
    );
    assert!(invocations_of(&app, "elsewhere", "event").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_loop_is_cut_by_the_depth_limit() {
    let app = app().await;
    let looper = app
        .deploy(
            "loop",
            "events::emit(\"ping\", ctx.event.depth ?? 0); ()",
            None,
        )
        .await;
    subscribe(&app, "loop", &looper, "ping").await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{looper}/invoke"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Depths 1..=8 run; the eighth cannot emit again and dies after its retries.
    let mut dead = Vec::new();
    for _ in 0..1500 {
        dead = invocations_of(&app, "loop", "event")
            .await
            .into_iter()
            .filter(|i| i["status"] == "dead")
            .collect();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dead.len(), 1, "one run hits the limit");
    let id = dead[0]["id"].as_str().expect("id");
    let doc = app
        .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
        .await
        .json();
    assert!(
        doc["error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("depth limit")),
        "{doc}"
    );
    assert_eq!(invocations_of(&app, "loop", "event").await.len(), 8);
    // The chain's depth is in each request's metadata: 1 to 8, once each.
    let r = app
        .admin(
            "GET",
            "/api/v1/admin/events?type=InvocationRequested&limit=100",
            None,
        )
        .await;
    let mut depths: Vec<u64> = r.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["metadata"]["depth"].as_u64())
        .collect();
    depths.sort_unstable();
    assert_eq!(depths, (1..=8).collect::<Vec<u64>>(), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_later_queues_a_script_of_the_same_app_only() {
    let app = app().await;
    let caller = app
        .deploy(
            "later",
            r#"
            let missing = "queued";
            try { invoke::later("secret_job", ()); } catch (e) { missing = `${e}`; }
            #{ id: invoke::later("worker", #{ x: 7 }), missing: missing }
            "#,
            None,
        )
        .await;
    script(
        &app,
        "later",
        "worker",
        "log::info(`work ${ctx.event.payload.x}`); ()",
    )
    .await;
    // A script of another app cannot be named.
    app.deploy("other", "()", None).await;
    script(&app, "other", "secret_job", "()").await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{caller}/invoke"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert!(
        answer["missing"]
            .as_str()
            .is_some_and(|m| m.contains("no endpoint script named")),
        "{answer}"
    );
    let id = answer["id"].as_str().expect("id").to_owned();
    let doc = wait_doc(&app, &id, "succeeded").await;
    assert_eq!(doc["trigger"], "async");
    assert_eq!(log_messages(&doc), ["work 7"]);
}

/// The next SSE event (`event:` name and parsed `data:`) of a stream, or `None`
/// when it ends or nothing comes within five seconds.
async fn next_event(body: &mut axum::body::Body, buffer: &mut String) -> Option<(String, Value)> {
    use http_body_util::BodyExt;
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if name.is_empty() {
                continue; // a keep-alive comment
            }
            return Some((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .ok()??
            .ok()?;
        if let Ok(bytes) = frame.into_data() {
            buffer.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_logs_stream_finished_runs_and_their_lines() {
    let app = app().await;
    let watched = app
        .deploy(
            "live",
            "log::info(`hello ${ctx.params.rest}`); \"ok\"",
            None,
        )
        .await;
    let other = app
        .deploy("live", "log::info(\"noise\"); \"ok\"", None)
        .await;
    let response = app
        .stream(&format!(
            "/api/v1/admin/apps/live/logs/stream?script={watched}"
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut body = response.into_body();
    let mut buffer = String::new();
    assert_eq!(app.get(&format!("/live/{other}/x")).await.status, 200);
    assert_eq!(app.get(&format!("/live/{watched}/pi")).await.status, 200);
    let (name, run) = next_event(&mut body, &mut buffer)
        .await
        .expect("an invocation");
    assert_eq!(name, "invocation");
    assert_eq!(
        run["script_id"],
        watched.as_str(),
        "the filter holds: {run}"
    );
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["log_count"], 1);
    let (name, line) = next_event(&mut body, &mut buffer)
        .await
        .expect("a log line");
    assert_eq!(name, "log");
    assert_eq!(line["line"]["message"], "hello pi");
    assert_eq!(line["invocation_id"], run["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_live_log_client_is_dropped_and_runs_go_on() {
    let app = app().await;
    let script = app.deploy("flood", "\"ok\"", None).await;
    let response = app.stream("/api/v1/admin/apps/flood/logs/stream").await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    // Never read while 1,100 runs finish: more than the live buffer holds.
    for _ in 0..1100 {
        assert_eq!(app.get(&format!("/flood/{script}/x")).await.status, 200);
    }
    let mut buffer = String::new();
    let mut dropped = None;
    while let Some((name, data)) = next_event(&mut body, &mut buffer).await {
        if name == "dropped" {
            dropped = Some(data);
            break;
        }
    }
    let dropped = dropped.expect("the lagging client was told and dropped");
    assert!(
        dropped["missed"].as_u64().is_some_and(|m| m > 0),
        "{dropped}"
    );
    assert!(
        next_event(&mut body, &mut buffer).await.is_none(),
        "the stream ended"
    );
}
