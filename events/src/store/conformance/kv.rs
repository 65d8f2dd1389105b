//! The scripts' key-value store: the same behaviour on every backend.

use std::sync::Arc;

use crate::kv::KvError;
use crate::store::Store;

pub async fn kv_put_get_list_delete_round_trip(store: Arc<dyn Store>) {
    assert_eq!(store.kv_get("a1", "k").await.expect("get"), None);
    store
        .kv_put("a1", "k", r#"{"n":1}"#, 10)
        .await
        .expect("put");
    let entry = store
        .kv_get("a1", "k")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        entry.value, r#"{"n":1}"#,
        "the JSON text is kept as written"
    );
    store.kv_put("a1", "k", "[1,2]", 10).await.expect("replace");
    assert_eq!(
        store.kv_get("a1", "k").await.expect("get").map(|e| e.value),
        Some("[1,2]".to_owned())
    );
    // Another app's key of the same name is another key.
    assert_eq!(store.kv_get("a2", "k").await.expect("get"), None);

    for key in ["user:b", "user:a", "user:c", "users", "other", "user:é"] {
        store.kv_put("a1", key, "true", 10).await.expect("put");
    }
    store.kv_put("a2", "user:z", "1", 10).await.expect("put");
    let keys = |entries: Vec<crate::kv::KvEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.key).collect()
    };
    let listed = keys(store.kv_list("a1", "user:", None, 100).await.expect("list"));
    assert_eq!(
        listed,
        ["user:a", "user:b", "user:c", "user:é"],
        "byte order, prefix only"
    );
    let page = keys(
        store
            .kv_list("a1", "user:", Some("user:a"), 2)
            .await
            .expect("list"),
    );
    assert_eq!(page, ["user:b", "user:c"], "after and limit page through");
    let all = keys(store.kv_list("a1", "", None, 100).await.expect("list"));
    assert_eq!(all.len(), 7);
    // LIKE metacharacters are not patterns.
    store.kv_put("a1", "p%x", "1", 10).await.expect("put");
    let literal = keys(store.kv_list("a1", "p%", None, 10).await.expect("list"));
    assert_eq!(literal, ["p%x"]);
    assert!(keys(store.kv_list("a1", "_", None, 10).await.expect("list")).is_empty());

    assert!(store.kv_delete("a1", "k").await.expect("delete"));
    assert!(!store.kv_delete("a1", "k").await.expect("delete again"));
    assert_eq!(store.kv_get("a1", "k").await.expect("get"), None);
    let cleared = store.kv_clear("a1").await.expect("clear");
    assert_eq!(cleared, 7);
    assert!(
        store
            .kv_list("a1", "", None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.kv_list("a2", "", None, 10).await.expect("list").len(),
        1
    );
}

pub async fn kv_refuses_keys_past_the_cap_but_not_replacements(store: Arc<dyn Store>) {
    for i in 0..3 {
        store
            .kv_put("a1", &format!("k{i}"), "1", 3)
            .await
            .expect("room");
    }
    let refused = store.kv_put("a1", "k3", "1", 3).await;
    assert!(
        matches!(refused, Err(KvError::TooManyKeys(3))),
        "{refused:?}"
    );
    assert!(matches!(
        store.kv_incr("a1", "k3", 1, 3).await,
        Err(KvError::TooManyKeys(3))
    ));
    assert_eq!(
        store.kv_get("a1", "k3").await.expect("get"),
        None,
        "nothing written"
    );
    store
        .kv_put("a1", "k0", "2", 3)
        .await
        .expect("a replacement needs no room");
    assert_eq!(store.kv_incr("a1", "k1", 5, 3).await.expect("incr"), 6);
    store
        .kv_put("a2", "k0", "1", 3)
        .await
        .expect("the cap is per app");
}

pub async fn kv_incr_counts_and_refuses_non_integers(store: Arc<dyn Store>) {
    assert_eq!(store.kv_incr("a1", "n", 5, 10).await.expect("incr"), 5);
    assert_eq!(store.kv_incr("a1", "n", -7, 10).await.expect("incr"), -2);
    assert_eq!(
        store.kv_get("a1", "n").await.expect("get").map(|e| e.value),
        Some("-2".to_owned())
    );
    store.kv_put("a1", "s", r#""text""#, 10).await.expect("put");
    assert!(matches!(
        store.kv_incr("a1", "s", 1, 10).await,
        Err(KvError::NotInteger)
    ));
    store.kv_put("a1", "f", "1.5", 10).await.expect("put");
    assert!(matches!(
        store.kv_incr("a1", "f", 1, 10).await,
        Err(KvError::NotInteger)
    ));
    store
        .kv_put("a1", "big", &i64::MAX.to_string(), 10)
        .await
        .expect("put");
    assert!(matches!(
        store.kv_incr("a1", "big", 1, 10).await,
        Err(KvError::Overflow)
    ));
    assert_eq!(
        store
            .kv_get("a1", "big")
            .await
            .expect("get")
            .map(|e| e.value),
        Some(i64::MAX.to_string()),
        "a refused increment changes nothing"
    );
}

pub async fn concurrent_kv_increments_are_all_counted(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.kv_incr("a1", "hits", 1, 10).await.expect("incr")
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.expect("task"));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=1000).collect::<Vec<i64>>(),
        "every increment saw a distinct count"
    );
    assert_eq!(
        store
            .kv_get("a1", "hits")
            .await
            .expect("get")
            .map(|e| e.value),
        Some("1000".to_owned())
    );
}
