//! The outbox rows (`deliveries`): written by a projection, leased by dispatchers.
//! A due row is claimed by one claimer at a time; a lease that ends makes it
//! claimable again; a projection write clears the lease.

use std::collections::HashSet;
use std::sync::Arc;

use crate::readmodel::{DELIVERIES, Delivery, RowOp};
use crate::store::Store;

fn row(id: &str, due_at: i64) -> Delivery {
    Delivery {
        invocation_id: id.into(),
        app: "app-1".into(),
        stream_version: 1,
        attempt: 0,
        due_at,
        lease: None,
    }
}

pub async fn deliveries_are_claimed_once_when_due_and_again_after_the_lease(store: Arc<dyn Store>) {
    assert_eq!(store.next_delivery_at().await.expect("next"), None);
    let ops = vec![
        RowOp::PutDelivery(row("a", 1_000)),
        RowOp::PutDelivery(row("b", 2_000)),
    ];
    store.apply("outbox", ops, 1).await.expect("apply");
    assert_eq!(store.next_delivery_at().await.expect("next"), Some(1_000));

    // Nothing is due yet.
    assert!(
        store
            .claim_deliveries("n1", 999, 5_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let claimed = store
        .claim_deliveries("n1", 1_500, 5_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, vec![row("a", 1_000)]);
    // Leased: nobody else gets it, and it becomes claimable when the lease ends.
    assert!(
        store
            .claim_deliveries("n2", 1_600, 6_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(store.next_delivery_at().await.expect("next"), Some(2_000));
    let both = store
        .claim_deliveries("n2", 5_000, 9_000, 10)
        .await
        .expect("claim");
    let ids: Vec<&str> = both.iter().map(|d| d.invocation_id.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "the expired lease and the due row, oldest first"
    );

    // Only the holder can postpone (here: hand it back at once).
    store
        .postpone_delivery("a", "n1", 5_001)
        .await
        .expect("postpone");
    assert!(
        store
            .claim_deliveries("n3", 5_001, 9_500, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    store
        .postpone_delivery("a", "n2", 5_001)
        .await
        .expect("postpone");
    let again = store
        .claim_deliveries("n3", 5_001, 9_500, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].invocation_id, "a");

    // A projection write replaces the row and clears its lease.
    let mut retried = row("b", 7_000);
    retried.attempt = 1;
    retried.stream_version = 2;
    store
        .apply("outbox", vec![RowOp::PutDelivery(retried.clone())], 2)
        .await
        .expect("apply");
    assert!(
        store
            .claim_deliveries("n1", 6_999, 20_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        store
            .claim_deliveries("n1", 7_000, 20_000, 10)
            .await
            .expect("claim"),
        vec![retried]
    );

    store
        .apply(
            "outbox",
            vec![RowOp::DeleteDelivery {
                invocation_id: "b".into(),
            }],
            3,
        )
        .await
        .expect("apply");
    assert!(
        store
            .claim_deliveries("n1", 100_000, 200_000, 10)
            .await
            .expect("claim")
            .iter()
            .all(|d| d.invocation_id != "b")
    );
    // A restarted node frees what its previous run held, and only that.
    store
        .apply(
            "outbox",
            vec![
                RowOp::PutDelivery(row("c", 1)),
                RowOp::PutDelivery(row("d", 1)),
            ],
            4,
        )
        .await
        .expect("apply");
    assert_eq!(
        store
            .claim_deliveries("n7", 10, 1_000_000, 1)
            .await
            .expect("claim")
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_deliveries("n8", 10, 1_000_000, 1)
            .await
            .expect("claim")
            .len(),
        1
    );
    assert_eq!(store.release_leases("n7").await.expect("release"), 1);
    let again = store
        .claim_deliveries("n9", 20, 1_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1, "only n7's row came back");
    store.reset("outbox", &[DELIVERIES]).await.expect("reset");
    assert_eq!(store.next_delivery_at().await.expect("next"), None);
}

pub async fn next_delivery_at_is_the_earliest_due_row_or_lease_end(store: Arc<dyn Store>) {
    let next = || async { store.next_delivery_at().await.expect("next") };
    let ops = vec![
        RowOp::PutDelivery(row("a", 1_000)),
        RowOp::PutDelivery(row("b", 2_000)),
        RowOp::PutDelivery(row("c", 3_000)),
    ];
    store.apply("outbox", ops, 1).await.expect("apply");
    assert_eq!(next().await, Some(1_000));
    // `a` leased until 10,000: the next moment is `b`'s due time.
    let claimed = store
        .claim_deliveries("n1", 1_500, 10_000, 1)
        .await
        .expect("claim");
    assert_eq!(claimed, vec![row("a", 1_000)]);
    assert_eq!(next().await, Some(2_000));
    // `b` leased until 2,600: the end of its lease comes before `c` is due.
    let claimed = store
        .claim_deliveries("n1", 2_500, 2_600, 1)
        .await
        .expect("claim");
    assert_eq!(claimed, vec![row("b", 2_000)]);
    assert_eq!(next().await, Some(2_600));
    // At 3,000 `b`'s lease has ended: it is claimed again, with `c`. A lease
    // moved to before its row's due time counts as no lease.
    let claimed = store
        .claim_deliveries("n2", 3_000, 3_500, 2)
        .await
        .expect("claim");
    assert_eq!(claimed, vec![row("b", 2_000), row("c", 3_000)]);
    assert_eq!(next().await, Some(3_500));
    store
        .postpone_delivery("c", "n2", 100)
        .await
        .expect("postpone");
    store
        .postpone_delivery("b", "n2", 20_000)
        .await
        .expect("postpone");
    assert_eq!(next().await, Some(3_000), "c, due, its lease before it");
    // Leases released: every row is due again, the earliest first.
    store.release_leases("n1").await.expect("release");
    store.release_leases("n2").await.expect("release");
    assert_eq!(next().await, Some(1_000));
}

pub async fn concurrent_claimers_never_share_a_delivery(store: Arc<dyn Store>) {
    let ops: Vec<RowOp> = (0..200)
        .map(|i| RowOp::PutDelivery(row(&format!("d{i:03}"), i)))
        .collect();
    store.apply("outbox", ops, 1).await.expect("apply");
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("node{n}");
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_deliveries(&node, 1_000, 1_000_000, 7)
                    .await
                    .expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|d| d.invocation_id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.expect("claimer") {
            total += 1;
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(total, 200);
    assert_eq!(seen.len(), 200);
}
