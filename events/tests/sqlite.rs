//! The conformance suite against SQLite: a fresh database file per test.

use std::sync::Arc;

use picloud_events::store::conformance;
use picloud_events::{Store, open};

struct TempStore {
    store: Arc<dyn Store>,
    // Dropped (and deleted) after the store is closed.
    _dir: tempfile::TempDir,
}

async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&picloud_events::store::sqlite_url(dir.path()))
        .await
        .expect("open a SQLite store");
    TempStore { store, _dir: dir }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let t = fresh().await;
                conformance::$name(t.store.clone()).await;
                t.store.close().await;
            }
        )*
    };
}

conformance!(
    append_and_read_round_trip_every_field,
    append_with_any_appends_whatever_the_stream_holds,
    append_to_an_existing_stream_with_no_stream_is_a_conflict,
    append_with_stale_expected_version_is_a_conflict,
    append_with_exact_version_on_a_missing_stream_is_a_conflict,
    append_with_exact_zero_accepts_an_empty_stream,
    empty_append_is_invalid,
    append_many_appends_every_stream_in_one_go,
    append_many_is_all_or_nothing,
    append_many_with_a_conflict_in_the_middle_writes_nothing,
    append_many_of_many_streams_lands_in_order,
    append_projected_writes_the_events_and_the_documents_together,
    read_stream_starts_at_from_version_and_stops_at_limit,
    read_all_is_in_position_order_and_pages_with_after,
    read_selected_answers_the_selection_and_how_far_it_scanned,
    browse_filters_by_every_field,
    head_position_is_zero_then_the_last_position,
    wakeup_fires_after_an_append,
    ping_answers,
    racing_appenders_with_the_same_expected_version_one_wins,
    racing_no_stream_claims_one_wins,
    concurrent_any_appends_to_one_stream_all_succeed,
    concurrent_appenders_and_a_follower_see_every_event_once_in_order,
    apply_writes_docs_and_checkpoint_together,
    apply_is_idempotent_for_an_old_checkpoint,
    apply_of_a_long_batch_applies_every_op_in_order,
    merge_updates_top_level_keys_and_set_columns,
    delete_removes_a_document,
    doc_query_filters_by_app_and_tags,
    doc_query_is_newest_first_and_pages_with_before_sort,
    reset_clears_the_collections_and_the_checkpoint,
    snapshots_round_trip_and_replace,
    import_keeps_positions_versions_metadata_and_times,
    import_into_a_store_with_history_is_refused,
    import_of_an_impossible_log_is_refused,
    deliveries_are_claimed_once_when_due_and_again_after_the_lease,
    nodes_are_registered_updated_and_listed_oldest_first,
    a_row_is_written_leased_to_its_node_unless_that_node_is_gone,
    a_silent_node_is_reaped_once_and_its_leases_freed,
    releasing_a_nodes_leases_wakes_the_dispatchers,
    next_delivery_at_is_the_earliest_due_row_or_lease_end,
    concurrent_claimers_never_share_a_delivery,
    kv_put_get_list_delete_round_trip,
    kv_refuses_keys_past_the_cap_but_not_replacements,
    kv_incr_counts_and_refuses_non_integers,
    concurrent_kv_increments_are_all_counted,
    catch_up_applies_the_log_and_rebuild_gives_the_same_state,
    follow_applies_new_events_and_stops_on_shutdown,
    a_follower_skips_written_through_events_and_a_replay_applies_them,
);

#[tokio::test]
async fn reopening_keeps_the_log_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = picloud_events::store::sqlite_url(&dir.path().join("nested"));
    let store = open(&url)
        .await
        .expect("open creates the directory and the file");
    store
        .append(
            "s",
            picloud_events::ExpectedVersion::NoStream,
            vec![conformance::event("A", serde_json::json!({"x": 1}))],
        )
        .await
        .expect("append");
    store.close().await;
    let again = open(&url).await.expect("reopen");
    let events = again.read_stream("s", 1, 10).await.expect("read");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data, serde_json::json!({"x": 1}));
    assert_eq!(again.backend(), picloud_events::Backend::Sqlite);
    again.close().await;
}

#[tokio::test]
async fn a_store_uses_wal_journal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&picloud_events::store::sqlite_url(dir.path()))
        .await
        .expect("open");
    store.close().await;
    assert!(
        dir.path().join("picloud.db-wal").exists() || {
            // The WAL file may be checkpointed away on close; the header says WAL.
            let header = std::fs::read(dir.path().join("picloud.db")).expect("db file");
            header.get(18..20) == Some(&[2, 2])
        },
        "the database is in WAL mode"
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = picloud_events::store::sqlite_url(dir.path());
    open(&url).await.expect("open").close().await;
    let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rw"))
        .await
        .expect("raw connection");
    sqlx::query("UPDATE picloud_migrations SET checksum = 'edited' WHERE version = 1")
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let err = open(&url).await.err().expect("open must fail");
    assert!(
        err.to_string().contains("changed after it was applied"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_then_import_reads_back_identically() {
    let (source, target) = (fresh().await, fresh().await);
    conformance::export_then_import_reads_back_identically(
        source.store.clone(),
        target.store.clone(),
    )
    .await;
}
