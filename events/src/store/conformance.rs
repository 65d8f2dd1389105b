//! The conformance suite: what every `Store` backend must do, as plain async
//! functions over `Arc<dyn Store>`. `events/tests/sqlite.rs` and
//! `events/tests/postgres.rs` run each one against a fresh store; a new backend
//! passes when it passes all of them.
//!
//! Each function panics (with a message naming the broken rule) on failure.

mod append;
mod cluster;
mod concurrency;
mod kv;
mod outbox;
mod projection;
mod read;
mod readmodel;
mod transfer;

use serde_json::json;

use crate::event::{Metadata, NewEvent};

pub use append::{
    append_and_read_round_trip_every_field, append_many_appends_every_stream_in_one_go,
    append_many_is_all_or_nothing, append_many_of_many_streams_lands_in_order,
    append_many_with_a_conflict_in_the_middle_writes_nothing,
    append_projected_writes_the_events_and_the_documents_together,
    append_to_an_existing_stream_with_no_stream_is_a_conflict,
    append_with_any_appends_whatever_the_stream_holds,
    append_with_exact_version_on_a_missing_stream_is_a_conflict,
    append_with_exact_zero_accepts_an_empty_stream,
    append_with_stale_expected_version_is_a_conflict, empty_append_is_invalid,
};
pub use cluster::{
    a_row_is_written_leased_to_its_node_unless_that_node_is_gone,
    a_silent_node_is_reaped_once_and_its_leases_freed,
    nodes_are_registered_updated_and_listed_oldest_first,
    releasing_a_nodes_leases_wakes_the_dispatchers,
};
pub use concurrency::{
    concurrent_any_appends_to_one_stream_all_succeed,
    concurrent_appenders_and_a_follower_see_every_event_once_in_order,
    racing_appenders_with_the_same_expected_version_one_wins, racing_no_stream_claims_one_wins,
};
pub use kv::{
    concurrent_kv_increments_are_all_counted, kv_incr_counts_and_refuses_non_integers,
    kv_put_get_list_delete_round_trip, kv_refuses_keys_past_the_cap_but_not_replacements,
};
pub use outbox::{
    concurrent_claimers_never_share_a_delivery,
    deliveries_are_claimed_once_when_due_and_again_after_the_lease,
    next_delivery_at_is_the_earliest_due_row_or_lease_end,
};
pub use projection::{
    a_follower_skips_written_through_events_and_a_replay_applies_them,
    catch_up_applies_the_log_and_rebuild_gives_the_same_state,
    follow_applies_new_events_and_stops_on_shutdown,
};
pub use read::{
    browse_filters_by_every_field, head_position_is_zero_then_the_last_position, ping_answers,
    read_all_is_in_position_order_and_pages_with_after,
    read_selected_answers_the_selection_and_how_far_it_scanned,
    read_stream_starts_at_from_version_and_stops_at_limit, wakeup_fires_after_an_append,
};
pub use readmodel::{
    apply_is_idempotent_for_an_old_checkpoint, apply_of_a_long_batch_applies_every_op_in_order,
    apply_writes_docs_and_checkpoint_together, delete_removes_a_document,
    doc_query_filters_by_app_and_tags, doc_query_is_newest_first_and_pages_with_before_sort,
    merge_updates_top_level_keys_and_set_columns, reset_clears_the_collections_and_the_checkpoint,
    snapshots_round_trip_and_replace,
};
pub use transfer::{
    export_then_import_reads_back_identically, import_into_a_store_with_history_is_refused,
    import_keeps_positions_versions_metadata_and_times, import_of_an_impossible_log_is_refused,
};

/// An event of `event_type` with `data` and no metadata but the schema.
pub fn event(event_type: &str, data: serde_json::Value) -> NewEvent {
    NewEvent::new(event_type, data, Metadata::default())
}

/// An event with an app and an actor, for browsing.
pub fn event_by(event_type: &str, app: Option<&str>, actor: Option<&str>) -> NewEvent {
    NewEvent::new(
        event_type,
        json!({ "by": actor }),
        Metadata {
            app: app.map(Into::into),
            actor: actor.map(Into::into),
            ..Metadata::default()
        },
    )
}
