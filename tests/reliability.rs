//! Nothing accepted is lost: webhook deliveries accepted (202) by a node that is
//! then killed with SIGKILL while it runs them all run after a restart.

mod common;

use std::time::Duration;

use common::{Node, eventually, request};
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
