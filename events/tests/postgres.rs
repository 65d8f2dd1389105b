//! The conformance suite against PostgreSQL, plus what only PostgreSQL has:
//! late commits, LISTEN/NOTIFY between nodes, a link that reconnects.
//!
//! `PICLOUD_TEST_DATABASE_URL` names a server (`ops/test.sh` starts one); each
//! test creates its own database `picloud_test_<random>` and drops it after, so
//! tests run in parallel. Without the variable the tests print a notice and pass,
//! except under `CI=true`, where a missing PostgreSQL is a failure.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use picloud_events::store::conformance;
use picloud_events::store::postgres::{TestHooks, open_with_hooks, stream_lock_key};
use picloud_events::{ExpectedVersion, Selection, Store, StoreError, StreamWrite};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const SERVER_VAR: &str = "PICLOUD_TEST_DATABASE_URL";

/// A database of its own for one test.
struct TestDb {
    server: String,
    name: String,
    url: String,
}

/// `None` (after a notice) when no server is configured outside CI.
async fn fresh_db() -> Option<TestDb> {
    let server = match std::env::var(SERVER_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{SERVER_VAR} is not set and CI=true: the PostgreSQL conformance suite \
                     must run in CI. Run ops/test.sh, which starts a throwaway PostgreSQL."
                );
            }
            eprintln!(
                "notice: {SERVER_VAR} is not set; skipping this PostgreSQL test (ops/test.sh sets it)"
            );
            return None;
        }
    };
    let name = format!("picloud_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {SERVER_VAR}: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let _ = conn.close().await;
    Some(TestDb {
        url: with_database(&server, &name),
        server,
        name,
    })
}

impl TestDb {
    async fn drop_db(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.server).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
                eprintln!("warning: could not drop {}: {e}", self.name);
            }
            let _ = conn.close().await;
        }
    }

    async fn raw(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("raw connection")
    }
}

/// The server URL with its database replaced by `db` (query string kept).
fn with_database(server: &str, db: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut url = format!("{}/{db}", &base[..path]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Run `test` against a fresh store on a fresh database, then clean up (also when
/// the test panics).
async fn run<F, Fut>(hooks: TestHooks, test: F)
where
    F: FnOnce(Arc<dyn Store>, Arc<TestDb>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = fresh_db().await else { return };
    let db = Arc::new(db);
    let store = open_with_hooks(&db.url, hooks)
        .await
        .expect("open a PostgreSQL store");
    let outcome = tokio::spawn(test(store.clone(), db.clone())).await;
    store.close().await;
    drop(store);
    if let Ok(db) = Arc::try_unwrap(db) {
        db.drop_db().await;
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                run(TestHooks::default(), |store, _| conformance::$name(store)).await;
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

/// Random 0–20 ms between insert and commit: appends commit out of position order.
fn late_commits() -> TestHooks {
    TestHooks {
        commit_delay_max: Some(Duration::from_millis(20)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_and_a_follower_see_every_event_once_in_order() {
    run(late_commits(), |store, _| {
        conformance::concurrent_appenders_and_a_follower_see_every_event_once_in_order(store)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appenders_with_late_commits_one_wins() {
    run(late_commits(), |store, _| {
        conformance::racing_appenders_with_the_same_expected_version_one_wins(store)
    })
    .await;
}

/// Insert one event in `conn`'s open transaction the way the store does.
async fn insert_uncommitted(conn: &mut PgConnection, stream: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT picloud_append_events(ARRAY[$1], ARRAY[1::bigint], ARRAY['Late'], ARRAY['{}'], \
         ARRAY['{\"schema\":1}'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[0::bigint])",
    )
    .bind(stream)
    .fetch_one(conn)
    .await
    .expect("insert in an open transaction")
}

/// A read of events that are all settled, tried again (100 times at most, 10 ms
/// apart) while it stops short. The read horizon is conservative by design
/// (`READ_HORIZON`: a running xid whose backend is not found is waited for), so
/// a transaction of another database — a test running in parallel — that ends
/// between the snapshot and the activity lookup can hold one read back for a
/// moment. The assertions after it still check that nothing unsettled is read.
async fn settled<T, F, Fut>(mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut answer = read().await.expect("read");
    for _ in 0..100 {
        if done(&answer) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        answer = read().await.expect("read");
    }
    answer
}

fn positions(events: &[picloud_events::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_all_holds_back_events_behind_an_open_transaction() {
    run(TestHooks::default(), |store, db| async move {
        let first = store
            .append(
                "a",
                ExpectedVersion::NoStream,
                vec![conformance::event("A", serde_json::json!({}))],
            )
            .await
            .expect("append");
        let mut late = db.raw().await;
        sqlx::query("BEGIN")
            .execute(&mut late)
            .await
            .expect("begin");
        let held = insert_uncommitted(&mut late, "late").await;
        let after = store
            .append(
                "b",
                ExpectedVersion::NoStream,
                vec![conformance::event("B", serde_json::json!({}))],
            )
            .await
            .expect("append");
        assert!(first.last_position < held && held < after.last_position);

        // `b` is committed, but `late` (a smaller position) may still commit.
        let read = store
            .read_all(first.last_position, 10)
            .await
            .expect("read_all");
        assert_eq!(
            positions(&read.events),
            Vec::<i64>::new(),
            "nothing past the open transaction"
        );
        assert!(read.pending, "committed events wait: pending");
        let read = settled(|| store.read_all(0, 10), |r| !r.events.is_empty()).await;
        assert_eq!(positions(&read.events), vec![first.last_position]);
        assert!(read.pending);
        // A selected read stops at the same place, whether or not the held-back
        // streams are wanted, and whatever it leaves out.
        let selections = [
            Selection::streams(&["a", "b", "late"]),
            Selection::streams(&["a"]),
            Selection::except_type("no-such-type"),
        ];
        for selection in &selections {
            let read = settled(
                || store.read_selected(0, 10, selection),
                |r| r.reached >= first.last_position,
            )
            .await;
            assert_eq!(positions(&read.events), vec![first.last_position]);
            assert_eq!(read.reached, first.last_position);
            assert!(read.pending);
        }

        sqlx::query("COMMIT")
            .execute(&mut late)
            .await
            .expect("commit");
        let read = settled(|| store.read_all(first.last_position, 10), |r| !r.pending).await;
        assert_eq!(
            positions(&read.events),
            vec![held, after.last_position],
            "the late commit is not skipped"
        );
        assert!(!read.pending);
        let late_only = Selection::streams(&["late"]);
        let read = settled(
            || store.read_selected(first.last_position, 10, &late_only),
            |r| !r.pending,
        )
        .await;
        assert_eq!(
            positions(&read.events),
            vec![held],
            "nor by a selected read"
        );
        assert_eq!(read.reached, after.last_position);
        assert!(!read.pending);
    })
    .await;
}

/// The global insert lock of `picloud_append_events` (migration 0001).
const INSERT_LOCK: i64 = 31_641_073_133_516_132;

/// Appends waiting on an advisory lock of this database, once there are any
/// (or 0 after 5 s).
async fn advisory_waiters_once_any(conn: &mut PgConnection) -> i64 {
    for _ in 0..500 {
        let waiting = advisory_waiters(conn).await;
        if waiting > 0 {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    0
}

/// Appends waiting on an advisory lock of this database.
async fn advisory_waiters(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
    )
    .fetch_one(conn)
    .await
    .expect("pg_locks")
}

/// One event to append.
fn one() -> Vec<picloud_events::NewEvent> {
    vec![conformance::event("E", serde_json::json!({}))]
}

fn write(stream: &str, expected: ExpectedVersion, events: usize) -> StreamWrite {
    StreamWrite {
        stream: stream.into(),
        expected,
        events: (0..events)
            .map(|i| conformance::event("Combined", serde_json::json!({ "i": i })))
            .collect(),
    }
}

/// Hold the insert lock, start one append to `first` (it makes its own call
/// and waits on the lock), then start `appends` while that call is in flight
/// (they queue behind it, in whatever order their tasks run), release the
/// lock and answer every append's result, in the order given.
async fn while_a_call_is_in_flight(
    store: &Arc<dyn Store>,
    db: &TestDb,
    appends: Vec<Vec<StreamWrite>>,
) -> Vec<Result<Vec<picloud_events::Appended>, StoreError>> {
    let mut holder = db.raw().await;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(INSERT_LOCK)
        .execute(&mut holder)
        .await
        .expect("take the insert lock");
    let first = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append(
                    "first",
                    ExpectedVersion::NoStream,
                    vec![conformance::event("First", serde_json::json!({}))],
                )
                .await
        }
    });
    let mut watcher = db.raw().await;
    assert_eq!(
        advisory_waiters_once_any(&mut watcher).await,
        1,
        "the first append waits on the insert lock"
    );
    let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = appends
        .into_iter()
        .map(|writes| {
            let store = store.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let _ = started.send(());
                // Queues within this poll: nothing before the queue awaits.
                store.append_many(writes).await
            })
        })
        .collect();
    for _ in 0..tasks.len() {
        started_rx.recv().await.expect("every append starts");
    }
    assert_eq!(
        advisory_waiters(&mut watcher).await,
        1,
        "the later appends queue in the node instead of waiting on the lock"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(INSERT_LOCK)
        .execute(&mut holder)
        .await
        .expect("release the insert lock");
    first.await.expect("first task").expect("the first append");
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("append task"));
    }
    answers
}

/// The transaction ids that wrote `streams`' events.
async fn writers_of(conn: &mut PgConnection, streams: &[&str]) -> Vec<String> {
    sqlx::query_scalar("SELECT DISTINCT xid::text FROM events WHERE stream = ANY($1) ORDER BY 1")
        .bind(streams)
        .fetch_all(conn)
        .await
        .expect("xids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_made_together_share_one_call_and_keep_their_own_answers() {
    run(TestHooks::default(), |store, db| async move {
        let mut appends: Vec<Vec<StreamWrite>> = (0..10)
            .map(|i| vec![write(&format!("s{i}"), ExpectedVersion::NoStream, 1)])
            .collect();
        // Two streams in one append, and a claim of a stream another append
        // in the queue claims too.
        appends.push(vec![
            write("m1", ExpectedVersion::NoStream, 2),
            write("m2", ExpectedVersion::Any, 3),
        ]);
        appends.push(vec![write("claimed", ExpectedVersion::NoStream, 1)]);
        appends.push(vec![write("claimed", ExpectedVersion::NoStream, 1)]);
        // A stale expectation in the middle of the queue.
        appends.push(vec![write("first", ExpectedVersion::Exact(5), 1)]);
        appends.push(vec![write("s-last", ExpectedVersion::NoStream, 4)]);
        let answers = while_a_call_is_in_flight(&store, &db, appends).await;

        for (i, answer) in answers.iter().take(10).enumerate() {
            let appended = answer.as_ref().expect("a single-stream append");
            assert_eq!(appended.len(), 1);
            assert_eq!(appended[0].stream, format!("s{i}"));
            assert_eq!(
                (appended[0].first_version, appended[0].last_version),
                (1, 1)
            );
        }
        let many = answers[10].as_ref().expect("the two-stream append");
        assert_eq!(
            many.iter()
                .map(|a| (a.stream.as_str(), a.first_version, a.last_version))
                .collect::<Vec<_>>(),
            vec![("m1", 1, 2), ("m2", 1, 3)]
        );
        // The appends queue in whatever order their tasks ran: one claim wins.
        let (won, lost) = match (&answers[11], &answers[12]) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("exactly one claim must win, got {other:?}"),
        };
        assert_eq!(won[0].last_version, 1);
        match lost {
            StoreError::VersionConflict(c) => {
                assert_eq!((c.stream.as_str(), c.actual), ("claimed", Some(1)));
            }
            other => panic!("the losing claim must be a conflict, got {other:?}"),
        }
        match &answers[13] {
            Err(StoreError::VersionConflict(c)) => {
                assert_eq!(
                    (c.stream.as_str(), c.expected, c.actual),
                    ("first", ExpectedVersion::Exact(5), Some(1))
                );
            }
            other => panic!("the stale expectation must be a conflict, got {other:?}"),
        }
        let last = answers[14].as_ref().expect("the append after the conflict");
        assert_eq!((last[0].first_version, last[0].last_version), (1, 4));

        // Every answered position holds the answered stream's event.
        for appended in answers.iter().flatten().flatten() {
            let events = store
                .read_stream(&appended.stream, 1, 100)
                .await
                .expect("read_stream");
            assert_eq!(events.len() as u64, appended.last_version);
            assert_eq!(
                events.last().map(|e| e.position),
                Some(appended.last_position)
            );
        }
        // The queued appends that succeeded went in one call: one transaction.
        let mut conn = db.raw().await;
        let shared: Vec<&str> = vec![
            "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "m1", "m2", "claimed",
            "s-last",
        ];
        let xids = writers_of(&mut conn, &shared).await;
        assert_eq!(xids.len(), 1, "one shared call, got transactions {xids:?}");
        assert_ne!(writers_of(&mut conn, &["first"]).await, xids);
        // And the log reads back whole and in order.
        let all = store.read_all(0, 1000).await.expect("read_all");
        assert_eq!(all.events.len(), 1 + 10 + 5 + 1 + 4);
        assert!(all.events.windows(2).all(|w| w[0].position < w[1].position));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_call_that_fails_answers_each_append_on_its_own() {
    run(TestHooks::default(), |store, db| async move {
        // PostgreSQL text cannot hold a NUL: this append's statement fails.
        let appends = vec![
            vec![write("fine-1", ExpectedVersion::NoStream, 1)],
            vec![write("bad\0name", ExpectedVersion::NoStream, 1)],
            vec![write("fine-2", ExpectedVersion::NoStream, 2)],
        ];
        let answers = while_a_call_is_in_flight(&store, &db, appends).await;
        assert_eq!(answers[0].as_ref().map(|a| a[0].last_version), Ok(1));
        assert!(
            matches!(&answers[1], Err(StoreError::Database(_))),
            "the bad append fails: {:?}",
            answers[1]
        );
        assert_eq!(answers[2].as_ref().map(|a| a[0].last_version), Ok(2));
        let all = store.read_all(0, 100).await.expect("read_all");
        let mut streams: Vec<&str> = all.events.iter().map(|e| e.stream.as_str()).collect();
        streams.sort_unstable();
        assert_eq!(streams, vec!["fine-1", "fine-2", "fine-2", "first"]);
    })
    .await;
}

/// The backends of this database that have run `picloud_append` outside a
/// transaction's documents: the link's.
async fn append_backends(conn: &mut PgConnection) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE '%picloud_append(%' \
           AND pid <> pg_backend_pid()",
    )
    .fetch_all(conn)
    .await
    .expect("pg_stat_activity")
}

/// Kill the link's backend (the connection that carries appends without
/// documents) and wait until it is gone.
async fn kill_append_connection(conn: &mut PgConnection) {
    let pids = append_backends(conn).await;
    assert_eq!(pids.len(), 1, "one link: {pids:?}");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pids[0])
        .execute(&mut *conn)
        .await
        .expect("terminate");
    for _ in 0..500 {
        if append_backends(conn).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the killed backend did not go away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_link_is_replaced() {
    run(TestHooks::default(), |store, db| async move {
        store
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("append");
        let mut expected = 1;
        let mut admin = db.raw().await;

        // Killed while idle: the link reads its socket while idle, so it
        // notices by itself, reconnects, listens again and bumps the watch (it
        // may have missed notifications). The next append goes over the new
        // connection, without a failure to find out.
        let mut wake = store.wakeups();
        wake.borrow_and_update();
        kill_append_connection(&mut admin).await;
        tokio::time::timeout(Duration::from_secs(10), wake.changed())
            .await
            .expect("the link notices the loss and reconnects")
            .expect("alive");
        let mut listening = false;
        for _ in 0..400 {
            if listeners(&mut admin).await == 1 {
                listening = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(listening, "the new link listens");
        let appended = store
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("an append after the loss goes over the new link");
        expected += 1;
        assert_eq!(appended.last_version, expected);

        // Killed just before an append: the append may find out first, and
        // fail as unavailable having written nothing; the next one gets a new
        // connection.
        kill_append_connection(&mut admin).await;
        match store.append("s", ExpectedVersion::Any, one()).await {
            Ok(appended) => {
                expected += 1;
                assert_eq!(appended.last_version, expected);
            }
            Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("a lost connection is unavailable, got {other:?}"),
        }
        let appended = store
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("the next append gets a new connection");
        expected += 1;
        assert_eq!(appended.last_version, expected);
        assert_eq!(append_backends(&mut admin).await.len(), 1);
        let events = store.read_stream("s", 1, 100).await.expect("read_stream");
        assert_eq!(events.len() as u64, expected, "nothing failed was written");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_fail_cleanly_while_the_link_cannot_connect_and_resume_after() {
    run(TestHooks::default(), |store, db| async move {
        store
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("append");
        let mut admin = db.raw().await;
        // A database cannot refuse connections from a session inside it.
        let mut server = PgConnection::connect(&db.server)
            .await
            .expect("server connection");
        let allow =
            |on: bool| format!("ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS {on}", db.name);

        // No new connection is allowed, and the link's is killed: it cannot
        // come back.
        sqlx::query(sqlx::AssertSqlSafe(allow(false)))
            .execute(&mut server)
            .await
            .expect("refuse connections");
        kill_append_connection(&mut admin).await;
        let failed = tokio::time::timeout(
            Duration::from_secs(30),
            store.append("s", ExpectedVersion::Any, one()),
        )
        .await
        .expect("an append while the link is down is answered, not left waiting");
        assert!(
            matches!(
                failed,
                Err(StoreError::Unavailable(_) | StoreError::Database(_))
            ),
            "an append the link cannot carry fails: {failed:?}"
        );

        // Allowed again: the next append connects at once (not after the
        // link's backoff) and goes through.
        sqlx::query(sqlx::AssertSqlSafe(allow(true)))
            .execute(&mut server)
            .await
            .expect("allow connections");
        let appended = tokio::time::timeout(
            Duration::from_secs(30),
            store.append("s", ExpectedVersion::Any, one()),
        )
        .await
        .expect("answered")
        .expect("the append after the server came back goes through");
        assert_eq!(appended.last_version, 2, "the failed append wrote nothing");
        assert_eq!(append_backends(&mut admin).await.len(), 1);
        let _ = server.close().await;
    })
    .await;
}

/// The first key of the per-stream advisory locks: 'picl'.
const STREAM_LOCK_CLASS: i32 = 0x7069_636c;

/// Each version of `stream` once, from 1 up, in the log itself.
async fn versions_of(conn: &mut PgConnection, stream: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM events WHERE stream = $1 ORDER BY position")
        .bind(stream)
        .fetch_all(conn)
        .await
        .expect("versions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_another_node_wrote_is_appended_at_its_next_version() {
    run(TestHooks::default(), |a, db| async move {
        let b = open_with_hooks(&db.url, TestHooks::default())
            .await
            .expect("second node");
        for _ in 0..2 {
            a.append("s", ExpectedVersion::Any, one())
                .await
                .expect("a appends");
        }
        // Node a knows s at 2; node b takes it to 3 and 4.
        for _ in 0..2 {
            b.append("s", ExpectedVersion::Any, one())
                .await
                .expect("b appends");
        }
        let appended = a
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("a appends after b, knowing an older version");
        assert_eq!((appended.first_version, appended.last_version), (5, 5));
        b.append("s", ExpectedVersion::Any, one())
            .await
            .expect("b appends");
        // What a knew (5) is a stale expectation now: a conflict, not a write.
        match a.append("s", ExpectedVersion::Exact(5), one()).await {
            Err(StoreError::VersionConflict(c)) => assert_eq!(c.actual, Some(6)),
            other => panic!("a stale expectation is a conflict, got {other:?}"),
        }
        let appended = a
            .append("s", ExpectedVersion::Exact(6), one())
            .await
            .expect("the right expectation");
        assert_eq!(appended.last_version, 7);
        // A claim of a stream that exists is a conflict too.
        match a.append("s", ExpectedVersion::NoStream, one()).await {
            Err(StoreError::VersionConflict(c)) => assert_eq!(c.actual, Some(7)),
            other => panic!("claiming an existing stream is a conflict, got {other:?}"),
        }

        // The same in a shared call: b moves s on, then a's queued appends,
        // s among them, go together.
        b.append("s", ExpectedVersion::Any, one())
            .await
            .expect("b appends");
        let answers = while_a_call_is_in_flight(
            &a,
            &db,
            vec![
                vec![write("s", ExpectedVersion::Any, 2)],
                vec![write("fresh", ExpectedVersion::NoStream, 1)],
                vec![write("first", ExpectedVersion::Any, 1)],
            ],
        )
        .await;
        let versions: Vec<(u64, u64)> = answers
            .iter()
            .map(|answer| {
                let appended = answer.as_ref().expect("every queued append goes through");
                (appended[0].first_version, appended[0].last_version)
            })
            .collect();
        assert_eq!(versions, vec![(9, 10), (1, 1), (2, 2)]);

        let mut conn = db.raw().await;
        assert_eq!(
            versions_of(&mut conn, "s").await,
            (1..=10).collect::<Vec<i64>>()
        );
        assert_eq!(versions_of(&mut conn, "first").await, vec![1, 2]);
        b.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_the_node_wrote_is_appended_without_its_lock() {
    run(TestHooks::default(), |a, db| async move {
        let b = open_with_hooks(&db.url, TestHooks::default())
            .await
            .expect("second node");
        a.append("s", ExpectedVersion::Any, one())
            .await
            .expect("a appends");

        let mut holder = db.raw().await;
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(STREAM_LOCK_CLASS)
            .bind(stream_lock_key("s"))
            .execute(&mut holder)
            .await
            .expect("hold the stream's lock");
        // Node a knows s at 1 from its own append: it does not need the lock.
        let appended = tokio::time::timeout(
            Duration::from_secs(30),
            a.append("s", ExpectedVersion::Any, one()),
        )
        .await
        .expect("an append to a stream the node knows does not wait on its lock")
        .expect("append");
        assert_eq!(appended.last_version, 2);
        // Node b does not know s: it takes the lock, and waits for it.
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.append("s", ExpectedVersion::Any, one()).await }
        });
        let mut watcher = db.raw().await;
        assert_eq!(
            advisory_waiters_once_any(&mut watcher).await,
            1,
            "node b waits on the stream's lock"
        );
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(STREAM_LOCK_CLASS)
            .bind(stream_lock_key("s"))
            .execute(&mut holder)
            .await
            .expect("release the stream's lock");
        let appended = waiting.await.expect("task").expect("b appends");
        assert_eq!(appended.last_version, 3);
        b.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_link_forgets_the_versions_it_knew_when_it_reconnects() {
    run(TestHooks::default(), |store, db| async move {
        for _ in 0..2 {
            store
                .append("s", ExpectedVersion::Any, one())
                .await
                .expect("append");
        }
        // Commits lost with the connection (a server that crashed with
        // synchronous_commit off), played here by deleting them.
        let mut admin = db.raw().await;
        sqlx::query("DELETE FROM events WHERE stream = 's'")
            .execute(&mut admin)
            .await
            .expect("delete");
        let mut wake = store.wakeups();
        wake.borrow_and_update();
        kill_append_connection(&mut admin).await;
        tokio::time::timeout(Duration::from_secs(10), wake.changed())
            .await
            .expect("the link notices the loss and reconnects")
            .expect("alive");
        // Had the link kept s at 2, this would write version 3 after nothing.
        let appended = store
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("append after the reconnect");
        assert_eq!(appended.last_version, 1);
        assert_eq!(versions_of(&mut admin, "s").await, vec![1]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ten_argument_form_of_the_function_still_appends() {
    // A node of the build before migration 0010 calls it until it restarts.
    run(TestHooks::default(), |store, db| async move {
        store
            .append(
                "a",
                ExpectedVersion::Any,
                vec![conformance::event("E", serde_json::json!({}))],
            )
            .await
            .expect("append");
        let mut conn = db.raw().await;
        let call = "SELECT stream_index, stream_version, last_position FROM picloud_append(\
             $1, $2, $3, $4, ARRAY['E', 'E'], ARRAY['{}', '{}'], ARRAY['{}', '{}'], \
             ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], ARRAY[1, 2]::bigint[])";
        let rows: Vec<(i32, Option<i64>, Option<i64>)> = sqlx::query_as(call)
            .bind(vec![stream_lock_key("a"), stream_lock_key("b")])
            .bind(vec!["a", "b"])
            .bind(vec![Some(1_i64), None])
            .bind(vec![1_i32, 1])
            .fetch_all(&mut conn)
            .await
            .expect("the 10-argument call");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].0, rows[0].1), (1, Some(1)));
        assert_eq!((rows[1].0, rows[1].1), (2, None));
        // A failed expectation is still answered as a row, nothing written.
        let rows: Vec<(i32, Option<i64>, Option<i64>)> = sqlx::query_as(call)
            .bind(vec![stream_lock_key("a"), stream_lock_key("b")])
            .bind(vec!["a", "b"])
            .bind(vec![Some(1_i64), None])
            .bind(vec![1_i32, 1])
            .fetch_all(&mut conn)
            .await
            .expect("the 10-argument call");
        assert_eq!(rows, vec![(1, Some(2), None)]);
        assert_eq!(versions_of(&mut conn, "a").await, vec![1, 2]);
        assert_eq!(versions_of(&mut conn, "b").await, vec![1]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_append_leaves_a_gap_that_readers_pass() {
    run(TestHooks::default(), |store, db| async move {
        let mut aborted = db.raw().await;
        sqlx::query("BEGIN")
            .execute(&mut aborted)
            .await
            .expect("begin");
        let gap = insert_uncommitted(&mut aborted, "gone").await;
        let kept = store
            .append(
                "kept",
                ExpectedVersion::NoStream,
                vec![conformance::event("K", serde_json::json!({}))],
            )
            .await
            .expect("append");
        assert!(store.read_all(0, 10).await.expect("read_all").pending);
        sqlx::query("ROLLBACK")
            .execute(&mut aborted)
            .await
            .expect("rollback");
        // `settled`: a transaction of a test running in parallel may hold one
        // read back for a moment (see there).
        let read = settled(|| store.read_all(0, 10), |r| !r.pending).await;
        assert_eq!(positions(&read.events), vec![kept.last_position]);
        assert!(kept.last_position > gap && !read.pending);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_write_transaction_in_this_database_holds_readers_back() {
    run(TestHooks::default(), |store, db| async move {
        let mut other = db.raw().await;
        sqlx::query("BEGIN")
            .execute(&mut other)
            .await
            .expect("begin");
        // Any write takes an xid; this transaction could still insert events.
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut other)
            .await
            .expect("take an xid");
        let appended = store
            .append(
                "s",
                ExpectedVersion::NoStream,
                vec![conformance::event("A", serde_json::json!({}))],
            )
            .await
            .expect("append");
        let read = store.read_all(0, 10).await.expect("read_all");
        assert!(read.events.is_empty() && read.pending, "{read:?}");
        sqlx::query("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("rollback");
        let read = store.read_all(0, 10).await.expect("read_all");
        assert_eq!(positions(&read.events), vec![appended.last_position]);
        assert!(!read.pending);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_transaction_in_another_database_does_not_hold_readers_back() {
    run(TestHooks::default(), |store, _| async move {
        let Some(elsewhere) = fresh_db().await else {
            return;
        };
        let mut other = elsewhere.raw().await;
        sqlx::query("BEGIN")
            .execute(&mut other)
            .await
            .expect("begin");
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut other)
            .await
            .expect("take an xid");
        let appended = store
            .append(
                "s",
                ExpectedVersion::NoStream,
                vec![conformance::event("A", serde_json::json!({}))],
            )
            .await
            .expect("append");
        let read = store.read_all(0, 10).await.expect("read_all");
        let _ = other.close().await;
        elsewhere.drop_db().await;
        assert_eq!(positions(&read.events), vec![appended.last_position]);
        assert!(
            !read.pending,
            "another database's transaction is not ours to wait for"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_is_not_woken_again_by_its_own_notifications() {
    run(TestHooks::default(), |store, _db| async move {
        // Connected and listening (the link bumps once on connecting).
        store
            .append("s", ExpectedVersion::Any, one())
            .await
            .expect("append");
        let wake = store.wakeups();
        let before = *wake.borrow();
        for _ in 0..2 {
            store
                .append("s", ExpectedVersion::Any, one())
                .await
                .expect("append");
        }
        // One bump per append, made by the store itself. The first append's own
        // notification came back with its call, and was handled before the
        // second call was made: had it bumped, this would be 3.
        assert_eq!(wake.borrow().wrapping_sub(before), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wakeup_reaches_another_node_through_notify() {
    run(TestHooks::default(), |a, db| async move {
        let b = open_with_hooks(&db.url, TestHooks::default())
            .await
            .expect("second node");
        let mut wake = b.wakeups();
        // The link bumps once when it is connected and listening.
        tokio::time::timeout(Duration::from_secs(10), wake.wait_for(|n| *n >= 1))
            .await
            .expect("the link connects")
            .expect("alive");
        wake.borrow_and_update();
        a.append(
            "s",
            ExpectedVersion::Any,
            vec![conformance::event("A", serde_json::json!({}))],
        )
        .await
        .expect("append on node a");
        tokio::time::timeout(Duration::from_secs(5), wake.changed())
            .await
            .expect("node b wakes up after node a appends")
            .expect("alive");
        b.close().await;
    })
    .await;
}

#[tokio::test]
async fn leases_freed_on_one_node_wake_the_dispatchers_of_another() {
    run(TestHooks::default(), |a, db| async move {
        let b = open_with_hooks(&db.url, TestHooks::default())
            .await
            .expect("second node");
        let mut leases = b.lease_wakeups();
        // The link bumps once when it is connected and listening.
        tokio::time::timeout(Duration::from_secs(10), leases.wait_for(|n| *n >= 1))
            .await
            .expect("the link connects")
            .expect("alive");
        leases.borrow_and_update();
        let mut events = b.wakeups();
        let row = picloud_events::Delivery {
            invocation_id: "d1".into(),
            app: "app-1".into(),
            stream_version: 1,
            attempt: 0,
            due_at: 1_000,
            lease: None,
        };
        a.apply("outbox", vec![picloud_events::RowOp::PutDelivery(row)], 1)
            .await
            .expect("apply");
        assert_eq!(
            a.claim_deliveries("n1", 1_000, i64::MAX, 1)
                .await
                .expect("claim")
                .len(),
            1
        );
        // An append on node a is not a lease wake-up for node b.
        a.append(
            "s",
            ExpectedVersion::Any,
            vec![conformance::event("A", serde_json::json!({}))],
        )
        .await
        .expect("append");
        tokio::time::timeout(Duration::from_secs(5), events.changed())
            .await
            .expect("node b reads the append's notification")
            .expect("alive");
        assert!(
            !leases.has_changed().expect("alive"),
            "an append frees no lease"
        );
        assert_eq!(a.release_leases("n1").await.expect("release"), 1);
        tokio::time::timeout(Duration::from_secs(5), leases.changed())
            .await
            .expect("node b's dispatcher wakes when node a frees leases")
            .expect("alive");
        b.close().await;
    })
    .await;
}

/// Links of this database that are listening right now (idle since their `LISTEN`).
async fn listeners(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(conn)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_link_reconnects_after_its_connection_is_killed() {
    run(TestHooks::default(), |a, db| async move {
        let b = open_with_hooks(&db.url, TestHooks::default()).await.expect("second node");
        let mut wake = b.wakeups();
        let mut admin = db.raw().await;
        for _ in 0..200 {
            if listeners(&mut admin).await >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(listeners(&mut admin).await, 2, "both nodes listen");
        let before = *wake.borrow_and_update();

        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .expect("terminate the listeners");
        assert_eq!(killed.len(), 2);

        // Woken by the reconnect itself (notifications may have been missed).
        tokio::time::timeout(Duration::from_secs(10), wake.wait_for(|n| *n != before))
            .await
            .expect("a wake-up after the connection drops")
            .expect("alive");
        let mut back = false;
        for _ in 0..400 {
            if listeners(&mut admin).await >= 2 {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(back, "the links reconnect");

        wake.borrow_and_update();
        a.append("s", ExpectedVersion::Any, vec![conformance::event("A", serde_json::json!({}))])
            .await
            .expect("append on node a");
        tokio::time::timeout(Duration::from_secs(5), wake.changed())
            .await
            .expect("notifications arrive again after the reconnect")
            .expect("alive");
        b.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_opening_together_migrate_once() {
    let Some(db) = fresh_db().await else { return };
    let (a, b) = tokio::join!(
        open_with_hooks(&db.url, TestHooks::default()),
        open_with_hooks(&db.url, TestHooks::default())
    );
    let (a, b) = (a.expect("node a opens"), b.expect("node b opens"));
    let mut conn = db.raw().await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM picloud_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(applied, i64::from(picloud_events::migrate::SCHEMA_VERSION));
    let _ = conn.close().await;
    a.close().await;
    b.close().await;
    drop((a, b));
    db.drop_db().await;
}

/// The generic plan (the one made without the parameters' values, which a
/// prepared statement may run on) of a collection's newest-first list, with
/// `condition` after the collection's.
async fn collection_list_plan(conn: &mut PgConnection, name: &str, condition: &str) -> String {
    let prepare = format!(
        "PREPARE {name}(text) AS SELECT key FROM read_models \
         WHERE TRUE AND collection = $1{condition} ORDER BY sort DESC, key DESC LIMIT 10"
    );
    sqlx::query(AssertSqlSafe(prepare))
        .execute(&mut *conn)
        .await
        .expect("prepare");
    sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("EXPLAIN EXECUTE {name}('apps')")))
        .fetch_all(conn)
        .await
        .expect("explain")
        .join("\n")
}

/// `read_models_sort` is partial (migration 0007). On a generic plan PostgreSQL
/// uses it for a collection's newest-first list only because the query states the
/// index's condition literally, as `doc_query` writes it (a unit test holds that
/// text). Sequential scans are off so the index shows even in an empty table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_partial_document_index_serves_collection_lists() {
    run(TestHooks::default(), |_store, db| async move {
        let mut conn = db.raw().await;
        for setting in [
            "SET enable_seqscan = off",
            "SET plan_cache_mode = force_generic_plan",
        ] {
            sqlx::query(setting).execute(&mut conn).await.expect("set");
        }
        let stated =
            collection_list_plan(&mut conn, "stated", " AND collection <> 'invocations'").await;
        assert!(stated.contains("read_models_sort"), "{stated}");
        let unstated = collection_list_plan(&mut conn, "unstated", "").await;
        assert!(!unstated.contains("read_models_sort"), "{unstated}");
        let _ = conn.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = picloud_events::open("postgres://nobody@127.0.0.1:1/none")
        .await
        .err();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
}

#[test]
fn the_test_database_replaces_the_servers_database() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5432/postgres", "t1"),
        "postgres://u@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h:1", "t1"),
        "postgres://u:p@h:1/t1"
    );
    assert_eq!(
        with_database("postgresql://h/db?sslmode=disable", "t1"),
        "postgresql://h/t1?sslmode=disable"
    );
}

/// SQLite → PostgreSQL and PostgreSQL → SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_then_import_reads_back_identically_across_backends() {
    run(TestHooks::default(), |pg, _| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = picloud_events::open(&picloud_events::store::sqlite_url(dir.path()))
            .await
            .expect("sqlite");
        conformance::export_then_import_reads_back_identically(sqlite.clone(), pg.clone()).await;
        sqlite.close().await;
    })
    .await;
    run(TestHooks::default(), |pg, _| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = picloud_events::open(&picloud_events::store::sqlite_url(dir.path()))
            .await
            .expect("sqlite");
        conformance::export_then_import_reads_back_identically(pg.clone(), sqlite.clone()).await;
        sqlite.close().await;
    })
    .await;
}
