//! Export and import: a log exported from one store and imported into a new one
//! reads back identically; an import never writes into a store with history, and
//! a bad file or an impossible log is refused with nothing written.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::{event, event_by};
use crate::event::{ExpectedVersion, Metadata, RecordedEvent};
use crate::store::Store;
use crate::transfer::{self, TransferError};
use crate::{StoreError, StreamWrite};

async fn all_events(store: &dyn Store) -> Vec<RecordedEvent> {
    let page = store.read_all(0, 10_000).await.expect("read_all");
    assert!(!page.pending, "nothing is in flight");
    page.events
}

/// A small history with gaps in positions (as PostgreSQL leaves after a rollback),
/// metadata of every kind and times in the past.
fn history() -> Vec<RecordedEvent> {
    let at = |s: i64| {
        Utc.timestamp_opt(1_700_000_000 + s, 123_456_000)
            .single()
            .expect("time")
    };
    let meta = Metadata {
        actor: Some("user:u1".into()),
        token: Some("token:t1".into()),
        request_id: Some("req-1".into()),
        causation_id: Some("c".into()),
        correlation_id: Some("k".into()),
        node: Some("node-a".into()),
        app: Some("app-1".into()),
        depth: Some(2),
        schema: 1,
    };
    let ev = |position: i64, stream: &str, version: u64, t: &str, s: i64| RecordedEvent {
        position,
        stream: stream.into(),
        version,
        event_type: t.into(),
        data: json!({"n": position, "nested": {"list": [1, "two", null]}}),
        metadata: meta.clone(),
        recorded_at: at(s),
    };
    vec![
        ev(1, "a", 1, "Created", 0),
        ev(2, "b", 1, "Created", 1),
        ev(5, "a", 2, "Renamed", 2),
        ev(6, "a", 3, "Renamed", 3),
        ev(9, "b", 2, "Deleted", 4),
    ]
}

pub async fn import_keeps_positions_versions_metadata_and_times(store: Arc<dyn Store>) {
    let events = history();
    let kv = vec![crate::kv::KvRow {
        app: "app-1".into(),
        entry: crate::kv::KvEntry {
            key: "hits".into(),
            value: "41".into(),
            updated_at: Utc
                .timestamp_opt(1_700_000_005, 123_456_000)
                .single()
                .expect("time"),
        },
    }];
    store
        .import(&events, &kv)
        .await
        .expect("import into a new store");
    assert_eq!(
        store.kv_get("app-1", "hits").await.expect("kv"),
        Some(kv[0].entry.clone()),
        "kv rows go in with the events, times kept"
    );
    assert_eq!(all_events(store.as_ref()).await, events);
    assert_eq!(store.head_position().await.expect("head"), 9);
    assert_eq!(store.stream_version("a").await.expect("version"), Some(3));
    // The log goes on where the import stopped.
    let next = store
        .append(
            "a",
            ExpectedVersion::Exact(3),
            vec![event("After", json!({}))],
        )
        .await
        .expect("append after the import");
    assert_eq!(next.first_version, 4);
    assert!(next.last_position > 9, "positions continue past the import");
}

pub async fn import_into_a_store_with_history_is_refused(store: Arc<dyn Store>) {
    store
        .append(
            "x",
            ExpectedVersion::NoStream,
            vec![event_by("E", None, None)],
        )
        .await
        .expect("append");
    let before = all_events(store.as_ref()).await;
    let err = store.import(&history(), &[]).await.expect_err("refused");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("not empty")),
        "{err}"
    );
    assert_eq!(all_events(store.as_ref()).await, before, "nothing written");
}

pub async fn import_of_an_impossible_log_is_refused(store: Arc<dyn Store>) {
    let mut gap = history();
    gap[2].version = 3; // stream a: 1, 3
    let mut backwards = history();
    backwards[3].position = 4; // after 5
    let mut empty_stream = history();
    empty_stream[0].stream = String::new();
    for (what, events) in [
        ("gap", gap),
        ("backwards", backwards),
        ("empty", empty_stream),
    ] {
        let err = store.import(&events, &[]).await.expect_err(what);
        assert!(matches!(err, StoreError::Invalid(_)), "{what}: {err}");
        assert_eq!(store.head_position().await.expect("head"), 0, "{what}");
    }
}

pub async fn export_then_import_reads_back_identically(
    source: Arc<dyn Store>,
    target: Arc<dyn Store>,
) {
    for i in 0..30u64 {
        let stream = format!("s{}", i % 4);
        source
            .append_many(vec![
                StreamWrite {
                    stream: stream.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![event_by("E", Some("app-1"), Some("user:u1"))],
                },
                StreamWrite {
                    stream: format!("other{i}"),
                    expected: ExpectedVersion::NoStream,
                    events: vec![event(
                        "O",
                        json!({ "i": i, "text": "ünïcode ✓ \n\"quoted\"" }),
                    )],
                },
            ])
            .await
            .expect("append");
    }
    for (app, key, value) in [
        ("app-1", "b", "[1,2]"),
        ("app-1", "a", "\"ü\""),
        ("app-2", "a", "1"),
    ] {
        source.kv_put(app, key, value, 10).await.expect("kv");
    }
    // More keys than one page of the export's scan.
    for i in 0..1_005 {
        source
            .kv_put("app-3", &format!("k{i:05}"), "true", 2_000)
            .await
            .expect("kv");
    }
    let mut file = Vec::new();
    let summary = transfer::export(source.as_ref(), &mut file)
        .await
        .expect("export");
    assert_eq!(summary.events, 60);
    assert_eq!(summary.kv, 1_008);
    let export = transfer::read_export(file.as_slice()).expect("a whole export reads back");
    transfer::import(target.as_ref(), &export)
        .await
        .expect("import");
    assert_eq!(
        all_events(target.as_ref()).await,
        all_events(source.as_ref()).await
    );
    for app in ["app-1", "app-2", "app-3"] {
        assert_eq!(
            target.kv_list(app, "", None, 2_000).await.expect("kv"),
            source.kv_list(app, "", None, 2_000).await.expect("kv"),
            "{app}'s kv data"
        );
    }

    // Truncated: the trailer (or more) is missing.
    let cut = &file[..file.len() / 2];
    let err = transfer::read_export(cut).expect_err("truncated");
    assert!(matches!(err, TransferError::Format { .. }), "{err}");
    // One byte changed inside an event's data: valid JSON, wrong checksum.
    let text = String::from_utf8(file.clone()).expect("utf-8");
    let altered = text.replacen("\"i\":7", "\"i\":8", 1);
    assert_ne!(altered, text);
    let err = transfer::read_export(altered.as_bytes()).expect_err("altered");
    assert!(err.to_string().contains("checksum"), "{err}");
    // A kv line dropped: the count no longer holds.
    let dropped: String = text
        .lines()
        .filter(|l| !l.contains("\"k00007\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = transfer::read_export(dropped.as_bytes()).expect_err("a kv line missing");
    assert!(err.to_string().contains("kv keys"), "{err}");
}
