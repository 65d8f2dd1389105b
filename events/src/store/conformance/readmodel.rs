//! Read models: documents with their checkpoint, merges, queries, reset and
//! snapshots.

use std::sync::Arc;

use serde_json::json;

use crate::readmodel::{Doc, DocQuery, RowOp};
use crate::store::Store;

fn doc(
    collection: &str,
    key: &str,
    app: Option<&str>,
    sort: i64,
    tags: (Option<&str>, Option<&str>),
) -> Doc {
    Doc {
        collection: collection.into(),
        key: key.into(),
        app: app.map(Into::into),
        sort,
        tag1: tags.0.map(Into::into),
        tag2: tags.1.map(Into::into),
        body: json!({ "key": key, "sort": sort }),
    }
}

fn keys(docs: &[Doc]) -> Vec<&str> {
    docs.iter().map(|d| d.key.as_str()).collect()
}

pub async fn apply_writes_docs_and_checkpoint_together(store: Arc<dyn Store>) {
    assert_eq!(
        store.checkpoint("p").await.expect("checkpoint"),
        0,
        "unknown is 0"
    );
    let a = doc("things", "a", Some("app-1"), 10, (Some("x"), None));
    let b = doc("things", "b", None, 20, (None, None));
    store
        .apply("p", vec![RowOp::Put(a.clone()), RowOp::Put(b.clone())], 5)
        .await
        .expect("apply");
    assert_eq!(store.checkpoint("p").await.expect("checkpoint"), 5);
    assert_eq!(store.get_doc("things", "a").await.expect("get"), Some(a));
    assert_eq!(store.get_doc("things", "b").await.expect("get"), Some(b));
    assert_eq!(store.get_doc("things", "c").await.expect("get"), None);
    assert_eq!(store.get_doc("other", "a").await.expect("get"), None);

    // Put replaces the whole document; a batch with no ops still moves the checkpoint.
    let a2 = doc("things", "a", None, 11, (None, Some("y")));
    store
        .apply("p", vec![RowOp::Put(a2.clone())], 6)
        .await
        .expect("apply");
    assert_eq!(store.get_doc("things", "a").await.expect("get"), Some(a2));
    store.apply("p", vec![], 9).await.expect("apply");
    assert_eq!(store.checkpoint("p").await.expect("checkpoint"), 9);

    store.apply("q", vec![], 3).await.expect("apply");
    assert_eq!(
        store.checkpoints().await.expect("checkpoints"),
        vec![("p".to_owned(), 9), ("q".to_owned(), 3)]
    );
}

pub async fn apply_is_idempotent_for_an_old_checkpoint(store: Arc<dyn Store>) {
    let first = doc("things", "a", None, 1, (None, None));
    store
        .apply("p", vec![RowOp::Put(first.clone())], 10)
        .await
        .expect("apply");
    // A re-delivered batch (same or older checkpoint) changes nothing at all.
    for old in [10, 7] {
        store
            .apply(
                "p",
                vec![
                    RowOp::Put(doc("things", "a", Some("changed"), 99, (None, None))),
                    RowOp::Put(doc("things", "new", None, 1, (None, None))),
                ],
                old,
            )
            .await
            .expect("apply");
        assert_eq!(
            store.get_doc("things", "a").await.expect("get"),
            Some(first.clone())
        );
        assert_eq!(store.get_doc("things", "new").await.expect("get"), None);
        assert_eq!(store.checkpoint("p").await.expect("checkpoint"), 10);
    }
    // Another projection's checkpoint is its own.
    store
        .apply(
            "other",
            vec![RowOp::Put(doc("others", "a", None, 1, (None, None)))],
            3,
        )
        .await
        .expect("apply");
    assert!(store.get_doc("others", "a").await.expect("get").is_some());
}

pub async fn merge_updates_top_level_keys_and_set_columns(store: Arc<dyn Store>) {
    let mut first = doc(
        "inv",
        "i1",
        Some("app-1"),
        100,
        (Some("queued"), Some("script-1")),
    );
    first.body = json!({"status": "queued", "logs": ["a"], "meta": {"x": 1}});
    // Merge into nothing inserts.
    store
        .apply("p", vec![RowOp::Merge(first.clone())], 1)
        .await
        .expect("apply");
    assert_eq!(store.get_doc("inv", "i1").await.expect("get"), Some(first));

    let update = Doc {
        collection: "inv".into(),
        key: "i1".into(),
        app: None,
        sort: 0,
        tag1: Some("succeeded".into()),
        tag2: None,
        body: json!({"status": "succeeded", "meta": {"y": 2}, "ms": 3}),
    };
    store
        .apply("p", vec![RowOp::Merge(update)], 2)
        .await
        .expect("apply");
    let merged = store
        .get_doc("inv", "i1")
        .await
        .expect("get")
        .expect("merged doc");
    assert_eq!(
        merged.body,
        json!({"status": "succeeded", "logs": ["a"], "meta": {"y": 2}, "ms": 3})
    );
    assert_eq!(
        merged.app.as_deref(),
        Some("app-1"),
        "None keeps the stored app"
    );
    assert_eq!(merged.sort, 100, "0 keeps the stored sort");
    assert_eq!(merged.tag1.as_deref(), Some("succeeded"));
    assert_eq!(merged.tag2.as_deref(), Some("script-1"));

    // Several ops on one document in one batch apply in order.
    let mut put = doc("inv", "i2", None, 5, (None, None));
    put.body = json!({"a": 1});
    let mut merge = doc("inv", "i2", Some("app-2"), 6, (None, None));
    merge.body = json!({"b": 2});
    store
        .apply("p", vec![RowOp::Put(put), RowOp::Merge(merge)], 3)
        .await
        .expect("apply");
    let both = store.get_doc("inv", "i2").await.expect("get").expect("doc");
    assert_eq!(both.body, json!({"a": 1, "b": 2}));
    assert_eq!((both.app.as_deref(), both.sort), (Some("app-2"), 6));
}

pub async fn delete_removes_a_document(store: Arc<dyn Store>) {
    store
        .apply(
            "p",
            vec![
                RowOp::Put(doc("c", "a", None, 1, (None, None))),
                RowOp::Put(doc("c", "b", None, 2, (None, None))),
            ],
            1,
        )
        .await
        .expect("apply");
    store
        .apply(
            "p",
            vec![
                RowOp::Delete {
                    collection: "c".into(),
                    key: "a".into(),
                },
                RowOp::Delete {
                    collection: "c".into(),
                    key: "missing".into(),
                },
            ],
            2,
        )
        .await
        .expect("deleting a missing document is fine");
    assert_eq!(store.get_doc("c", "a").await.expect("get"), None);
    assert!(store.get_doc("c", "b").await.expect("get").is_some());
}

fn query(collection: &str, limit: usize) -> DocQuery {
    DocQuery {
        collection: collection.into(),
        limit,
        ..DocQuery::default()
    }
}

pub async fn doc_query_filters_by_app_and_tags(store: Arc<dyn Store>) {
    let docs = vec![
        doc("inv", "1", Some("a1"), 1, (Some("ok"), Some("s1"))),
        doc("inv", "2", Some("a1"), 2, (Some("failed"), Some("s1"))),
        doc("inv", "3", Some("a1"), 3, (Some("ok"), Some("s2"))),
        doc("inv", "4", Some("a2"), 4, (Some("ok"), Some("s3"))),
        doc("inv", "5", None, 5, (None, None)),
        doc("other", "6", Some("a1"), 6, (Some("ok"), Some("s1"))),
    ];
    store
        .apply("p", docs.into_iter().map(RowOp::Put).collect(), 1)
        .await
        .expect("apply");
    let run = |q: DocQuery| {
        let store = store.clone();
        async move { store.query_docs(&q).await.expect("query_docs") }
    };
    assert_eq!(
        keys(&run(query("inv", 100)).await),
        vec!["5", "4", "3", "2", "1"]
    );
    let by_app = DocQuery {
        app: Some("a1".into()),
        ..query("inv", 100)
    };
    assert_eq!(keys(&run(by_app).await), vec!["3", "2", "1"]);
    let by_tag1 = DocQuery {
        tag1: Some("ok".into()),
        ..query("inv", 100)
    };
    assert_eq!(keys(&run(by_tag1).await), vec!["4", "3", "1"]);
    let by_all = DocQuery {
        app: Some("a1".into()),
        tag1: Some("ok".into()),
        tag2: Some("s1".into()),
        ..query("inv", 100)
    };
    let found = run(by_all).await;
    assert_eq!(keys(&found), vec!["1"]);
    assert_eq!(found[0].body, json!({"key": "1", "sort": 1}));
    let by_tag2 = DocQuery {
        tag2: Some("s2".into()),
        ..query("inv", 100)
    };
    assert_eq!(keys(&run(by_tag2).await), vec!["3"]);
    assert!(run(query("inv", 0)).await.is_empty());
    assert!(run(query("none", 10)).await.is_empty());
}

pub async fn doc_query_is_newest_first_and_pages_with_before_sort(store: Arc<dyn Store>) {
    // Ties on sort are broken by key, descending.
    let docs: Vec<RowOp> = [
        ("a", 10),
        ("b", 30),
        ("c", 20),
        ("d", 30),
        ("e", 40),
        ("f", 5),
    ]
    .into_iter()
    .map(|(k, s)| RowOp::Put(doc("c", k, Some("app"), s, (None, None))))
    .collect();
    store.apply("p", docs, 1).await.expect("apply");
    let all = store.query_docs(&query("c", 100)).await.expect("query");
    assert_eq!(keys(&all), vec!["e", "d", "b", "c", "a", "f"]);

    let first = store.query_docs(&query("c", 2)).await.expect("query");
    assert_eq!(keys(&first), vec!["e", "d"]);
    let next = DocQuery {
        before_sort: Some(first[1].sort),
        ..query("c", 2)
    };
    assert_eq!(
        keys(&store.query_docs(&next).await.expect("query")),
        vec!["c", "a"]
    );
    let last = DocQuery {
        before_sort: Some(10),
        app: Some("app".into()),
        ..query("c", 2)
    };
    assert_eq!(
        keys(&store.query_docs(&last).await.expect("query")),
        vec!["f"]
    );
}

pub async fn reset_clears_the_collections_and_the_checkpoint(store: Arc<dyn Store>) {
    store
        .apply(
            "p",
            vec![
                RowOp::Put(doc("mine", "a", None, 1, (None, None))),
                RowOp::Put(doc("mine2", "b", None, 1, (None, None))),
            ],
            7,
        )
        .await
        .expect("apply");
    store
        .apply(
            "q",
            vec![RowOp::Put(doc("theirs", "c", None, 1, (None, None)))],
            4,
        )
        .await
        .expect("apply");
    store.reset("p", &["mine", "mine2"]).await.expect("reset");
    assert_eq!(store.checkpoint("p").await.expect("checkpoint"), 0);
    assert_eq!(store.get_doc("mine", "a").await.expect("get"), None);
    assert_eq!(store.get_doc("mine2", "b").await.expect("get"), None);
    assert!(
        store.get_doc("theirs", "c").await.expect("get").is_some(),
        "other collections stay"
    );
    assert_eq!(store.checkpoint("q").await.expect("checkpoint"), 4);
    assert_eq!(
        store.checkpoints().await.expect("checkpoints"),
        vec![("q".to_owned(), 4)]
    );
    // After a reset the same batch applies again.
    store
        .apply(
            "p",
            vec![RowOp::Put(doc("mine", "a", None, 1, (None, None)))],
            7,
        )
        .await
        .expect("apply");
    assert!(store.get_doc("mine", "a").await.expect("get").is_some());
}

pub async fn snapshots_round_trip_and_replace(store: Arc<dyn Store>) {
    assert_eq!(store.load_snapshot("catalog").await.expect("load"), None);
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .save_snapshot("catalog", 42, bytes.clone())
        .await
        .expect("save");
    assert_eq!(
        store.load_snapshot("catalog").await.expect("load"),
        Some((42, bytes))
    );
    store
        .save_snapshot("catalog", 50, vec![1, 0, 2])
        .await
        .expect("save");
    assert_eq!(
        store.load_snapshot("catalog").await.expect("load"),
        Some((50, vec![1, 0, 2]))
    );
    store.save_snapshot("empty", 1, vec![]).await.expect("save");
    assert_eq!(
        store.load_snapshot("empty").await.expect("load"),
        Some((1, vec![]))
    );
    assert_eq!(store.load_snapshot("other").await.expect("load"), None);
}

/// A long batch, as a projection following a busy log writes it: runs of puts
/// (some to the same key) broken by merges and deletes. Each op sees the ones
/// before it.
pub async fn apply_of_a_long_batch_applies_every_op_in_order(store: Arc<dyn Store>) {
    let mut ops = Vec::new();
    for i in 0..600 {
        ops.push(RowOp::Put(doc(
            "many",
            &format!("k{i}"),
            None,
            i,
            (None, None),
        )));
    }
    // The same key twice in one run of puts: the later one wins.
    ops.push(RowOp::Put(doc(
        "many",
        "k5",
        Some("first"),
        1,
        (None, None),
    )));
    ops.push(RowOp::Put(doc(
        "many",
        "k5",
        Some("second"),
        2,
        (None, None),
    )));
    let mut merge = doc("many", "k7", None, 0, (Some("merged"), None));
    merge.body = json!({"extra": true});
    ops.push(RowOp::Merge(merge));
    // A put after a merge replaces the merged document whole.
    ops.push(RowOp::Put(doc(
        "many",
        "k8",
        None,
        8,
        (None, Some("again")),
    )));
    ops.push(RowOp::Delete {
        collection: "many".into(),
        key: "k9".into(),
    });
    // A put after a delete brings the document back.
    ops.push(RowOp::Put(doc("many", "k9", None, 99, (None, None))));
    ops.push(RowOp::Delete {
        collection: "many".into(),
        key: "k10".into(),
    });
    store.apply("p", ops, 42).await.expect("apply");

    assert_eq!(store.checkpoint("p").await.expect("checkpoint"), 42);
    let get = |key: &'static str| {
        let store = store.clone();
        async move { store.get_doc("many", key).await.expect("get") }
    };
    assert_eq!(
        get("k0").await,
        Some(doc("many", "k0", None, 0, (None, None)))
    );
    assert_eq!(
        get("k599").await,
        Some(doc("many", "k599", None, 599, (None, None)))
    );
    assert_eq!(
        get("k5").await,
        Some(doc("many", "k5", Some("second"), 2, (None, None)))
    );
    let mut merged = doc("many", "k7", None, 7, (Some("merged"), None));
    merged.body = json!({"key": "k7", "sort": 7, "extra": true});
    assert_eq!(get("k7").await, Some(merged));
    assert_eq!(
        get("k8").await,
        Some(doc("many", "k8", None, 8, (None, Some("again"))))
    );
    assert_eq!(
        get("k9").await,
        Some(doc("many", "k9", None, 99, (None, None)))
    );
    assert_eq!(get("k10").await, None);
    let all = store
        .query_docs(&DocQuery {
            collection: "many".into(),
            limit: 1_000,
            ..DocQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(all.len(), 599, "600 keys, one deleted");
}
