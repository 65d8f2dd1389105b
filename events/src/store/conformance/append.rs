//! Appends: expected versions, typed conflicts, batches across streams.

use std::sync::Arc;

use serde_json::json;

use super::event;
use crate::error::{StoreError, VersionConflict};
use crate::event::{EventFilter, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use crate::store::Store;

fn conflict(result: Result<impl std::fmt::Debug, StoreError>) -> VersionConflict {
    match result {
        Err(StoreError::VersionConflict(c)) => c,
        other => panic!("expected a VersionConflict, got {other:?}"),
    }
}

pub async fn append_and_read_round_trip_every_field(store: Arc<dyn Store>) {
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let metadata = Metadata {
        actor: Some("user:u1".into()),
        token: Some("token:t1".into()),
        request_id: Some("req-1".into()),
        causation_id: Some("cause-1".into()),
        correlation_id: Some("corr-1".into()),
        node: Some("node-a".into()),
        app: Some("app-1".into()),
        depth: Some(2),
        schema: 1,
    };
    let data =
        json!({"name": "demo", "n": 42, "nested": {"list": [1, 2.5, null, "x"]}, "unicode": "é✓"});
    let appended = store
        .append(
            "app-1",
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new("AppCreated", data.clone(), metadata.clone()),
                NewEvent::new("AppRenamed", json!({"name": "b"}), Metadata::default()),
            ],
        )
        .await
        .expect("append");
    assert_eq!(appended.stream, "app-1");
    assert_eq!((appended.first_version, appended.last_version), (1, 2));

    let events = store
        .read_stream("app-1", 1, 10)
        .await
        .expect("read_stream");
    assert_eq!(events.len(), 2);
    let e = &events[0];
    assert_eq!(e.stream, "app-1");
    assert_eq!(e.version, 1);
    assert_eq!(e.event_type, "AppCreated");
    assert_eq!(e.data, data);
    assert_eq!(e.metadata, metadata);
    assert!(
        e.recorded_at > before && e.recorded_at <= chrono::Utc::now(),
        "recorded_at is now"
    );
    assert_eq!(events[1].version, 2);
    assert_eq!(events[1].metadata, Metadata::default());
    assert!(events[1].position > e.position);
    assert_eq!(events[1].position, appended.last_position);

    // Every read path returns the same event.
    let all = store.read_all(0, 10).await.expect("read_all");
    assert_eq!(all.events, events);
    let browsed = store
        .browse(&EventFilter::default(), 0, 10)
        .await
        .expect("browse");
    assert_eq!(browsed, events);
    assert_eq!(
        store.stream_version("app-1").await.expect("version"),
        Some(2)
    );
    assert_eq!(store.stream_version("app-2").await.expect("version"), None);
}

pub async fn append_with_any_appends_whatever_the_stream_holds(store: Arc<dyn Store>) {
    let a = store
        .append("s", ExpectedVersion::Any, vec![event("A", json!({}))])
        .await
        .expect("append to a new stream");
    assert_eq!((a.first_version, a.last_version), (1, 1));
    let b = store
        .append(
            "s",
            ExpectedVersion::Any,
            vec![event("B", json!({})), event("C", json!({}))],
        )
        .await
        .expect("append to an existing stream");
    assert_eq!((b.first_version, b.last_version), (2, 3));
    assert!(b.last_position > a.last_position);
}

pub async fn append_to_an_existing_stream_with_no_stream_is_a_conflict(store: Arc<dyn Store>) {
    store
        .append(
            "slug-x",
            ExpectedVersion::NoStream,
            vec![event("Claimed", json!({}))],
        )
        .await
        .expect("first claim");
    let c = conflict(
        store
            .append(
                "slug-x",
                ExpectedVersion::NoStream,
                vec![event("Claimed", json!({}))],
            )
            .await,
    );
    assert_eq!(c.stream, "slug-x");
    assert_eq!(c.expected, ExpectedVersion::NoStream);
    assert_eq!(c.actual, Some(1));
    assert_eq!(
        store.stream_version("slug-x").await.expect("version"),
        Some(1)
    );
}

pub async fn append_with_stale_expected_version_is_a_conflict(store: Arc<dyn Store>) {
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            vec![event("A", json!({})), event("B", json!({}))],
        )
        .await
        .expect("append");
    let ok = store
        .append("s", ExpectedVersion::Exact(2), vec![event("C", json!({}))])
        .await
        .expect("exact version matches");
    assert_eq!(ok.first_version, 3);
    let c = conflict(
        store
            .append("s", ExpectedVersion::Exact(2), vec![event("D", json!({}))])
            .await,
    );
    assert_eq!(
        c,
        VersionConflict {
            stream: "s".into(),
            expected: ExpectedVersion::Exact(2),
            actual: Some(3)
        }
    );
    // A version from the future is as wrong as a stale one.
    let c = conflict(
        store
            .append("s", ExpectedVersion::Exact(9), vec![event("D", json!({}))])
            .await,
    );
    assert_eq!(c.actual, Some(3));
    assert_eq!(store.read_stream("s", 1, 10).await.expect("read").len(), 3);
}

pub async fn append_with_exact_version_on_a_missing_stream_is_a_conflict(store: Arc<dyn Store>) {
    let c = conflict(
        store
            .append(
                "nope",
                ExpectedVersion::Exact(1),
                vec![event("A", json!({}))],
            )
            .await,
    );
    assert_eq!(c.actual, None);
    assert_eq!(c.expected, ExpectedVersion::Exact(1));
    assert_eq!(store.head_position().await.expect("head"), 0);
}

pub async fn append_with_exact_zero_accepts_an_empty_stream(store: Arc<dyn Store>) {
    let a = store
        .append("s", ExpectedVersion::Exact(0), vec![event("A", json!({}))])
        .await
        .expect("Exact(0) on an empty stream");
    assert_eq!(a.first_version, 1);
    conflict(
        store
            .append("s", ExpectedVersion::Exact(0), vec![event("B", json!({}))])
            .await,
    );
}

pub async fn empty_append_is_invalid(store: Arc<dyn Store>) {
    let r = store.append("s", ExpectedVersion::Any, vec![]).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store.append_many(vec![]).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store
        .append("", ExpectedVersion::Any, vec![event("A", json!({}))])
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(store.head_position().await.expect("head"), 0);
}

pub async fn append_many_appends_every_stream_in_one_go(store: Arc<dyn Store>) {
    store
        .append(
            "user-1",
            ExpectedVersion::NoStream,
            vec![event("UserCreated", json!({}))],
        )
        .await
        .expect("append");
    let appended = store
        .append_many(vec![
            StreamWrite {
                stream: "username-ada".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event("Claimed", json!({}))],
            },
            StreamWrite {
                stream: "user-1".into(),
                expected: ExpectedVersion::Exact(1),
                events: vec![event("Renamed", json!({})), event("Renamed", json!({}))],
            },
        ])
        .await
        .expect("append_many");
    assert_eq!(appended.len(), 2);
    assert_eq!(appended[0].stream, "username-ada");
    assert_eq!(
        (appended[0].first_version, appended[0].last_version),
        (1, 1)
    );
    assert_eq!(appended[1].stream, "user-1");
    assert_eq!(
        (appended[1].first_version, appended[1].last_version),
        (2, 3)
    );
    assert!(appended[1].last_position > appended[0].last_position);
    let all = store.read_all(0, 10).await.expect("read_all").events;
    let order: Vec<(&str, u64)> = all.iter().map(|e| (e.stream.as_str(), e.version)).collect();
    assert_eq!(
        order,
        vec![
            ("user-1", 1),
            ("username-ada", 1),
            ("user-1", 2),
            ("user-1", 3)
        ],
        "a batch lands in the order it was given"
    );
    assert_eq!(all[3].position, appended[1].last_position);
}

pub async fn append_many_is_all_or_nothing(store: Arc<dyn Store>) {
    store
        .append(
            "slug-taken",
            ExpectedVersion::NoStream,
            vec![event("Claimed", json!({}))],
        )
        .await
        .expect("append");
    let head = store.head_position().await.expect("head");
    let result = store
        .append_many(vec![
            StreamWrite {
                stream: "app-new".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event("AppCreated", json!({}))],
            },
            StreamWrite {
                stream: "slug-taken".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event("Claimed", json!({}))],
            },
        ])
        .await;
    let c = conflict(result);
    assert_eq!(
        c.stream, "slug-taken",
        "the conflict names the stream that failed"
    );
    assert_eq!(c.actual, Some(1));
    assert_eq!(
        store.stream_version("app-new").await.expect("version"),
        None,
        "the first stream is unchanged"
    );
    assert_eq!(store.head_position().await.expect("head"), head);
    assert_eq!(
        store.read_all(0, 10).await.expect("read_all").events.len(),
        1
    );
}

pub async fn append_many_with_a_conflict_in_the_middle_writes_nothing(store: Arc<dyn Store>) {
    store
        .append(
            "s-2",
            ExpectedVersion::NoStream,
            vec![event("A", json!({})), event("B", json!({}))],
        )
        .await
        .expect("append");
    store
        .append(
            "s-4",
            ExpectedVersion::NoStream,
            vec![event("A", json!({}))],
        )
        .await
        .expect("append");
    let head = store.head_position().await.expect("head");
    let write = |stream: &str, expected| StreamWrite {
        stream: stream.into(),
        expected,
        events: vec![event("X", json!({}))],
    };
    let c = conflict(
        store
            .append_many(vec![
                write("s-1", ExpectedVersion::NoStream),
                write("s-2", ExpectedVersion::Exact(2)),
                write("s-3", ExpectedVersion::Exact(1)),
                write("s-4", ExpectedVersion::NoStream),
                write("s-5", ExpectedVersion::Any),
            ])
            .await,
    );
    assert_eq!(
        c,
        VersionConflict {
            stream: "s-3".into(),
            expected: ExpectedVersion::Exact(1),
            actual: None,
        },
        "the first stream that fails, in the order given, is named"
    );
    assert_eq!(store.head_position().await.expect("head"), head);
    for (stream, version) in [
        ("s-1", None),
        ("s-2", Some(2)),
        ("s-3", None),
        ("s-4", Some(1)),
        ("s-5", None),
    ] {
        assert_eq!(
            store.stream_version(stream).await.expect("version"),
            version,
            "{stream} is unchanged"
        );
    }
}

/// Big enough to cross every chunk boundary a backend may cut a batch at.
pub async fn append_many_of_many_streams_lands_in_order(store: Arc<dyn Store>) {
    const STREAMS: usize = 700;
    let before = store
        .append(
            "stream-350",
            ExpectedVersion::NoStream,
            vec![event("Before", json!({}))],
        )
        .await
        .expect("append");
    let writes: Vec<StreamWrite> = (0..STREAMS)
        .map(|i| StreamWrite {
            stream: format!("stream-{i}"),
            expected: match i {
                350 => ExpectedVersion::Exact(1),
                i if i % 2 == 0 => ExpectedVersion::NoStream,
                _ => ExpectedVersion::Any,
            },
            // Every 100th stream gets three events.
            events: (0..if i % 100 == 0 { 3 } else { 1 })
                .map(|n| event("E", json!({ "stream": i, "n": n })))
                .collect(),
        })
        .collect();

    // Stream 350 exists: expecting none there fails the whole batch.
    let mut failing = writes.clone();
    failing[350].expected = ExpectedVersion::NoStream;
    let c = conflict(store.append_many(failing).await);
    assert_eq!((c.stream.as_str(), c.actual), ("stream-350", Some(1)));
    assert_eq!(
        store.head_position().await.expect("head"),
        before.last_position,
        "nothing of the failed batch is written"
    );

    let wake = store.wakeups();
    let appended = store
        .append_many(writes.clone())
        .await
        .expect("append_many");
    assert!(
        wake.has_changed().expect("store alive"),
        "a wake-up follows"
    );

    assert_eq!(appended.len(), STREAMS, "one result per write");
    for (i, (a, w)) in appended.iter().zip(&writes).enumerate() {
        assert_eq!(a.stream, w.stream, "results are in the order of the writes");
        let first = if i == 350 { 2 } else { 1 };
        assert_eq!(
            (a.first_version, a.last_version),
            (first, first + w.events.len() as u64 - 1),
            "{}",
            w.stream
        );
    }
    let all = store
        .read_all(before.last_position, 2 * STREAMS)
        .await
        .expect("read_all")
        .events;
    let expected: Vec<(String, u64, i64)> = writes
        .iter()
        .zip(&appended)
        .flat_map(|(w, a)| {
            (0..w.events.len() as u64)
                .map(move |n| (w.stream.clone(), a.first_version + n, n as i64))
        })
        .collect();
    let found: Vec<(String, u64, i64)> = all
        .iter()
        .map(|e| {
            (
                e.stream.clone(),
                e.version,
                e.data["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(found, expected, "events land in the order given");
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let mut i = 0;
    for (w, a) in writes.iter().zip(&appended) {
        i += w.events.len();
        assert_eq!(a.last_position, all[i - 1].position, "{}", w.stream);
    }
}

pub async fn append_projected_writes_the_events_and_the_documents_together(store: Arc<dyn Store>) {
    use crate::readmodel::Doc;
    let doc = |key: &str| Doc {
        collection: "runs".into(),
        key: key.into(),
        app: Some("app-1".into()),
        sort: 7,
        tag1: Some("succeeded".into()),
        tag2: None,
        body: json!({ "id": key }),
    };
    let write = |stream: &str| {
        StreamWrite {
            stream: stream.into(),
            expected: ExpectedVersion::NoStream,
            events: vec![event("Run", json!({ "stream": stream }))],
        }
        .encode()
        .expect("encode")
    };
    let appended = store
        .append_projected(
            &[write("run-1"), write("run-2")],
            "runs",
            &[doc("run-1").into(), doc("run-2").into()],
        )
        .await
        .expect("append_projected");
    assert_eq!(appended.len(), 2);
    let events = store.read_all(0, 10).await.expect("read_all").events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data, json!({ "stream": "run-1" }));
    assert_eq!(events[1].event_type, "Run");
    for key in ["run-1", "run-2"] {
        assert_eq!(
            store.get_doc("runs", key).await.expect("get_doc"),
            Some(doc(key)),
            "the document of {key} went in with its event"
        );
    }
    assert_eq!(
        store.checkpoint("runs").await.expect("checkpoint"),
        0,
        "the projection's checkpoint is its follower's business"
    );

    // A conflict on any stream writes no event and no document.
    let conflicted = conflict(
        store
            .append_projected(
                &[write("run-3"), write("run-1")],
                "runs",
                &[doc("run-3").into()],
            )
            .await,
    );
    assert_eq!(conflicted.stream, "run-1");
    assert_eq!(
        store.read_all(0, 10).await.expect("read_all").events.len(),
        2
    );
    assert_eq!(store.get_doc("runs", "run-3").await.expect("get_doc"), None);
}
