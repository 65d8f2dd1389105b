//! The embedded backend: one SQLite file in WAL mode, nothing to install.
//!
//! All writes go through a pool of one connection and start with `BEGIN
//! IMMEDIATE`: one writer at a time, so our own appenders never meet
//! `SQLITE_BUSY`, and another process on the same file (the CLI) waits on the busy
//! timeout. Because the write lock is held from the first insert to the commit,
//! positions are assigned in commit order and `position > after` is a safe read:
//! `read_all` never has anything `pending`. Reads use a separate small pool; in
//! WAL mode they never block the writer. Wake-ups are in-process.

mod append;
mod batch;
mod kv;
mod readmodel;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use tokio::sync::watch;

use super::sql::{self, EventColumns, EventRow, Param};
use super::{Backend, ReadAll, ReadSelected, Selection, Store};
use crate::cluster::NodeRow;
use crate::error::StoreError;
use crate::event::{Appended, EncodedEvent, EventFilter, RecordedEvent, StreamWrite};
use crate::kv::{KvEntry, KvError, KvRow};
use crate::migrate;
use crate::readmodel::{Delivery, Doc, DocQuery, EncodedDoc, RowOp};

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;

pub struct SqliteStore {
    /// Exactly one connection: the single writer.
    writer: SqlitePool,
    reader: SqlitePool,
    wake: watch::Sender<u64>,
    /// Bumped when leases are freed (`Store::lease_wakeups`): one process.
    leases: watch::Sender<u64>,
}

impl SqliteStore {
    /// Open (creating the file and its directory if missing) and migrate.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a crash (of the process) loses nothing; a power cut may
            // lose the last transactions but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // A multi-row statement inside a transaction keeps a statement
            // journal (to undo just itself on a constraint error); past 64 KiB
            // SQLite spills it to a temporary file, created, written page by page
            // and deleted for every recorder batch. In memory it costs a copy.
            // Every statement here is bounded, so no temporary table grows large.
            .pragma("temp_store", "memory");
        // No idle timeout or lifetime: the pools' maintenance would otherwise wake
        // up on a timer while the node is idle.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        migrate::run_sqlite(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let (wake, _) = watch::channel(0);
        Ok(SqliteStore {
            writer,
            reader,
            wake,
            leases: watch::channel(0).0,
        })
    }
}

async fn stream_version_in(
    conn: &mut SqliteConnection,
    stream: &str,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(sql::STREAM_VERSION)
        .bind(stream)
        .fetch_one(conn)
        .await?;
    version
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| StoreError::corrupt(format!("negative version in {stream}")))
        })
        .transpose()
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    params: Vec<Param>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for p in params {
        query = match p {
            Param::Text(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
        };
    }
    query
}

fn decode_events(rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter()
        .map(|row| EventRow::from_row(row)?.decode())
        .collect()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn append_projected(
        &self,
        writes: &[StreamWrite<EncodedEvent>],
        projection: &str,
        docs: &[EncodedDoc],
    ) -> Result<Vec<Appended>, StoreError> {
        let appended = append::append_many(&self.writer, writes, (projection, docs)).await?;
        super::bump(&self.wake);
        Ok(appended)
    }

    async fn import(&self, events: &[RecordedEvent], kv: &[KvRow]) -> Result<(), StoreError> {
        sql::validate_import(events)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let empty: bool = sqlx::query_scalar(sql::STORE_IS_EMPTY)
            .fetch_one(&mut *tx)
            .await?;
        if !empty {
            return Err(sql::not_empty());
        }
        for event in events {
            let c = EventColumns::recorded(event)?;
            sqlx::query(
                "INSERT INTO events \
                 (position, stream, version, event_type, data, metadata, app, actor, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(event.position)
            .bind(c.stream)
            .bind(c.version)
            .bind(c.event_type)
            .bind(c.data)
            .bind(c.metadata)
            .bind(c.app)
            .bind(c.actor)
            .bind(c.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        for row in kv {
            sqlx::query(crate::kv::IMPORT)
                .bind(&row.app)
                .bind(&row.entry.key)
                .bind(&row.entry.value)
                .bind(row.entry.updated_at.timestamp_micros())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        super::bump(&self.wake);
        Ok(())
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(AssertSqlSafe(sql::read_stream_sql()))
            .bind(stream)
            .bind(sql::to_i64(from_version, "from_version")?)
            .bind(sql::limit(limit))
            .fetch_all(&self.reader)
            .await?;
        decode_events(rows)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        stream_version_in(&mut conn, stream).await
    }

    async fn read_all(&self, after: i64, limit: usize) -> Result<ReadAll, StoreError> {
        if limit == 0 {
            return Ok(ReadAll::default());
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
            sql::EVENT_COLUMNS
        )))
        .bind(after)
        .bind(sql::limit(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(ReadAll {
            events: decode_events(rows)?,
            // Commit order is position order here: nothing can be held back.
            pending: false,
        })
    }

    async fn read_selected(
        &self,
        after: i64,
        scan: usize,
        selection: &Selection<'_>,
    ) -> Result<ReadSelected, StoreError> {
        let reached: Option<i64> = sqlx::query_scalar(
            "SELECT max(position) FROM \
             (SELECT position FROM events WHERE position > $1 ORDER BY position LIMIT $2)",
        )
        .bind(after)
        .bind(sql::limit(scan))
        .fetch_one(&self.reader)
        .await?;
        let Some(reached) = reached else {
            return Ok(ReadSelected {
                reached: after,
                ..ReadSelected::default()
            });
        };
        // Commit order is position order: the range (after, reached] is final.
        let built = sql::selected_rows_query(after, reached, selection);
        let rows = bind_all(sqlx::query(AssertSqlSafe(built.sql)), built.params)
            .fetch_all(&self.reader)
            .await?;
        Ok(ReadSelected {
            events: decode_events(rows)?,
            reached,
            pending: false,
        })
    }

    async fn browse(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let built = sql::browse_query(filter, after, limit);
        let rows = bind_all(sqlx::query(AssertSqlSafe(built.sql)), built.params)
            .fetch_all(&self.reader)
            .await?;
        decode_events(rows)
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(sql::HEAD_POSITION)
            .fetch_one(&self.reader)
            .await?)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    async fn apply(
        &self,
        projection: &str,
        ops: Vec<RowOp>,
        checkpoint: i64,
    ) -> Result<(), StoreError> {
        readmodel::apply(&self.writer, projection, ops, checkpoint).await
    }

    async fn checkpoint(&self, projection: &str) -> Result<i64, StoreError> {
        let position: Option<i64> = sqlx::query_scalar(sql::SELECT_CHECKPOINT)
            .bind(projection)
            .fetch_optional(&self.reader)
            .await?;
        Ok(position.unwrap_or(0))
    }

    async fn checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(sql::SELECT_CHECKPOINTS)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn reset(&self, projection: &str, collections: &[&str]) -> Result<(), StoreError> {
        readmodel::reset(&self.writer, projection, collections).await
    }

    async fn get_doc(&self, collection: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        readmodel::get_doc(&mut conn, collection, key).await
    }

    async fn query_docs(&self, q: &DocQuery) -> Result<Vec<Doc>, StoreError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let built = sql::doc_query(q);
        let rows = bind_all(sqlx::query(AssertSqlSafe(built.sql)), built.params)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| sql::decode_doc(sql::doc_from_row(row)?))
            .collect()
    }

    async fn claim_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(AssertSqlSafe(sql::claim_deliveries_sql("")))
            .bind(node)
            .bind(now)
            .bind(lease_until)
            .bind(sql::limit(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(sql::delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|d| d.due_at);
        Ok(claimed)
    }

    async fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(sql::NEXT_DELIVERY_AT)
            .fetch_one(&self.reader)
            .await?)
    }

    async fn postpone_delivery(
        &self,
        invocation_id: &str,
        node: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(sql::POSTPONE_DELIVERY)
            .bind(invocation_id)
            .bind(node)
            .bind(until)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn release_leases(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::RELEASE_LEASES)
            .bind(node)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() > 0 {
            super::bump(&self.leases);
        }
        Ok(done.rows_affected())
    }

    async fn put_node(&self, node: &NodeRow) -> Result<(), StoreError> {
        sql::bind_node(sqlx::query(sql::PUT_NODE), node)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let rows = sqlx::query(sql::LIST_NODES).fetch_all(&self.reader).await?;
        rows.iter().map(sql::node_from_row).collect()
    }

    async fn reap_nodes(&self, silent_since: i64) -> Result<Vec<String>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let gone: Vec<String> = sqlx::query_scalar(sql::REAP_NODES)
            .bind(silent_since)
            .fetch_all(&mut *tx)
            .await?;
        let freed = if gone.is_empty() {
            0
        } else {
            sqlx::query(sql::RELEASE_GONE_LEASES)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        };
        tx.commit().await?;
        if freed > 0 {
            super::bump(&self.leases);
        }
        Ok(gone)
    }

    fn lease_wakeups(&self) -> watch::Receiver<u64> {
        self.leases.subscribe()
    }

    async fn save_snapshot(
        &self,
        name: &str,
        position: i64,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        sqlx::query(sql::SAVE_SNAPSHOT)
            .bind(name)
            .bind(position)
            .bind(bytes)
            .bind(sql::now_micros())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let row = sqlx::query(sql::LOAD_SNAPSHOT)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    async fn kv_get(&self, app: &str, key: &str) -> Result<Option<KvEntry>, StoreError> {
        kv::get(&self.reader, app, key).await
    }

    async fn kv_put(
        &self,
        app: &str,
        key: &str,
        value: &str,
        max_keys: usize,
    ) -> Result<(), KvError> {
        kv::write(&self.writer, app, key, kv::Write::Put(value), max_keys)
            .await
            .map(|_| ())
    }

    async fn kv_delete(&self, app: &str, key: &str) -> Result<bool, StoreError> {
        kv::delete(&self.writer, app, key).await
    }

    async fn kv_list(
        &self,
        app: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError> {
        kv::list(&self.reader, app, prefix, after, limit).await
    }

    async fn kv_incr(
        &self,
        app: &str,
        key: &str,
        by: i64,
        max_keys: usize,
    ) -> Result<i64, KvError> {
        kv::write(&self.writer, app, key, kv::Write::Incr(by), max_keys)
            .await?
            .ok_or_else(|| KvError::Store(StoreError::Database("increment wrote nothing".into())))
    }

    async fn kv_scan(&self, after: (&str, &str), limit: usize) -> Result<Vec<KvRow>, StoreError> {
        kv::scan(&self.reader, after, limit).await
    }

    async fn kv_clear(&self, app: &str) -> Result<u64, StoreError> {
        kv::clear(&self.writer, app).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a directory removed when the first value is dropped.
    async fn open_scratch() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("picloud.db"))
            .await
            .expect("open");
        (dir, store)
    }

    async fn plan(store: &SqliteStore, query: &DocQuery) -> String {
        let built = sql::doc_query(query);
        let rows = bind_all(
            sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", built.sql))),
            built.params,
        )
        .fetch_all(&store.reader)
        .await
        .expect("explain");
        rows.iter()
            .map(|row| row.try_get::<String, _>("detail").expect("detail"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// SQLite VM instructions (in hundreds) one single-event append to `stream`
    /// executes, counted with a progress handler on the writer connection.
    async fn append_cost(store: &SqliteStore, stream: &str) -> u64 {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};

        use crate::event::{ExpectedVersion, Metadata, NewEvent};

        let steps = Arc::new(AtomicU64::new(0));
        {
            let mut conn = store.writer.acquire().await.expect("writer");
            let mut handle = conn.lock_handle().await.expect("handle");
            let counted = steps.clone();
            handle.set_progress_handler(100, move || {
                counted.fetch_add(1, Ordering::Relaxed);
                true
            });
        }
        let event = NewEvent::new("Tick", serde_json::json!({}), Metadata::default());
        store
            .append(stream, ExpectedVersion::Any, vec![event])
            .await
            .expect("append");
        let mut conn = store.writer.acquire().await.expect("writer");
        conn.lock_handle()
            .await
            .expect("handle")
            .remove_progress_handler();
        steps.load(Ordering::Relaxed)
    }

    /// A single-event append reads the stream's last version with one index seek,
    /// not by walking the stream (it did: 24 ms per append at 200,000 events).
    #[tokio::test]
    async fn a_single_append_costs_the_same_on_a_long_stream() {
        use crate::event::{ExpectedVersion, Metadata, NewEvent};

        let (_dir, store) = open_scratch().await;
        for _ in 0..20 {
            let events = (0..1_000)
                .map(|_| NewEvent::new("Tick", serde_json::json!({}), Metadata::default()))
                .collect();
            store
                .append("long", ExpectedVersion::Any, events)
                .await
                .expect("batch");
        }
        let short = append_cost(&store, "short").await;
        let long = append_cost(&store, "long").await;
        // The walk over 20,000 versions took some 1,000 hundreds of instructions.
        assert!(long <= short + 5, "long stream {long}, new stream {short}");
        store.close().await;
    }

    /// `read_models_sort` is partial (migration 0007): a collection listed newest
    /// first still walks it, and a per-app list of runs keeps `read_models_app`.
    #[tokio::test]
    async fn document_lists_use_their_indexes() {
        let (_dir, store) = open_scratch().await;
        let query = |collection: &str, app: Option<&str>| DocQuery {
            collection: collection.into(),
            app: app.map(Into::into),
            tag1: None,
            tag2: None,
            before_sort: None,
            limit: 10,
        };
        let apps = plan(&store, &query("apps", None)).await;
        assert!(apps.contains("USING INDEX read_models_sort"), "{apps}");
        assert!(!apps.contains("TEMP B-TREE"), "{apps}");
        let runs = plan(&store, &query(sql::UNSORTED_COLLECTION, Some("a"))).await;
        assert!(runs.contains("USING INDEX read_models_app"), "{runs}");
        assert!(!runs.contains("TEMP B-TREE"), "{runs}");
        let failed = DocQuery {
            tag1: Some("failed".into()),
            before_sort: Some(1_000),
            ..query(sql::UNSORTED_COLLECTION, Some("a"))
        };
        let failed = plan(&store, &failed).await;
        assert!(failed.contains("USING INDEX read_models_"), "{failed}");
        assert!(!failed.contains("TEMP B-TREE"), "{failed}");
        store.close().await;
    }

    /// Documents arrive newest last, as runs do, and their list indexes are
    /// ascending (migration 0008), so a full index page splits leaving the old
    /// page full. Descending, each entry went to the front of its group and the
    /// pages stayed about half empty (here: 50% full before, 87% after).
    #[tokio::test]
    async fn documents_written_newest_last_keep_their_index_pages_full() {
        let (_dir, store) = open_scratch().await;
        let collection = sql::UNSORTED_COLLECTION;
        let app = "01a209d8-87dd-7673-bccd-1f1f49448369";
        let mut sort = 0_i64;
        for batch in 1..=40 {
            let ops = (0..100)
                .map(|_| {
                    sort += 1;
                    RowOp::Put(Doc {
                        collection: collection.into(),
                        key: format!("01a209d8-a8f8-75bf-bd99-{sort:012}"),
                        app: Some(app.into()),
                        sort,
                        tag1: Some("succeeded".into()),
                        tag2: Some("01a209d8-87ea-71b0-b4a5-7e2a77174189".into()),
                        body: serde_json::json!({ "padding": "x".repeat(400) }),
                    })
                })
                .collect();
            store.apply("test", ops, batch).await.expect("apply");
        }
        for index in ["read_models_app", "read_models_tag1", "read_models_tag2"] {
            let (leaves, fill): (i64, f64) = sqlx::query_as(
                "SELECT count(*), 1.0 - CAST(sum(unused) AS REAL) / sum(pgsize) \
                 FROM dbstat WHERE name = ? AND pagetype = 'leaf'",
            )
            .bind(index)
            .fetch_one(&store.reader)
            .await
            .expect("dbstat");
            assert!(leaves > 10, "{index}: {leaves} leaf pages");
            assert!(fill > 0.8, "{index}: leaf pages {:.0}% full", fill * 100.0);
        }
        store.close().await;
    }
}
