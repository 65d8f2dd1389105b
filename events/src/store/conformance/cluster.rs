//! The cluster's node registry (`nodes`): a node writes its own row; a node whose
//! heartbeat stopped is marked `gone` once, and the outbox leases it held are
//! freed (and the dispatchers woken) in the same transaction.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{NodeRow, NodeState};
use crate::readmodel::{Delivery, DeliveryLease, RowOp};
use crate::store::Store;

fn node(id: &str, started_at: i64, last_seen_at: i64, state: NodeState) -> NodeRow {
    NodeRow {
        id: id.into(),
        address: format!("127.0.0.1:{}", 8000 + started_at),
        version: "0.1.0".into(),
        started_at,
        last_seen_at,
        state,
        slots: 2,
        in_flight: 0,
    }
}

fn delivery(id: &str) -> Delivery {
    Delivery {
        invocation_id: id.into(),
        app: "app-1".into(),
        stream_version: 1,
        attempt: 0,
        due_at: 1_000,
        lease: None,
    }
}

pub async fn nodes_are_registered_updated_and_listed_oldest_first(store: Arc<dyn Store>) {
    assert!(store.nodes().await.expect("nodes").is_empty());
    let b = node("node-b", 20, 20, NodeState::Up);
    let a = node("node-a", 10, 10, NodeState::Up);
    store.put_node(&b).await.expect("put b");
    store.put_node(&a).await.expect("put a");
    assert_eq!(
        store.nodes().await.expect("nodes"),
        vec![a.clone(), b.clone()]
    );

    // A heartbeat (and a drain) replaces the row whole.
    let beat = NodeRow {
        last_seen_at: 30,
        in_flight: 3,
        state: NodeState::Draining,
        ..a.clone()
    };
    store.put_node(&beat).await.expect("beat");
    assert_eq!(store.nodes().await.expect("nodes"), vec![beat, b]);
}

pub async fn a_silent_node_is_reaped_once_and_its_leases_freed(store: Arc<dyn Store>) {
    store
        .put_node(&node("dead", 1, 100, NodeState::Up))
        .await
        .expect("put");
    store
        .put_node(&node("alive", 2, 5_000, NodeState::Up))
        .await
        .expect("put");
    store
        .put_node(&node("left", 3, 50, NodeState::Gone))
        .await
        .expect("put");
    let ops = vec![
        RowOp::PutDelivery(delivery("d1")),
        RowOp::PutDelivery(delivery("d2")),
        RowOp::PutDelivery(delivery("d3")),
    ];
    store.apply("outbox", ops, 1).await.expect("apply");
    let lease_end = 1_000_000;
    assert_eq!(
        store
            .claim_deliveries("dead", 1_000, lease_end, 2)
            .await
            .expect("claim")
            .len(),
        2
    );
    assert_eq!(
        store
            .claim_deliveries("alive", 1_000, lease_end, 1)
            .await
            .expect("claim")
            .len(),
        1
    );
    let mut woken = store.lease_wakeups();
    woken.borrow_and_update();

    // Nobody silent long enough yet: nothing changes.
    assert!(store.reap_nodes(50).await.expect("reap").is_empty());
    assert!(!woken.has_changed().expect("watch"));

    let reaped = store.reap_nodes(1_000).await.expect("reap");
    assert_eq!(
        reaped,
        vec!["dead".to_owned()],
        "only the silent node that was up"
    );
    let states: Vec<(String, NodeState)> = store
        .nodes()
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| (n.id, n.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("dead".into(), NodeState::Gone),
            ("alive".into(), NodeState::Up),
            ("left".into(), NodeState::Gone),
        ]
    );
    // Its two rows are claimable at once, long before their lease would end; the
    // live node's row stays leased.
    let taken = store
        .claim_deliveries("alive", 2_000, lease_end, 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 2, "the dead node's rows: {taken:?}");
    tokio::time::timeout(Duration::from_secs(5), woken.changed())
        .await
        .expect("the dispatchers are woken")
        .expect("watch");

    // Marked once: a second reaper finds nothing to do.
    assert!(store.reap_nodes(1_000).await.expect("reap").is_empty());
}

pub async fn releasing_a_nodes_leases_wakes_the_dispatchers(store: Arc<dyn Store>) {
    store
        .apply("outbox", vec![RowOp::PutDelivery(delivery("d1"))], 1)
        .await
        .expect("apply");
    let claimed = store
        .claim_deliveries("n1", 1_000, 1_000_000, 1)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let mut woken = store.lease_wakeups();
    woken.borrow_and_update();
    assert_eq!(store.release_leases("n2").await.expect("release"), 0);
    assert!(
        !woken.has_changed().expect("watch"),
        "nothing freed, nobody woken"
    );
    assert_eq!(store.release_leases("n1").await.expect("release"), 1);
    tokio::time::timeout(Duration::from_secs(5), woken.changed())
        .await
        .expect("woken")
        .expect("watch");
    assert_eq!(
        store
            .claim_deliveries("n2", 1_001, 1_000_000, 1)
            .await
            .expect("claim")
            .len(),
        1
    );
}

pub async fn a_row_is_written_leased_to_its_node_unless_that_node_is_gone(store: Arc<dyn Store>) {
    store
        .put_node(&node("runner", 1, 100, NodeState::Up))
        .await
        .expect("put");
    store
        .put_node(&node("left", 2, 100, NodeState::Gone))
        .await
        .expect("put");
    let leased = |id: &str, node: &str| {
        RowOp::PutDelivery(Delivery {
            lease: Some(DeliveryLease {
                node: node.into(),
                until: 5_000,
            }),
            ..delivery(id)
        })
    };
    let ops = vec![
        leased("held", "runner"),
        leased("orphan", "left"),
        leased("stranger", "never-registered"),
    ];
    store.apply("outbox", ops, 1).await.expect("apply");
    // The live node holds its row until the lease ends; the others are free.
    let mut taken: Vec<String> = store
        .claim_deliveries("other", 2_000, 1_000_000, 10)
        .await
        .expect("claim")
        .into_iter()
        .map(|d| d.invocation_id)
        .collect();
    taken.sort();
    assert_eq!(taken, vec!["orphan".to_owned(), "stranger".to_owned()]);
    assert_eq!(
        store.next_delivery_at().await.expect("next"),
        Some(5_000),
        "the held row is claimable when its lease ends"
    );
    // The runner leaving frees it at once.
    assert_eq!(store.release_leases("runner").await.expect("release"), 1);
    let freed = store
        .claim_deliveries("other", 2_001, 1_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(freed.len(), 1);
    assert_eq!(freed[0].invocation_id, "held");

    // Deleted in the batch that put it: gone, whatever came before.
    let ops = vec![
        leased("brief", "runner"),
        RowOp::DeleteDelivery {
            invocation_id: "brief".into(),
        },
        RowOp::DeleteDelivery {
            invocation_id: "held".into(),
        },
    ];
    store.apply("outbox", ops, 2).await.expect("apply");
    assert_eq!(
        store.next_delivery_at().await.expect("next"),
        Some(1_000_000)
    );
}
