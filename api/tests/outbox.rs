//! The universal outbox through the admin API: asynchronous invokes are accepted
//! at once (202) and run by the dispatcher; failures are retried with exponential
//! backoff, then dead-lettered; a dead invocation is re-driven with one call.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{TestApp, test_app_with};
use picloud_actors::RuntimeConfig;
use picloud_api::ApiConfig;
use serde_json::{Value, json};

const BASE_MS: u64 = 50;

async fn app() -> TestApp {
    test_app_with(
        RuntimeConfig {
            retry_base: Duration::from_millis(BASE_MS),
            retry_max: Duration::from_secs(2),
            ..RuntimeConfig::default()
        },
        ApiConfig::default(),
    )
    .await
}

async fn invoke_async(app: &TestApp, script: &str, body: Value) -> String {
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{script}/invoke?async=true"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()["invocation_id"]
        .as_str()
        .expect("invocation_id")
        .to_owned()
}

/// Wait (bounded) until the invocation's document has `status`.
async fn wait_status(app: &TestApp, id: &str, status: &str) -> Value {
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
    panic!("invocation {id} never reached {status}; last seen {last}");
}

/// The invocation's stream, as the admin browses it.
async fn stream(app: &TestApp, id: &str) -> Vec<Value> {
    let r = app
        .admin(
            "GET",
            &format!("/api/v1/admin/events?stream=invocation-{id}&limit=100"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["events"].as_array().cloned().unwrap_or_default()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_invoke_is_accepted_then_run_once() {
    let app = app().await;
    let script = app
        .deploy(
            "jobs",
            "#{ got: ctx.event.payload, kind: ctx.event.kind }",
            None,
        )
        .await;
    let id = invoke_async(&app, &script, json!({"payload": {"n": 7}})).await;
    let doc = wait_status(&app, &id, "succeeded").await;
    assert_eq!(doc["trigger"], "async");
    assert_eq!(doc["attempts"], 1);
    assert_eq!(doc["max_attempts"], 5, "the default");
    assert_eq!(doc["response_status"], 200);
    let types: Vec<Value> = stream(&app, &id)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types,
        [json!("InvocationRequested"), json!("InvocationCompleted")]
    );
    // Listed with the app's other invocations.
    let r = app
        .admin(
            "GET",
            "/api/v1/admin/apps/jobs/invocations?status=succeeded",
            None,
        )
        .await;
    assert!(
        r.json()["invocations"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["id"] == id.as_str())),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_then_die_and_redrive_runs_again() {
    let app = app().await;
    let script = app
        .deploy(
            "flaky",
            "log::info(`${ctx.event.attempt} ${ctx.event.idempotency_key}`); throw \"always\";",
            None,
        )
        .await;
    let id = invoke_async(&app, &script, json!({"max_attempts": 3})).await;
    let dead = wait_status(&app, &id, "dead").await;
    assert_eq!(dead["attempts"], 3);
    // Each attempt knows its number; the idempotency key stays the same.
    assert_eq!(
        dead["logs"][0]["message"],
        format!("3 async:{id}"),
        "{dead}"
    );
    assert!(
        dead["error"]["error"]
            .as_str()
            .is_some_and(|m| m.contains("always")),
        "{dead}"
    );

    let events = stream(&app, &id).await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "InvocationRequested",
            "InvocationAttemptFailed",
            "InvocationAttemptFailed",
            "InvocationDead"
        ]
    );
    // Attempt n waits base × 2^(n−1), plus at most 25% jitter, after attempt n ended;
    // and the next attempt starts no earlier than scheduled.
    for (n, pair) in events[1..].windows(2).enumerate() {
        let failed = &pair[0]["data"];
        let attempt = n as u32 + 1;
        assert_eq!(failed["record"]["attempt"], attempt);
        let ended = time(&failed["record"]["ended_at"]);
        let next = time(&failed["next_attempt_at"]);
        let delay = (next - ended).num_milliseconds();
        let plain = (BASE_MS << n) as i64;
        assert!(
            delay >= plain && delay <= plain + plain / 4 + 1,
            "attempt {attempt}: delay {delay} ms, expected {plain}..{} ms",
            plain + plain / 4
        );
        let record = pair[1]["data"].get("record").unwrap_or(&pair[1]["data"]);
        let started = time(&record["started_at"]);
        assert!(started >= next, "attempt {} started early", attempt + 1);
    }

    // Re-drive: queued again, three more attempts, dead again.
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/invocations/{id}/redrive"),
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "queued");
    let mut again = Vec::new();
    for _ in 0..1500 {
        again = stream(&app, &id).await;
        if again.len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let types: Vec<&str> = again.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types[4..],
        [
            "InvocationRedriven",
            "InvocationAttemptFailed",
            "InvocationAttemptFailed",
            "InvocationDead"
        ]
    );
    let dead = wait_status(&app, &id, "dead").await;
    assert_eq!(dead["attempts"], 3);
    assert!(dead["redriven_at"].is_string(), "{dead}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_refuses_what_is_not_dead_and_bad_input_changes_nothing() {
    let app = app().await;
    let ok = app.deploy("refuse", "\"fine\"", None).await;
    let id = invoke_async(&app, &ok, json!({})).await;
    wait_status(&app, &id, "succeeded").await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/invocations/{id}/redrive"),
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "not_dead");

    // A synchronous run has nothing to re-drive.
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/scripts/{ok}/invoke"),
            Some(json!({})),
        )
        .await;
    let sync = r.header("x-invocation-id").expect("id").to_owned();
    wait_status(&app, &sync, "succeeded").await;
    let r = app
        .admin(
            "POST",
            &format!("/api/v1/admin/invocations/{sync}/redrive"),
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());

    let r = app
        .admin("POST", "/api/v1/admin/invocations/nope/redrive", None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    let head = app.runtime.store.head_position().await.expect("head");
    for bad in [
        json!({"max_attempts": 0}),
        json!({"max_attempts": 26}),
        json!({"max_attempts": "x"}),
    ] {
        let r = app
            .admin(
                "POST",
                &format!("/api/v1/admin/scripts/{ok}/invoke?async=true"),
                Some(bad.clone()),
            )
            .await;
        assert!(r.status == 422 || r.status == 400, "{bad}: {}", r.text());
    }
    assert_eq!(
        app.runtime.store.head_position().await.expect("head"),
        head,
        "nothing appended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_invocation_whose_script_is_gone_dies_without_retrying() {
    let app = app().await;
    app.deploy("gone", "\"kept\"", None).await;
    let entry = app.runtime.catalog.app_by_slug("gone").expect("app");
    // Queued for a script that no longer exists (deleted after the request).
    let id = uuid::Uuid::now_v7().to_string();
    let request = picloud_events::domain::InvocationRequest {
        id: id.clone(),
        app_id: entry.app.id.clone(),
        script_id: uuid::Uuid::now_v7().to_string(),
        trigger: "async".into(),
        trigger_id: None,
        event: json!({"kind": "async"}),
        request: None,
        max_attempts: 5,
        idempotency_key: format!("test:{id}"),
        requested_at: Utc::now(),
        depth: 0,
        lease: None,
    };
    app.runtime
        .enqueue(request, &picloud_events::Metadata::default(), Vec::new())
        .await
        .expect("enqueue");
    let doc = wait_status(&app, &id, "dead").await;
    assert_eq!(doc["attempts"], 1, "never retried: {doc}");
    assert_eq!(doc["error"]["code"], "script_not_found", "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_runs_where_it_was_accepted_and_no_other_node_claims_it_meanwhile() {
    let app = app().await;
    // Two seconds of work, then a failure: the first attempt is still running
    // while its outbox row exists.
    let slow = app
        .deploy(
            "held",
            "loop {}",
            Some(json!({"timeout_ms": 2000, "max_operations": 1_000_000_000_u64})),
        )
        .await;
    let started = std::time::Instant::now();
    let id = invoke_async(&app, &slow, json!({})).await;
    let store = &app.runtime.store;
    // The outbox projection writes its row leased to this node: the earliest a
    // row becomes claimable is the end of that lease, far beyond the run.
    let mut next = None;
    for _ in 0..500 {
        next = store.next_delivery_at().await.expect("next");
        if next.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let next = next.expect("the outbox row is written");
    let now = Utc::now().timestamp_micros();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the row was seen while the run goes on"
    );
    assert!(
        next > now + 10_000_000,
        "leased for the run (next claimable in {} µs)",
        next - now
    );
    let taken = store
        .claim_deliveries("another-node", now, now + 60_000_000, 10)
        .await
        .expect("claim");
    assert!(taken.is_empty(), "claimed while it runs here: {taken:?}");
    // The attempt ends (out of time) and is recorded once, as attempt 1.
    let mut doc = wait_status(&app, &id, "queued").await;
    for _ in 0..500 {
        if doc["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        doc = app
            .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
            .await
            .json();
    }
    assert_eq!(doc["attempts"], 1, "{doc}");
    assert_eq!(doc["last_status"], "timed_out", "{doc}");
}
