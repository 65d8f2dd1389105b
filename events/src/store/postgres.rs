//! The PostgreSQL backend: production and cluster mode.
//!
//! Late commits: identity values are handed out before commit, so a reader asking
//! for `position > after` could see position 11 committed while 10 is still in an
//! open transaction, move its checkpoint past 10 and never see it. Each row
//! therefore stores its writer's transaction id (`xid`, a `pg_current_xact_id()`),
//! and `read_all` returns only the leading rows whose `xid` is below the oldest
//! transaction (of this database) still running at its snapshot: every
//! transaction that could still commit a smaller position has then ended (see
//! `READ_HORIZON`). If committed rows wait behind that horizon, it says
//! `pending` and the follower retries after a short backoff. The insert itself
//! runs in `picloud_append_events` (migration 0001), which takes the xid and the
//! positions under one short lock, so a smaller position always has a smaller
//! xid; the comment there explains why that matters. An append is one call of
//! `picloud_append` (migrations 0005 and 0010, `append.rs`), which locks, checks
//! and calls it; appends made at the same time share one call (`combine.rs`),
//! and streams the link knows skip their lock and probe (`known.rs`).
//!
//! Wake-ups: appends `pg_notify('picloud_events', '')` in their transaction, and
//! the node's link task (`link.rs`), whose connection listens and also carries
//! the appends without documents, bumps the watch channel on every other
//! backend's notification and after each (re)connect. Nothing polls while idle.

mod append;
mod combine;
mod known;
mod kv;
mod link;
mod readmodel;

#[doc(hidden)]
pub use append::stream_lock_key;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Row};
use tokio::sync::watch;

use super::sql::{self, EventColumns, EventRow, Param};
use super::{Backend, ReadAll, ReadSelected, Selection, Store};
use crate::cluster::NodeRow;
use crate::error::StoreError;
use crate::event::{Appended, EncodedEvent, EventFilter, RecordedEvent, StreamWrite};
use crate::kv::{KvEntry, KvError, KvRow};
use crate::migrate;
use crate::readmodel::{Delivery, Doc, DocQuery, EncodedDoc, RowOp};

/// Events per INSERT of an import.
const IMPORT_CHUNK: usize = 2_000;

/// The NOTIFY channel appends signal on.
pub(crate) const CHANNEL: &str = "picloud_events";
/// The NOTIFY channel freed outbox leases signal on (`Store::lease_wakeups`).
pub(crate) const LEASES_CHANNEL: &str = "picloud_leases";
/// Sent in the transaction that frees leases.
const NOTIFY_LEASES: &str = "SELECT pg_notify('picloud_leases', '')";
const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The read horizon of the statement's snapshot: the oldest transaction of this
/// database still running when the snapshot was taken (or, if none, the next xid
/// to be assigned). Rows written by older transactions are settled: nothing that
/// could still commit has a smaller position.
///
/// `pg_snapshot_xmin` alone would do, but it is cluster-wide: an open transaction
/// in another database of the same server would hold our readers back. So the
/// running xids (`pg_snapshot_xip`) that belong to a backend of another database
/// are left out. A running xid whose backend cannot be found (it finished after
/// the snapshot, or it is a prepared transaction) is kept: when unsure, wait.
const READ_HORIZON: &str = "horizon AS ( \
     SELECT LEAST( \
         pg_snapshot_xmax(s.snap), \
         (SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x \
          WHERE NOT EXISTS ( \
              SELECT 1 FROM pg_stat_activity a \
              WHERE a.backend_xid = xid(x) \
                AND a.datname IS DISTINCT FROM current_database())) \
     ) AS xid \
     FROM (SELECT pg_current_snapshot() AS snap) AS s)";

/// The store's connection pool: 16 connections, a 5 s acquire timeout, and a
/// liveness check (a ping, one round trip) only for a connection that has sat idle
/// for `PING_AFTER_IDLE`. sqlx would otherwise ping every connection it hands out,
/// so every query cost two round trips. A connection in steady use is proven alive
/// by its last query; one that broke since fails the query that finds out, is
/// closed, and the next acquire gets another (as it would if it broke just after
/// a ping). The bench gives its plain-`INSERT` baseline the same pool.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                check_alive(conn, meta.idle_for).await?;
                Ok(true)
            })
        })
}

/// How long a connection may sit idle before it is pinged on its way out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The check before use of a pooled connection: a ping, once the connection has
/// sat idle `PING_AFTER_IDLE`.
async fn check_alive(conn: &mut PgConnection, idle_for: Duration) -> Result<(), sqlx::Error> {
    if idle_for >= PING_AFTER_IDLE {
        sqlx::Connection::ping(conn).await?;
    }
    Ok(())
}

/// Knobs for tests only.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct TestHooks {
    /// Sleep a random 0..=max after inserting and before committing each append,
    /// so appends commit out of position order.
    pub commit_delay_max: Option<Duration>,
}

pub struct PgStore {
    pool: PgPool,
    wake: watch::Sender<u64>,
    /// Bumped when leases are freed, here or (through the link) on another node.
    leases: watch::Sender<u64>,
    hooks: TestHooks,
    /// The listening connection, which also carries the appends without
    /// documents, concurrent ones sharing a call (`link.rs`, `combine.rs`).
    link: link::Link,
}

/// Open, migrate and start the link (`link.rs`). `open` calls this with no hooks.
#[doc(hidden)]
pub async fn open_with_hooks(url: &str, hooks: TestHooks) -> Result<Arc<dyn Store>, StoreError> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    let options = options.application_name("picloud");
    let pool = pool_options().connect_with(options.clone()).await?;
    migrate::run_postgres(&pool).await?;
    let (wake, _) = watch::channel(0);
    let (leases, _) = watch::channel(0);
    let link = link::Link::spawn(options, wake.clone(), leases.clone());
    Ok(Arc::new(PgStore {
        pool,
        wake,
        leases,
        hooks,
        link,
    }))
}

impl PgStore {
    /// Commit a transaction that freed `freed` leases, notifying every node's
    /// dispatcher (other nodes through `LEASES_CHANNEL`, this one at once).
    async fn commit_freed(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        freed: u64,
    ) -> Result<(), StoreError> {
        if freed > 0 {
            sqlx::query(NOTIFY_LEASES).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if freed > 0 {
            super::bump(&self.leases);
        }
        Ok(())
    }
}

/// Event columns as one array per column, for an import's `unnest`.
struct Columns {
    stream: Vec<String>,
    version: Vec<i64>,
    event_type: Vec<String>,
    data: Vec<String>,
    metadata: Vec<String>,
    app: Vec<Option<String>>,
    actor: Vec<Option<String>>,
    recorded_at: Vec<i64>,
}

impl From<Vec<EventColumns>> for Columns {
    fn from(columns: Vec<EventColumns>) -> Self {
        let n = columns.len();
        let mut out = Columns {
            stream: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            app: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
        };
        for c in columns {
            out.stream.push(c.stream);
            out.version.push(c.version);
            out.event_type.push(c.event_type);
            out.data.push(c.data);
            out.metadata.push(c.metadata);
            out.app.push(c.app);
            out.actor.push(c.actor);
            out.recorded_at.push(c.recorded_at);
        }
        out
    }
}

async fn stream_version_in<C>(conn: &mut C, stream: &str) -> Result<Option<u64>, StoreError>
where
    for<'c> &'c mut C: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
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
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: Vec<Param>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for p in params {
        query = match p {
            Param::Text(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
        };
    }
    query
}

fn decode_events(rows: Vec<PgRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter()
        .map(|row| EventRow::from_row(row)?.decode())
        .collect()
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn append_projected(
        &self,
        writes: &[StreamWrite<EncodedEvent>],
        projection: &str,
        docs: &[EncodedDoc],
    ) -> Result<Vec<Appended>, StoreError> {
        let appended = if docs.is_empty() && self.hooks.commit_delay_max.is_none() {
            self.link.append(writes).await?
        } else {
            append::append_in_transaction(&self.pool, &self.hooks, writes, (projection, docs))
                .await?
        };
        super::bump(&self.wake);
        Ok(appended)
    }

    async fn import(&self, events: &[RecordedEvent], kv: &[KvRow]) -> Result<(), StoreError> {
        sql::validate_import(events)?;
        let mut tx = self.pool.begin().await?;
        // No appender may slip in between the emptiness check and the commit.
        sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let empty: bool = sqlx::query_scalar(sql::STORE_IS_EMPTY)
            .fetch_one(&mut *tx)
            .await?;
        if !empty {
            return Err(sql::not_empty());
        }
        for chunk in events.chunks(IMPORT_CHUNK) {
            let mut position = Vec::with_capacity(chunk.len());
            let mut columns = Vec::with_capacity(chunk.len());
            for event in chunk {
                position.push(event.position);
                columns.push(EventColumns::recorded(event)?);
            }
            let c = Columns::from(columns);
            sqlx::query(
                "INSERT INTO events (position, stream, version, event_type, data, metadata, \
                                     app, actor, recorded_at, xid) \
                 OVERRIDING SYSTEM VALUE \
                 SELECT p, s, v, t, d, m, a, c, r, pg_current_xact_id() \
                 FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], \
                             $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[]) \
                      AS batch(p, s, v, t, d, m, a, c, r)",
            )
            .bind(position)
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
        // New appends continue after the imported positions.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), \
                           GREATEST((SELECT MAX(position) FROM events), 1), \
                           (SELECT COUNT(*) > 0 FROM events))",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *tx)
            .await?;
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
            .fetch_all(&self.pool)
            .await?;
        decode_events(rows)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        stream_version_in(&mut *conn, stream).await
    }

    async fn read_all(&self, after: i64, limit: usize) -> Result<ReadAll, StoreError> {
        if limit == 0 {
            return Ok(ReadAll::default());
        }
        // One statement, one snapshot: the rows and the horizon agree.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "WITH {READ_HORIZON} \
             SELECT {}, e.xid < horizon.xid AS settled \
             FROM events e CROSS JOIN horizon \
             WHERE e.position > $1 ORDER BY e.position LIMIT $2",
            sql::EVENT_COLUMNS
        )))
        .bind(after)
        .bind(sql::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let settled: bool = row.try_get("settled")?;
            if !settled {
                // Everything from here on waits for an older transaction.
                return Ok(ReadAll {
                    events,
                    pending: true,
                });
            }
            events.push(EventRow::from_row(row)?.decode()?);
        }
        Ok(ReadAll {
            events,
            pending: false,
        })
    }

    async fn read_selected(
        &self,
        after: i64,
        scan: usize,
        selection: &Selection<'_>,
    ) -> Result<ReadSelected, StoreError> {
        // The scanned window, cut before its first row that is not settled.
        let row = sqlx::query(AssertSqlSafe(format!(
            "WITH {READ_HORIZON}, \
             win AS (SELECT e.position, e.xid < horizon.xid AS settled \
                     FROM events e CROSS JOIN horizon \
                     WHERE e.position > $1 ORDER BY e.position LIMIT $2), \
             cut AS (SELECT min(position) AS unsettled FROM win WHERE NOT settled) \
             SELECT (SELECT max(w.position) FROM win w CROSS JOIN cut \
                     WHERE cut.unsettled IS NULL OR w.position < cut.unsettled) AS reached, \
                    (SELECT unsettled IS NOT NULL FROM cut) AS pending"
        )))
        .bind(after)
        .bind(sql::limit(scan))
        .fetch_one(&self.pool)
        .await?;
        let reached: Option<i64> = row.try_get("reached")?;
        let pending: bool = row.try_get("pending")?;
        let Some(reached) = reached else {
            return Ok(ReadSelected {
                events: Vec::new(),
                reached: after,
                pending,
            });
        };
        // Every row up to `reached` is settled. A transaction that could still
        // commit a position in (after, reached] would have a smaller xid than the
        // settled row at `reached` (positions and xids rise together), so an xid
        // below the horizon: it has ended. A second statement sees the same rows.
        let built = sql::selected_rows_query(after, reached, selection);
        let rows = bind_all(sqlx::query(AssertSqlSafe(built.sql)), built.params)
            .fetch_all(&self.pool)
            .await?;
        Ok(ReadSelected {
            events: decode_events(rows)?,
            reached,
            pending,
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
            .fetch_all(&self.pool)
            .await?;
        decode_events(rows)
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(sql::HEAD_POSITION)
            .fetch_one(&self.pool)
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
        readmodel::apply(&self.pool, projection, ops, checkpoint).await
    }

    async fn checkpoint(&self, projection: &str) -> Result<i64, StoreError> {
        let position: Option<i64> = sqlx::query_scalar(sql::SELECT_CHECKPOINT)
            .bind(projection)
            .fetch_optional(&self.pool)
            .await?;
        Ok(position.unwrap_or(0))
    }

    async fn checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(sql::SELECT_CHECKPOINTS)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn reset(&self, projection: &str, collections: &[&str]) -> Result<(), StoreError> {
        readmodel::reset(&self.pool, projection, collections).await
    }

    async fn get_doc(&self, collection: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        readmodel::get_doc(&mut conn, collection, key, false).await
    }

    async fn query_docs(&self, q: &DocQuery) -> Result<Vec<Doc>, StoreError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let built = sql::doc_query(q);
        let rows = bind_all(sqlx::query(AssertSqlSafe(built.sql)), built.params)
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(AssertSqlSafe(sql::claim_deliveries_sql(
            "FOR UPDATE SKIP LOCKED",
        )))
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
            .fetch_one(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_leases(&self, node: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let freed = sqlx::query(sql::RELEASE_LEASES)
            .bind(node)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.commit_freed(tx, freed).await?;
        Ok(freed)
    }

    async fn put_node(&self, node: &NodeRow) -> Result<(), StoreError> {
        sql::bind_node(sqlx::query(sql::PUT_NODE), node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let rows = sqlx::query(sql::LIST_NODES).fetch_all(&self.pool).await?;
        rows.iter().map(sql::node_from_row).collect()
    }

    async fn reap_nodes(&self, silent_since: i64) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Row locks: of nodes reaping at once, one marks each node.
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
        self.commit_freed(tx, freed).await?;
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let row = sqlx::query(sql::LOAD_SNAPSHOT)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    async fn kv_get(&self, app: &str, key: &str) -> Result<Option<KvEntry>, StoreError> {
        kv::get(&self.pool, app, key).await
    }

    async fn kv_put(
        &self,
        app: &str,
        key: &str,
        value: &str,
        max_keys: usize,
    ) -> Result<(), KvError> {
        kv::write(&self.pool, app, key, kv::Write::Put(value), max_keys)
            .await
            .map(|_| ())
    }

    async fn kv_delete(&self, app: &str, key: &str) -> Result<bool, StoreError> {
        kv::delete(&self.pool, app, key).await
    }

    async fn kv_list(
        &self,
        app: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError> {
        kv::list(&self.pool, app, prefix, after, limit).await
    }

    async fn kv_incr(
        &self,
        app: &str,
        key: &str,
        by: i64,
        max_keys: usize,
    ) -> Result<i64, KvError> {
        kv::write(&self.pool, app, key, kv::Write::Incr(by), max_keys)
            .await?
            .ok_or_else(|| KvError::Store(StoreError::Database("increment wrote nothing".into())))
    }

    async fn kv_scan(&self, after: (&str, &str), limit: usize) -> Result<Vec<KvRow>, StoreError> {
        kv::scan(&self.pool, after, limit).await
    }

    async fn kv_clear(&self, app: &str) -> Result<u64, StoreError> {
        kv::clear(&self.pool, app).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.link.close().await;
        self.pool.close().await;
    }
}
