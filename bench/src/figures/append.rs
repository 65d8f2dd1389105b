//! Event append: events/s through `Store::append` (single events with 1 and 8
//! writers, batches of 100 with 1 writer) per backend, against plain `INSERT`s of
//! the same row shape into a table built by the same migration (same indexes) with
//! the same connection settings: one writer connection in WAL mode with
//! `synchronous = NORMAL` for SQLite, a pool of 16 for PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use picloud_events::{ExpectedVersion, Metadata, NewEvent, Store};
use serde_json::json;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::figures::Bench;
use crate::report::Figure;
use crate::stats::Pair;

const SQLITE_LOG: &str = include_str!("../../../migrations/sqlite/0001_event_log.sql");
const POSTGRES_LOG: &str = include_str!("../../../migrations/postgres/0001_event_log.sql");

#[derive(Clone, Copy)]
struct Mode {
    writers: usize,
    batch: usize,
}

const MODES: [Mode; 3] = [
    Mode {
        writers: 1,
        batch: 1,
    },
    Mode {
        writers: 8,
        batch: 1,
    },
    Mode {
        writers: 1,
        batch: 100,
    },
];

impl Mode {
    fn label(self) -> String {
        if self.batch == 1 {
            format!("event append, {} writer(s)", self.writers)
        } else {
            format!(
                "event append, batches of {}, {} writer(s)",
                self.batch, self.writers
            )
        }
    }
}

/// The plain-`INSERT` baseline.
#[derive(Clone)]
enum Plain {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let mut rows = Vec::new();
    let dir = bench.settings.scratch.path().join("append");
    std::fs::create_dir_all(&dir)?;
    let store = picloud_events::open(&format!("sqlite://{}", dir.join("store.db").display()))
        .await
        .context("opening the SQLite store")?;
    let plain = Plain::Sqlite(sqlite_plain(&dir.join("plain.db")).await?);
    rows.extend(compare(bench, "sqlite", store, plain).await?);
    match postgres(bench).await {
        Ok(more) => rows.extend(more),
        // The SQLite rows still count; the error row fails the run.
        Err(e) => rows.push(Figure::error("event append (postgres)", &e)),
    }
    Ok(rows)
}

async fn postgres(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let pg = bench.postgres()?;
    let store_url = pg.create_database("picloud_bench_append_store").await?;
    let plain_url = pg.create_database("picloud_bench_append_plain").await?;
    let store = picloud_events::open(&store_url)
        .await
        .context("opening the PostgreSQL store")?;
    let pool = picloud_events::store::postgres::pool_options()
        .connect(&plain_url)
        .await?;
    sqlx::raw_sql(POSTGRES_LOG).execute(&pool).await?;
    let rows = compare(bench, "postgres", store, Plain::Postgres(pool)).await?;
    let pg = bench.postgres()?;
    pg.drop_database("picloud_bench_append_store").await?;
    pg.drop_database("picloud_bench_append_plain").await?;
    Ok(rows)
}

async fn compare(
    bench: &Bench,
    backend: &str,
    store: Arc<dyn Store>,
    plain: Plain,
) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    let duration = s.run_time(2_000);
    let mut rows = Vec::new();
    let mut run = 0;
    for mode in MODES {
        let mut pairs = Vec::new();
        for _ in 0..s.pairs {
            run += 1;
            let a = store_rate(&store, mode, duration, run).await?;
            let b = plain_rate(&plain, mode, duration, run).await?;
            pairs.push(Pair {
                picloud: a,
                baseline: b,
            });
        }
        rows.push(Figure::compared(
            &mode.label(),
            backend,
            "events/s",
            "plain INSERT",
            pairs,
            "≥ 0.7 of plain INSERT",
            |_, _, r| r >= 0.7,
        ));
    }
    store.close().await;
    match plain {
        Plain::Sqlite(pool) => pool.close().await,
        Plain::Postgres(pool) => pool.close().await,
    }
    Ok(rows)
}

/// What every benchmark event looks like: an invocation record's size and shape.
fn event() -> NewEvent {
    NewEvent::new(
        "InvocationCompleted",
        json!({
            "id": "0195f3a2-7c1e-7d4a-9b1e-3f6a2c9d8e71",
            "app_id": "0195f3a2-7c1e-7d4a-9b1e-000000000001",
            "script_id": "0195f3a2-7c1e-7d4a-9b1e-000000000002",
            "script_version": 3,
            "trigger": "http",
            "status": "succeeded",
            "response_status": 200,
            "started_at": "2026-01-01T00:00:00.000000Z",
            "duration_us": 412,
            "logs": [],
        }),
        Metadata {
            actor: Some("system".into()),
            request_id: Some("0195f3a2-7c1e-7d4a-9b1e-3f6a2c9d8e72".into()),
            node: Some("bench".into()),
            app: Some("0195f3a2-7c1e-7d4a-9b1e-000000000001".into()),
            ..Metadata::default()
        },
    )
}

async fn store_rate(
    store: &Arc<dyn Store>,
    mode: Mode,
    duration: Duration,
    run: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut writers = Vec::new();
    for w in 0..mode.writers {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let stream = format!("bench-{run}-{w}");
            let event = event();
            let mut appended = 0u64;
            while Instant::now() < deadline {
                let events = vec![event.clone(); mode.batch];
                store.append(&stream, ExpectedVersion::Any, events).await?;
                appended += mode.batch as u64;
            }
            anyhow::Ok(appended)
        }));
    }
    let mut total = 0;
    for writer in writers {
        total += writer.await.context("a writer panicked")??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn plain_rate(
    plain: &Plain,
    mode: Mode,
    duration: Duration,
    run: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut writers = Vec::new();
    for w in 0..mode.writers {
        let plain = plain.clone();
        writers.push(tokio::spawn(async move {
            let stream = format!("plain-{run}-{w}");
            let event = event();
            let mut version = 0i64;
            let mut writer = plain.writer().await?;
            while Instant::now() < deadline {
                insert(&mut writer, &stream, version, mode.batch, &event).await?;
                version += mode.batch as i64;
            }
            anyhow::Ok(version as u64)
        }));
    }
    let mut total = 0;
    for writer in writers {
        total += writer.await.context("a writer panicked")??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// What one baseline writer writes through.
enum Writer {
    /// SQLite's single writer connection is the pool's (as in the store).
    Sqlite(SqlitePool),
    /// A PostgreSQL connection of the writer's own, held for the whole run: the
    /// store's appends go over one held connection too (`combine.rs`), so
    /// neither side pays a pool hand-out per row.
    Postgres(PoolConnection<Postgres>),
}

impl Plain {
    async fn writer(&self) -> anyhow::Result<Writer> {
        Ok(match self {
            Plain::Sqlite(pool) => Writer::Sqlite(pool.clone()),
            Plain::Postgres(pool) => Writer::Postgres(pool.acquire().await?),
        })
    }
}

/// `batch` rows after `version`: one autocommit `INSERT` for a single row; a batch
/// in one transaction (SQLite) or one multi-row `INSERT … SELECT FROM unnest`
/// (PostgreSQL).
async fn insert(
    writer: &mut Writer,
    stream: &str,
    version: i64,
    batch: usize,
    event: &NewEvent,
) -> anyhow::Result<()> {
    let data = serde_json::to_string(&event.data)?;
    let metadata = serde_json::to_string(&event.metadata)?;
    let recorded_at = chrono::Utc::now().timestamp_micros();
    let (app, actor) = (&event.metadata.app, &event.metadata.actor);
    match writer {
        Writer::Sqlite(pool) => {
            let pool = &*pool;
            let sql = "INSERT INTO events \
                 (stream, version, event_type, data, metadata, app, actor, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
            if batch == 1 {
                sqlx::query(sql)
                    .bind(stream)
                    .bind(version + 1)
                    .bind(&event.event_type)
                    .bind(&data)
                    .bind(&metadata)
                    .bind(app)
                    .bind(actor)
                    .bind(recorded_at)
                    .execute(pool)
                    .await?;
            } else {
                let mut tx = pool.begin().await?;
                for v in version + 1..=version + batch as i64 {
                    sqlx::query(sql)
                        .bind(stream)
                        .bind(v)
                        .bind(&event.event_type)
                        .bind(&data)
                        .bind(&metadata)
                        .bind(app)
                        .bind(actor)
                        .bind(recorded_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Writer::Postgres(conn) => {
            if batch == 1 {
                sqlx::query(
                    "INSERT INTO events \
                     (stream, version, event_type, data, metadata, app, actor, recorded_at, xid) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, pg_current_xact_id())",
                )
                .bind(stream)
                .bind(version + 1)
                .bind(&event.event_type)
                .bind(&data)
                .bind(&metadata)
                .bind(app)
                .bind(actor)
                .bind(recorded_at)
                .execute(&mut **conn)
                .await?;
            } else {
                let n = batch;
                let versions: Vec<i64> = (version + 1..=version + n as i64).collect();
                sqlx::query(
                    "INSERT INTO events \
                     (stream, version, event_type, data, metadata, app, actor, recorded_at, xid) \
                     SELECT s, v, t, d, m, a, c, r, pg_current_xact_id() \
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                                 $6::text[], $7::text[], $8::bigint[]) AS b(s, v, t, d, m, a, c, r)",
                )
                .bind(vec![stream.to_owned(); n])
                .bind(versions)
                .bind(vec![event.event_type.clone(); n])
                .bind(vec![data; n])
                .bind(vec![metadata; n])
                .bind(vec![app.clone(); n])
                .bind(vec![actor.clone(); n])
                .bind(vec![recorded_at; n])
                .execute(&mut **conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// The baseline's SQLite file: the store's connection settings and the event log's
/// migration, nothing else.
pub async fn sqlite_plain(path: &std::path::Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(SQLITE_LOG).execute(&pool).await?;
    Ok(pool)
}

/// Plain single-row `INSERT`s with 8 writers into a new SQLite file at `path`,
/// rows/s: the baseline of other figures (async webhook throughput).
pub async fn sqlite_insert_rate(path: &std::path::Path, duration: Duration) -> anyhow::Result<f64> {
    let pool = sqlite_plain(path).await?;
    let rate = plain_rate(&Plain::Sqlite(pool.clone()), EIGHT_WRITERS, duration, 0).await;
    pool.close().await;
    rate
}

/// The same on the (empty) PostgreSQL database at `url`, with the store's pool.
pub async fn postgres_insert_rate(url: &str, duration: Duration) -> anyhow::Result<f64> {
    let pool = picloud_events::store::postgres::pool_options()
        .connect(url)
        .await?;
    sqlx::raw_sql(POSTGRES_LOG).execute(&pool).await?;
    let rate = plain_rate(&Plain::Postgres(pool.clone()), EIGHT_WRITERS, duration, 0).await;
    pool.close().await;
    rate
}

const EIGHT_WRITERS: Mode = Mode {
    writers: 8,
    batch: 1,
};
