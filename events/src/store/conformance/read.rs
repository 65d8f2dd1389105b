//! Reads: streams, the whole log, browse, the head, wake-ups and ping.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{event, event_by};
use crate::event::{EventFilter, ExpectedVersion, NewEvent};
use crate::store::{Selection, Store};

pub async fn read_stream_starts_at_from_version_and_stops_at_limit(store: Arc<dyn Store>) {
    let events: Vec<NewEvent> = (1..=5).map(|i| event("N", json!({ "i": i }))).collect();
    store
        .append("s", ExpectedVersion::NoStream, events)
        .await
        .expect("append");
    store
        .append(
            "other",
            ExpectedVersion::NoStream,
            vec![event("X", json!({}))],
        )
        .await
        .expect("append");
    let versions =
        |es: Vec<crate::event::RecordedEvent>| es.iter().map(|e| e.version).collect::<Vec<_>>();
    assert_eq!(
        versions(store.read_stream("s", 1, 100).await.expect("read")),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        versions(store.read_stream("s", 0, 100).await.expect("read")),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        versions(store.read_stream("s", 3, 100).await.expect("read")),
        vec![3, 4, 5]
    );
    assert_eq!(
        versions(store.read_stream("s", 2, 2).await.expect("read")),
        vec![2, 3]
    );
    assert!(
        store
            .read_stream("s", 6, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(store.read_stream("s", 1, 0).await.expect("read").is_empty());
    assert!(
        store
            .read_stream("missing", 1, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let data = store.read_stream("s", 4, 1).await.expect("read");
    assert_eq!(data[0].data, json!({"i": 4}));
}

pub async fn read_all_is_in_position_order_and_pages_with_after(store: Arc<dyn Store>) {
    for i in 0..10 {
        let stream = format!("s{}", i % 3);
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![event("N", json!({ "i": i }))],
            )
            .await
            .expect("append");
    }
    let all = store.read_all(0, 100).await.expect("read_all");
    assert!(!all.pending);
    assert_eq!(all.events.len(), 10);
    assert!(all.events.windows(2).all(|w| w[0].position < w[1].position));
    let order: Vec<i64> = all
        .events
        .iter()
        .map(|e| e.data["i"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(
        order,
        (0..10).collect::<Vec<_>>(),
        "append order is position order"
    );

    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 3).await.expect("read_all").events;
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.position;
        paged.extend(page);
    }
    assert_eq!(paged, all.events);
    assert!(
        store
            .read_all(0, 0)
            .await
            .expect("read_all")
            .events
            .is_empty()
    );
    let last = all.events[9].position;
    assert!(
        store
            .read_all(last, 10)
            .await
            .expect("read_all")
            .events
            .is_empty()
    );
}

pub async fn read_selected_answers_the_selection_and_how_far_it_scanned(store: Arc<dyn Store>) {
    let streams = [
        "app-1",
        "invocation-1",
        "user-1",
        "app-2",
        "invocation-2",
        "invocation-3",
        "apple",
        "user-1",
        "invocation-4",
    ];
    for (i, stream) in streams.iter().enumerate() {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                vec![event("N", json!({ "i": i }))],
            )
            .await
            .expect("append");
    }
    let prefixes = ["app-", "user-"];
    let streams_only = Selection::streams(&prefixes);
    let all = store.read_all(0, 100).await.expect("read_all").events;
    let head = all.last().map(|e| e.position).unwrap_or(0);
    let wanted: Vec<_> = all
        .iter()
        .filter(|e| prefixes.iter().any(|p| e.stream.starts_with(p)))
        .cloned()
        .collect();
    assert_eq!(wanted.len(), 4, "apple is not app-");

    // One read covering everything.
    let read = store
        .read_selected(0, 100, &streams_only)
        .await
        .expect("read_selected");
    assert_eq!(read.events, wanted);
    assert_eq!(read.reached, head);
    assert!(!read.pending);

    // Pages of two scanned events: `reached` moves by two events each time, past
    // pages with nothing wanted in them, and the pages add up to the same events.
    let mut paged = Vec::new();
    let mut after = 0;
    let mut reads = 0;
    loop {
        let page = store
            .read_selected(after, 2, &streams_only)
            .await
            .expect("read_selected");
        if page.reached == after {
            assert!(page.events.is_empty());
            break;
        }
        let scanned: Vec<i64> = all
            .iter()
            .map(|e| e.position)
            .filter(|p| *p > after)
            .take(2)
            .collect();
        assert_eq!(Some(&page.reached), scanned.last(), "two events scanned");
        assert!(
            page.events
                .iter()
                .all(|e| e.position > after && e.position <= page.reached)
        );
        after = page.reached;
        paged.extend(page.events);
        reads += 1;
    }
    assert_eq!(reads, 5, "9 events in pages of 2");
    assert_eq!(paged, wanted);

    // No prefixes: nothing answered, the scan still moves on.
    let read = store
        .read_selected(0, 100, &Selection::streams(&[]))
        .await
        .expect("read_selected");
    assert!(read.events.is_empty());
    assert_eq!(read.reached, head);
    // Past the head, and a scan of nothing.
    let read = store
        .read_selected(head, 100, &streams_only)
        .await
        .expect("read_selected");
    assert_eq!((read.events.len(), read.reached), (0, head));
    let read = store
        .read_selected(0, 0, &streams_only)
        .await
        .expect("read_selected");
    assert_eq!((read.events.len(), read.reached), (0, 0));

    // Leaving out the events of one type: every `N` goes, an event of another
    // type stays.
    let other = store
        .append(
            "other-1",
            ExpectedVersion::NoStream,
            vec![event("M", json!({}))],
        )
        .await
        .expect("append");
    let read = store
        .read_selected(0, 100, &Selection::except_type("N"))
        .await
        .expect("read_selected");
    let kept: Vec<(&str, u64)> = read
        .events
        .iter()
        .map(|e| (e.stream.as_str(), e.version))
        .collect();
    assert_eq!(kept, [("other-1", 1)]);
    assert_eq!(read.reached, other.last_position);
    // Both at once: the streams' events, less those of that type.
    let other_type = store
        .append("user-1", ExpectedVersion::Any, vec![event("M", json!({}))])
        .await
        .expect("append");
    let both = Selection {
        prefixes: Some(&prefixes),
        except_type: Some("N"),
    };
    let read = store
        .read_selected(0, 100, &both)
        .await
        .expect("read_selected");
    let kept: Vec<(&str, u64)> = read
        .events
        .iter()
        .map(|e| (e.stream.as_str(), e.version))
        .collect();
    assert_eq!(kept, [("user-1", 3)]);
    assert_eq!(read.reached, other_type.last_position);
}

pub async fn browse_filters_by_every_field(store: Arc<dyn Store>) {
    let append = |stream: &'static str, e: NewEvent| {
        let store = store.clone();
        async move {
            store
                .append(stream, ExpectedVersion::Any, vec![e])
                .await
                .expect("append");
        }
    };
    append("app-1", event_by("AppCreated", Some("a1"), Some("user:u1"))).await;
    append("app-2", event_by("AppCreated", Some("a2"), Some("user:u2"))).await;
    append("user-1", event_by("UserCreated", None, Some("system"))).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    append(
        "app-1",
        event_by("ScriptSaved", Some("a1"), Some("user:u2")),
    )
    .await;

    let browse = |filter: EventFilter, after: i64, limit: usize| {
        let store = store.clone();
        async move {
            store
                .browse(&filter, after, limit)
                .await
                .expect("browse")
                .into_iter()
                .map(|e| (e.stream, e.event_type))
                .collect::<Vec<_>>()
        }
    };
    let pair = |s: &str, t: &str| (s.to_owned(), t.to_owned());
    assert_eq!(browse(EventFilter::default(), 0, 100).await.len(), 4);
    assert_eq!(
        browse(
            EventFilter {
                stream: Some("app-1".into()),
                ..Default::default()
            },
            0,
            100
        )
        .await,
        vec![pair("app-1", "AppCreated"), pair("app-1", "ScriptSaved")]
    );
    assert_eq!(
        browse(
            EventFilter {
                app: Some("a2".into()),
                ..Default::default()
            },
            0,
            100
        )
        .await,
        vec![pair("app-2", "AppCreated")]
    );
    assert_eq!(
        browse(
            EventFilter {
                actor: Some("user:u2".into()),
                ..Default::default()
            },
            0,
            100
        )
        .await,
        vec![pair("app-2", "AppCreated"), pair("app-1", "ScriptSaved")]
    );
    assert_eq!(
        browse(
            EventFilter {
                event_type: Some("UserCreated".into()),
                ..Default::default()
            },
            0,
            100
        )
        .await,
        vec![pair("user-1", "UserCreated")]
    );
    assert_eq!(
        browse(
            EventFilter {
                since: Some(cut),
                ..Default::default()
            },
            0,
            100
        )
        .await,
        vec![pair("app-1", "ScriptSaved")]
    );
    assert_eq!(
        browse(
            EventFilter {
                until: Some(cut),
                ..Default::default()
            },
            0,
            100
        )
        .await
        .len(),
        3
    );
    // Filters combine, and `after`/`limit` page through the result.
    let both = EventFilter {
        app: Some("a1".into()),
        actor: Some("user:u1".into()),
        ..Default::default()
    };
    assert_eq!(
        browse(both, 0, 100).await,
        vec![pair("app-1", "AppCreated")]
    );
    let first = store
        .browse(&EventFilter::default(), 0, 2)
        .await
        .expect("browse");
    assert_eq!(first.len(), 2);
    let rest = browse(EventFilter::default(), first[1].position, 100).await;
    assert_eq!(
        rest,
        vec![pair("user-1", "UserCreated"), pair("app-1", "ScriptSaved")]
    );
    assert!(
        browse(
            EventFilter {
                app: Some("none".into()),
                ..Default::default()
            },
            0,
            100
        )
        .await
        .is_empty()
    );
}

pub async fn head_position_is_zero_then_the_last_position(store: Arc<dyn Store>) {
    assert_eq!(store.head_position().await.expect("head"), 0);
    let a = store
        .append(
            "s",
            ExpectedVersion::Any,
            vec![event("A", json!({})), event("B", json!({}))],
        )
        .await
        .expect("append");
    assert_eq!(store.head_position().await.expect("head"), a.last_position);
    let b = store
        .append("t", ExpectedVersion::Any, vec![event("C", json!({}))])
        .await
        .expect("append");
    assert!(b.last_position > a.last_position);
    assert_eq!(store.head_position().await.expect("head"), b.last_position);
}

pub async fn wakeup_fires_after_an_append(store: Arc<dyn Store>) {
    let mut wake = store.wakeups();
    wake.borrow_and_update();
    store
        .append("s", ExpectedVersion::Any, vec![event("A", json!({}))])
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(5), wake.changed())
        .await
        .expect("a wake-up within 5 s of the append")
        .expect("the store is alive");
    // Seen once; the next append wakes again.
    wake.borrow_and_update();
    store
        .append("s", ExpectedVersion::Any, vec![event("B", json!({}))])
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(5), wake.changed())
        .await
        .expect("a second wake-up")
        .expect("the store is alive");
}

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}
