//! Concurrency: racing appenders, and a follower that must see every event of
//! many concurrent appenders exactly once, in position order, none skipped.
//!
//! Run these on a multi-threaded runtime. On PostgreSQL the test harness opens
//! the store with a commit delay (a random 0–20 ms between insert and commit), so
//! transactions commit out of position order and the follower meets late commits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Barrier, watch};

use super::event;
use crate::error::StoreError;
use crate::event::{Appended, ExpectedVersion, StreamWrite};
use crate::store::Store;

const FOLLOWER_LIMIT: usize = 7;

pub async fn racing_appenders_with_the_same_expected_version_one_wins(store: Arc<dyn Store>) {
    for round in 0..10 {
        let stream = format!("race-{round}");
        store
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![event("Created", json!({}))],
            )
            .await
            .expect("append");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|i| {
                let (store, stream, barrier) = (store.clone(), stream.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(1),
                            vec![event("Renamed", json!({ "by": i }))],
                        )
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        let mut conflicts = 0;
        for racer in racers {
            match racer.await.expect("racer task") {
                Ok(a) => {
                    wins += 1;
                    assert_eq!(a.first_version, 2);
                }
                Err(StoreError::VersionConflict(c)) => {
                    conflicts += 1;
                    assert_eq!(c.stream, stream);
                    assert_eq!(c.expected, ExpectedVersion::Exact(1));
                    assert_eq!(c.actual, Some(2));
                }
                Err(e) => panic!("a racer failed with {e:?}, not a VersionConflict"),
            }
        }
        assert_eq!(
            (wins, conflicts),
            (1, 1),
            "round {round}: one success, one conflict"
        );
        assert_eq!(
            store.stream_version(&stream).await.expect("version"),
            Some(2)
        );
    }
}

pub async fn racing_no_stream_claims_one_wins(store: Arc<dyn Store>) {
    let racers = 8;
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .append(
                        "slug-popular",
                        ExpectedVersion::NoStream,
                        vec![event("Claimed", json!({ "by": i }))],
                    )
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("racer task") {
            Ok(_) => wins += 1,
            Err(StoreError::VersionConflict(c)) => assert_eq!(c.actual, Some(1)),
            Err(e) => panic!("a claim failed with {e:?}, not a VersionConflict"),
        }
    }
    assert_eq!(wins, 1, "exactly one claim wins");
    assert_eq!(
        store
            .read_stream("slug-popular", 1, 10)
            .await
            .expect("read")
            .len(),
        1
    );
}

pub async fn concurrent_any_appends_to_one_stream_all_succeed(store: Arc<dyn Store>) {
    let (writers, each) = (8, 10);
    let barrier = Arc::new(Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..each {
                    store
                        .append(
                            "hot",
                            ExpectedVersion::Any,
                            vec![event("Hit", json!({ "w": w, "i": i }))],
                        )
                        .await
                        .expect("an Any append never conflicts");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
    let events = store.read_stream("hot", 1, 1000).await.expect("read");
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=(writers * each) as u64).collect::<Vec<_>>());
}

/// One appender's workload: its own stream with exact versions, sometimes a
/// batch of several events, sometimes together with a shared stream.
async fn appender(
    store: Arc<dyn Store>,
    id: usize,
    appends: usize,
    start: Arc<Barrier>,
) -> Vec<Appended> {
    let own = format!("writer-{id}");
    let mut version = 0;
    let mut done = Vec::new();
    start.wait().await;
    for j in 0..appends {
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        let count = 1 + (id + j) % 3;
        let events = (0..count)
            .map(|k| event("Wrote", json!({ "id": id, "j": j, "k": k })))
            .collect();
        let mut writes = vec![StreamWrite {
            stream: own.clone(),
            expected,
            events,
        }];
        if j % 4 == 3 {
            writes.push(StreamWrite {
                stream: format!("shared-{}", j % 2),
                expected: ExpectedVersion::Any,
                events: vec![event("Shared", json!({ "id": id, "j": j }))],
            });
        }
        let appended = store.append_many(writes).await.expect("append");
        version = appended[0].last_version;
        done.extend(appended);
    }
    done
}

pub async fn concurrent_appenders_and_a_follower_see_every_event_once_in_order(
    store: Arc<dyn Store>,
) {
    let (appenders, appends) = (8, 25);
    // Set to the final head once every appender is done.
    let (target_tx, mut target) = watch::channel(None::<i64>);
    let follower = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut wake = store.wakeups();
            let mut after = 0;
            let mut seen = Vec::new();
            let mut seen_while_appending = 0;
            let mut pending_reads = 0;
            loop {
                wake.borrow_and_update();
                let read = store
                    .read_all(after, FOLLOWER_LIMIT)
                    .await
                    .expect("read_all");
                let got = !read.events.is_empty();
                for e in read.events {
                    assert!(
                        e.position > after,
                        "position {} after {after}: not strictly increasing",
                        e.position
                    );
                    after = e.position;
                    seen.push((e.stream, e.version, e.position));
                }
                let finish = *target.borrow_and_update();
                if finish.is_none() {
                    seen_while_appending = seen.len();
                }
                if got {
                    continue;
                }
                if read.pending {
                    pending_reads += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                if let Some(head) = finish {
                    assert!(
                        after >= head,
                        "read_all returned nothing past {after}, but the head is {head}"
                    );
                    return (seen, seen_while_appending, pending_reads);
                }
                // Idle: only a wake-up (or the end of the test) moves us on.
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = target.changed() => {}
                }
            }
        })
    };

    let start = Arc::new(Barrier::new(appenders));
    let tasks: Vec<_> = (0..appenders)
        .map(|id| tokio::spawn(appender(store.clone(), id, appends, start.clone())))
        .collect();
    let mut appended = Vec::new();
    for task in tasks {
        appended.extend(task.await.expect("appender task"));
    }
    let head = store.head_position().await.expect("head");
    target_tx.send_replace(Some(head));

    let (seen, seen_while_appending, pending_reads) =
        tokio::time::timeout(Duration::from_secs(60), follower)
            .await
            .expect("the follower finishes within 60 s")
            .expect("follower task");
    eprintln!(
        "follower: {} events, {seen_while_appending} seen while appending, {pending_reads} pending reads",
        seen.len()
    );

    let expected: BTreeSet<(String, u64)> = appended
        .iter()
        .flat_map(|a| (a.first_version..=a.last_version).map(|v| (a.stream.clone(), v)))
        .collect();
    let got: BTreeSet<(String, u64)> = seen.iter().map(|(s, v, _)| (s.clone(), *v)).collect();
    assert_eq!(got.len(), seen.len(), "the follower saw an event twice");
    let missing: Vec<_> = expected.difference(&got).take(10).collect();
    let extra: Vec<_> = got.difference(&expected).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    for a in &appended {
        assert!(
            seen.contains(&(a.stream.clone(), a.last_version, a.last_position)),
            "the follower saw {} v{} at the position append returned ({})",
            a.stream,
            a.last_version,
            a.last_position
        );
    }
    assert!(
        seen_while_appending > 0,
        "wake-ups drove the follower while appenders ran"
    );

    // A fresh reader from 0 sees the same log.
    let all = store.read_all(0, 100_000).await.expect("read_all");
    let positions: Vec<i64> = all.events.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        seen.iter().map(|(_, _, p)| *p).collect::<Vec<_>>()
    );
}
