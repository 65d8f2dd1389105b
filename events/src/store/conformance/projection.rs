//! Projections over a real store: catch-up, rebuild (same state as live) and
//! follow (wakes on appends, publishes progress, stops on shutdown).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{oneshot, watch};

use super::event;
use crate::event::{ExpectedVersion, RecordedEvent};
use crate::projection::{self, Projection};
use crate::readmodel::{self, Doc, DocQuery, RowOp};
use crate::store::Store;

/// Counts `Add`s per stream (a merge), remembers the last event (a put) and
/// forgets a stream on `Remove` (a delete).
struct Tally;

const COUNTS: &str = "tally_counts";
const LAST: &str = "tally_last";

impl Projection for Tally {
    fn name(&self) -> &str {
        "tally"
    }

    fn collections(&self) -> &[&'static str] {
        &[COUNTS, LAST]
    }

    fn apply(&self, event: &RecordedEvent) -> Vec<RowOp> {
        let last = RowOp::Put(Doc {
            collection: LAST.into(),
            key: "last".into(),
            app: None,
            sort: event.position,
            tag1: Some(event.event_type.clone()),
            tag2: None,
            body: json!({ "stream": event.stream, "version": event.version }),
        });
        let count = match event.event_type.as_str() {
            "Add" => RowOp::Merge(Doc {
                collection: COUNTS.into(),
                key: event.stream.clone(),
                app: None,
                sort: event.position,
                tag1: None,
                tag2: None,
                body: json!({ format!("v{}", event.version): event.data["n"] }),
            }),
            "Remove" => RowOp::Delete {
                collection: COUNTS.into(),
                key: event.stream.clone(),
            },
            _ => return vec![last],
        };
        vec![count, last]
    }
}

/// Every document of the projection, as the store holds it.
async fn state(store: &dyn Store) -> Vec<Doc> {
    let mut docs = Vec::new();
    for collection in [COUNTS, LAST] {
        let q = DocQuery {
            collection: collection.into(),
            limit: 10_000,
            ..DocQuery::default()
        };
        docs.extend(store.query_docs(&q).await.expect("query_docs"));
    }
    docs
}

/// The same documents, folded in memory from the log.
async fn folded(store: &dyn Store) -> Vec<Doc> {
    let mut docs: BTreeMap<(String, String), Doc> = BTreeMap::new();
    for e in store.read_all(0, 10_000).await.expect("read_all").events {
        for op in Tally.apply(&e) {
            match op {
                RowOp::Put(d) => {
                    docs.insert((d.collection.clone(), d.key.clone()), d);
                }
                RowOp::Merge(d) => {
                    let k = (d.collection.clone(), d.key.clone());
                    let merged = match docs.remove(&k) {
                        Some(old) => readmodel::merge(old, d),
                        None => d,
                    };
                    docs.insert(k, merged);
                }
                RowOp::Delete { collection, key } => {
                    docs.remove(&(collection, key));
                }
                // Tally writes documents only.
                RowOp::PutDelivery(_) | RowOp::DeleteDelivery { .. } => {}
            }
        }
    }
    let mut out: Vec<Doc> = docs.into_values().collect();
    // The order `state` lists them in: by collection, then newest first.
    let order = |d: &Doc| {
        (
            d.collection != COUNTS,
            std::cmp::Reverse((d.sort, d.key.clone())),
        )
    };
    out.sort_by_key(order);
    out
}

async fn append_some(store: &dyn Store, round: i64) {
    for i in 0..12 {
        let stream = format!("t-{}", i % 4);
        let kind = if i == 7 && round == 0 {
            "Remove"
        } else {
            "Add"
        };
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![event(kind, json!({ "n": i + 100 * round }))],
            )
            .await
            .expect("append");
    }
}

pub async fn catch_up_applies_the_log_and_rebuild_gives_the_same_state(store: Arc<dyn Store>) {
    append_some(store.as_ref(), 0).await;
    let head = store.head_position().await.expect("head");
    let at = projection::catch_up(store.as_ref(), &Tally, 5)
        .await
        .expect("catch_up");
    assert_eq!(at, head);
    assert_eq!(store.checkpoint("tally").await.expect("checkpoint"), head);
    assert_eq!(state(store.as_ref()).await, folded(store.as_ref()).await);

    append_some(store.as_ref(), 1).await;
    let head = store.head_position().await.expect("head");
    assert_eq!(
        projection::catch_up(store.as_ref(), &Tally, 5)
            .await
            .expect("catch_up"),
        head
    );
    let live = state(store.as_ref()).await;
    assert_eq!(live, folded(store.as_ref()).await);
    // Caught up: another pass changes nothing.
    assert_eq!(
        projection::catch_up(store.as_ref(), &Tally, 5)
            .await
            .expect("catch_up"),
        head
    );

    let rebuilt_at = projection::rebuild(store.as_ref(), &Tally)
        .await
        .expect("rebuild");
    assert_eq!(rebuilt_at, head);
    assert_eq!(
        state(store.as_ref()).await,
        live,
        "a rebuild gives the live state"
    );
}

pub async fn follow_applies_new_events_and_stops_on_shutdown(store: Arc<dyn Store>) {
    let (progress_tx, mut progress) = watch::channel(-1);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let follower = tokio::spawn(projection::follow(
        store.clone(),
        Arc::new(Tally),
        progress_tx,
        async move {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::timeout(Duration::from_secs(10), progress.wait_for(|p| *p == 0))
        .await
        .expect("follow publishes its starting checkpoint")
        .expect("follow is running");

    for round in 0..2 {
        append_some(store.as_ref(), round).await;
        let head = store.head_position().await.expect("head");
        tokio::time::timeout(Duration::from_secs(10), progress.wait_for(|p| *p >= head))
            .await
            .expect("follow catches up after a wake-up")
            .expect("follow is running");
        assert_eq!(state(store.as_ref()).await, folded(store.as_ref()).await);
    }

    stop_tx.send(()).expect("follow listens for shutdown");
    let ended = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follow stops on shutdown")
        .expect("follow task");
    assert!(ended.is_ok(), "{ended:?}");
}

/// Documents of "runs": a `Run` is written through by its writer
/// (`append_projected`), so a follower skips it; any other event is projected
/// as usual. Each document says who wrote it.
struct Runs;

const RUNS: &str = "runs";

impl Runs {
    fn doc(stream: &str, version: u64, by: &str) -> Doc {
        Doc {
            collection: RUNS.into(),
            key: stream.into(),
            app: None,
            sort: i64::try_from(version).unwrap_or(0),
            tag1: Some(by.into()),
            tag2: None,
            body: json!({ "version": version, "by": by }),
        }
    }
}

impl Projection for Runs {
    fn name(&self) -> &str {
        "runs"
    }

    fn collections(&self) -> &[&'static str] {
        &[RUNS]
    }

    fn apply(&self, event: &RecordedEvent) -> Vec<RowOp> {
        vec![RowOp::Put(Runs::doc(
            &event.stream,
            event.version,
            "projector",
        ))]
    }

    fn skipped_when_following(&self) -> Option<&'static str> {
        Some("Run")
    }
}

/// Wait until the follower's progress reaches the head; the head.
async fn caught_up(store: &dyn Store, progress: &mut watch::Receiver<i64>, what: &str) -> i64 {
    let head = store.head_position().await.expect("head");
    tokio::time::timeout(Duration::from_secs(10), progress.wait_for(|p| *p >= head))
        .await
        .expect(what)
        .expect("follow is running");
    head
}

async fn written_by(store: &dyn Store, stream: &str) -> Option<(u64, String)> {
    let doc = store.get_doc(RUNS, stream).await.expect("get_doc")?;
    Some((
        doc.body["version"].as_u64().unwrap_or(0),
        doc.body["by"].as_str().unwrap_or("").to_owned(),
    ))
}

pub async fn a_follower_skips_written_through_events_and_a_replay_applies_them(
    store: Arc<dyn Store>,
) {
    // Written before any follower, without its document (as an older writer did).
    store
        .append(
            "r-1",
            ExpectedVersion::NoStream,
            vec![event("Run", json!({}))],
        )
        .await
        .expect("append");

    let (progress_tx, mut progress) = watch::channel(-1);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let follower = tokio::spawn(projection::follow(
        store.clone(),
        Arc::new(Runs),
        progress_tx,
        async move {
            let _ = stop_rx.await;
        },
    ));
    caught_up(
        store.as_ref(),
        &mut progress,
        "the follower replays the log it found",
    )
    .await;
    assert_eq!(
        written_by(store.as_ref(), "r-1").await,
        Some((1, "projector".into())),
        "up to the head found at the start, a written-through type is applied"
    );

    // Written through while following, at any version of its stream: the
    // follower leaves it to its writer.
    let write = |stream: &str, event_type: &str, expected| crate::event::StreamWrite {
        stream: stream.into(),
        expected,
        events: vec![event(event_type, json!({}))],
    };
    store
        .append_projected(
            &[write("r-2", "Run", ExpectedVersion::NoStream)
                .encode()
                .expect("encode")],
            "runs",
            &[Runs::doc("r-2", 1, "writer").into()],
        )
        .await
        .expect("append_projected");
    store
        .append_projected(
            &[write("r-2", "Run", ExpectedVersion::Exact(1))
                .encode()
                .expect("encode")],
            "runs",
            &[Runs::doc("r-2", 2, "writer").into()],
        )
        .await
        .expect("append_projected");
    // Events of another type: projected by the follower.
    store
        .append_many(vec![
            write("r-1", "Note", ExpectedVersion::Exact(1)),
            write("n-1", "Note", ExpectedVersion::NoStream),
        ])
        .await
        .expect("append_many");
    let head = caught_up(
        store.as_ref(),
        &mut progress,
        "the follower moves past what it skips",
    )
    .await;
    assert_eq!(
        written_by(store.as_ref(), "r-2").await,
        Some((2, "writer".into())),
        "the written-through type is not read again"
    );
    assert_eq!(
        written_by(store.as_ref(), "r-1").await,
        Some((2, "projector".into()))
    );
    assert_eq!(
        written_by(store.as_ref(), "n-1").await,
        Some((1, "projector".into()))
    );
    assert_eq!(store.checkpoint("runs").await.expect("checkpoint"), head);
    stop_tx.send(()).expect("follow listens for shutdown");
    let ended = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follow stops on shutdown")
        .expect("follow task");
    assert!(ended.is_ok(), "{ended:?}");

    // A rebuild clears the documents, so it applies every event up to the head.
    let rebuilt_at = projection::rebuild(store.as_ref(), &Runs)
        .await
        .expect("rebuild");
    assert_eq!(rebuilt_at, head);
    for (stream, version) in [("r-1", 2), ("r-2", 2), ("n-1", 1)] {
        assert_eq!(
            written_by(store.as_ref(), stream).await,
            Some((version, "projector".into())),
            "{stream} after the rebuild"
        );
    }
}
