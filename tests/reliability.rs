//! Nothing accepted is lost: webhook deliveries accepted (202) by a node that is
//! then killed with SIGKILL while it runs them all run after a restart; so do the
//! cron ticks it had claimed, and the ticks missed while it was down fire once.
//! Two nodes on one PostgreSQL fire each tick of a trigger once.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Node, eventually, postgres_database, request};
use serde_json::json;

const TOKEN: &str = "pc_reliability_token_0123456789";
const DELIVERIES: usize = 30;

#[test]
fn deliveries_leased_by_a_killed_node_run_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let envs = [("PICLOUD_BOOTSTRAP_TOKEN", TOKEN), ("PICLOUD_SLOTS", "1")];
    let mut node = Node::start(&data, None, &envs);
    let r = node.call(
        "POST",
        "/api/v1/admin/apps",
        TOKEN,
        Some(json!({"slug": "durable"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // Slow enough that a kill lands while deliveries are leased and running.
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/durable/scripts",
        TOKEN,
        Some(json!({"name": "slow", "source": "let i = 0; while i < 60000 { i += 1; } ctx.event.json.n"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let script = r.json()["id"].as_str().expect("id").to_owned();
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/durable/triggers/webhook",
        TOKEN,
        Some(json!({"script_id": script})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = r.json()["url"].as_str().expect("url").to_owned();

    let mut accepted = Vec::new();
    for n in 0..DELIVERIES {
        let id = format!("delivery-{n}");
        let body = json!({ "n": n }).to_string();
        let r = request(
            &node.addr,
            "POST",
            &hook,
            &[
                ("webhook-id", id.as_str()),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
        .expect("post");
        assert_eq!(r.status, 202, "{}", r.text());
        accepted.push(r.json()["invocation_id"].as_str().expect("id").to_owned());
    }
    let succeeded = |node: &Node| -> usize {
        let r = node.call(
            "GET",
            "/api/v1/admin/apps/durable/invocations?status=succeeded&limit=500",
            TOKEN,
            None,
        );
        r.json()["invocations"].as_array().map_or(0, Vec::len)
    };
    // Kill it mid-way: some done, the rest queued or leased and running.
    let started = eventually(Duration::from_secs(60), || {
        (succeeded(&node) >= 1).then_some(())
    });
    assert!(started.is_some(), "the node never ran a delivery");
    node.child.kill().expect("SIGKILL");
    let _ = node.child.wait();
    drop(node);

    let node = Node::start(&data, None, &envs);
    let all = eventually(Duration::from_secs(120), || {
        (succeeded(&node) >= DELIVERIES).then_some(())
    });
    assert!(
        all.is_some(),
        "only {} of {DELIVERIES} ran",
        succeeded(&node)
    );
    for id in &accepted {
        let r = node.call(
            "GET",
            &format!("/api/v1/admin/invocations/{id}"),
            TOKEN,
            None,
        );
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(r.json()["status"], "succeeded", "{id}: {}", r.text());
    }
    assert_eq!(succeeded(&node), DELIVERIES, "each ran to completion once");
    node.stop();
}

/// An app `ticks` whose script `slow` (a moment of work) logs its tick's
/// `scheduled_at` and counts its runs in kv under `run:<scheduled_at>`, and an
/// every-second cron trigger on it.
/// The trigger's id.
fn every_second_trigger(node: &Node) -> String {
    let r = node.call(
        "POST",
        "/api/v1/admin/apps",
        TOKEN,
        Some(json!({"slug": "ticks"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/ticks/scripts",
        TOKEN,
        Some(json!({"name": "slow", "source":
            "let i = 0; while i < 200000 { i += 1; } let at = ctx.event.cron.scheduled_at; \
             log::info(at); kv::incr(\"run:\" + at, 1); \"tick\""})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let script = r.json()["id"].as_str().expect("id").to_owned();
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/ticks/triggers/cron",
        TOKEN,
        Some(json!({"script_id": script, "schedule": "* * * * * *", "timezone": "UTC"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_owned()
}

/// The ticks claimed so far: (scheduled_at, invocation id), in claim order.
fn claims(node: &Node, trigger: &str) -> Vec<(DateTime<Utc>, String)> {
    let r = node.call(
        "GET",
        &format!("/api/v1/admin/events?stream=cron-{trigger}&limit=1000"),
        TOKEN,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let at = e["data"]["scheduled_at"].as_str().expect("scheduled_at");
            let at = DateTime::parse_from_rfc3339(at).expect("rfc3339");
            let id = e["data"]["invocation_id"].as_str().expect("invocation id");
            (at.with_timezone(&Utc), id.to_owned())
        })
        .collect()
}

/// The invocation's status and its first log line (the tick it ran for).
fn run_of(node: &Node, invocation: &str) -> (String, Option<String>) {
    let r = node.call(
        "GET",
        &format!("/api/v1/admin/invocations/{invocation}"),
        TOKEN,
        None,
    );
    if r.status != 200 {
        return ("unknown".into(), None);
    }
    let doc = r.json();
    (
        doc["status"].as_str().unwrap_or_default().to_owned(),
        doc["logs"][0]["message"].as_str().map(str::to_owned),
    )
}

/// Every claimed tick ran to success for its own scheduled time (its script ran
/// exactly once if `exactly_once`, at least once otherwise: a run killed midway
/// runs again), and no scheduled time was claimed twice.
fn every_claim_ran(node: &Node, claims: &[(DateTime<Utc>, String)], exactly_once: bool) {
    let mut times: Vec<DateTime<Utc>> = claims.iter().map(|(at, _)| *at).collect();
    times.sort();
    times.dedup();
    assert_eq!(
        times.len(),
        claims.len(),
        "a tick was claimed twice: {claims:?}"
    );
    for (at, id) in claims {
        let ran = eventually(Duration::from_secs(120), || {
            let (status, logged) = run_of(node, id);
            (status == "succeeded").then_some(logged)
        });
        let Some(logged) = ran else {
            panic!(
                "the tick of {at} ({id}) never succeeded: {:?}",
                run_of(node, id)
            );
        };
        let logged = logged.expect("the run logged its tick");
        let tick = DateTime::parse_from_rfc3339(&logged).expect("rfc3339");
        assert_eq!(tick.with_timezone(&Utc), *at, "{id} ran for its own tick");
        let key = format!("run:{logged}").replace('+', "%2B");
        let r = node.call(
            "GET",
            &format!("/api/v1/admin/apps/ticks/kv/{key}"),
            TOKEN,
            None,
        );
        assert_eq!(r.status, 200, "{key}: {}", r.text());
        let runs = r.json()["value"].as_i64().expect("a count");
        if exactly_once {
            assert_eq!(runs, 1, "the tick of {at} ran {runs} times");
        } else {
            assert!(runs >= 1, "the tick of {at} never ran");
        }
    }
}

#[test]
fn cron_ticks_claimed_by_a_killed_node_run_after_restart_and_missed_ones_fire_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let envs = [("PICLOUD_BOOTSTRAP_TOKEN", TOKEN), ("PICLOUD_SLOTS", "1")];
    let mut node = Node::start(&data, None, &envs);
    let trigger = every_second_trigger(&node);

    // Kill it once a tick has run and another is claimed but not finished.
    let pending = eventually(Duration::from_secs(60), || {
        let claimed = claims(&node, &trigger);
        let done = claimed
            .iter()
            .filter(|(_, id)| run_of(&node, id).0 == "succeeded")
            .count();
        (done >= 1 && done < claimed.len()).then_some(claimed)
    })
    .expect("a tick ran and another was pending");
    node.child.kill().expect("SIGKILL");
    let killed_at = Utc::now();
    let _ = node.child.wait();
    drop(node);

    // Down for five whole ticks and more.
    std::thread::sleep(Duration::from_secs(5));
    let node = Node::start(&data, None, &envs);
    let ready_at = Utc::now();
    every_claim_ran(&node, &pending, false);

    // The ticks missed while it was down fire once, not once each: only the
    // catch-up (and at most one regular tick during the start) fall between the
    // kill and the restarted node's readiness.
    let claimed = claims(&node, &trigger);
    let missed: Vec<_> = claimed
        .iter()
        .filter(|(at, _)| *at > killed_at && *at <= ready_at)
        .collect();
    assert!(
        (1..=2).contains(&missed.len()),
        "{} of the ticks between the kill and the restart fired: {missed:?}",
        missed.len()
    );
    let r = node.call(
        "PATCH",
        &format!("/api/v1/admin/triggers/{trigger}"),
        TOKEN,
        Some(json!({"enabled": false})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    every_claim_ran(&node, &claims(&node, &trigger), false);
    node.stop();
}

#[test]
fn two_nodes_on_one_postgresql_fire_each_tick_once() {
    let Some(db) = postgres_database() else {
        return;
    };
    let url = &db.url;
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = [("PICLOUD_BOOTSTRAP_TOKEN", TOKEN), ("PICLOUD_SLOTS", "2")];
    let a = Node::start(&dir.path().join("a"), Some(url), &envs);
    let b = Node::start(&dir.path().join("b"), Some(url), &envs);
    let created = std::time::Instant::now();
    let trigger = every_second_trigger(&a);
    // Both nodes' schedulers see the trigger (b learns of it from the log).
    let seen = eventually(Duration::from_secs(30), || {
        let r = b.call("GET", "/api/v1/admin/apps/ticks/triggers", TOKEN, None);
        (r.status == 200 && r.text().contains(&trigger)).then_some(())
    });
    assert!(seen.is_some(), "node b never saw the trigger");
    std::thread::sleep(Duration::from_secs(6));
    let r = b.call(
        "PATCH",
        &format!("/api/v1/admin/triggers/{trigger}"),
        TOKEN,
        Some(json!({"enabled": false})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let enabled_for = created.elapsed().as_secs();
    // A tick claimed as the trigger was disabled may still be on its way.
    let claimed = claims(&a, &trigger);
    every_claim_ran(&a, &claimed, true);
    let claimed = claims(&a, &trigger);
    let ticks = claimed.len() as u64;
    assert!(
        ticks >= 5 && ticks <= enabled_for + 2,
        "{ticks} ticks while enabled for {enabled_for} s: {claimed:?}"
    );
    // Each tick's script ran once, on one node or the other.
    every_claim_ran(&a, &claimed, true);
    b.stop();
    a.stop();
}
