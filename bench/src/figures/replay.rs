//! Start-up replay: the time from starting `picloud serve` on a log of 100k and 1M
//! events to its first `200` from `/readyz`, against a raw read of the same rows
//! (`SELECT` for SQLite, `COPY … TO STDOUT` for PostgreSQL).
//!
//! The log is what a node writes: a real node serves a few requests, then one of
//! its `InvocationsRecorded` rows, cut to its first run, is copied in bulk (SQL)
//! to the wanted size, each copy in its own stream (so every event is one run's
//! record, the smallest a recorder writes). Before every start the catalog snapshot is deleted, so the node
//! replays the whole log into its catalog; the stored projections' checkpoints are
//! set to the head, as on a node that had kept up. The 1M log is the 100k log grown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use crate::figures::Bench;
use crate::http::{self, Conn};
use crate::node::Node;
use crate::report::Figure;
use crate::stats::Pair;

const COLUMNS: &str = "position, stream, version, event_type, data, metadata, recorded_at";
const CHUNK: i64 = 100_000;
const READY_LIMIT: Duration = Duration::from_secs(600);

/// The log under test, on one backend.
enum Log {
    Sqlite { data_dir: PathBuf },
    Postgres { url: String, data_dir: PathBuf },
}

impl Log {
    fn backend(&self) -> &'static str {
        match self {
            Log::Sqlite { .. } => "sqlite",
            Log::Postgres { .. } => "postgres",
        }
    }

    fn data_dir(&self) -> &Path {
        match self {
            Log::Sqlite { data_dir } | Log::Postgres { data_dir, .. } => data_dir,
        }
    }

    fn database(&self) -> Option<&str> {
        match self {
            Log::Sqlite { .. } => None,
            Log::Postgres { url, .. } => Some(url),
        }
    }

    fn sqlite_path(&self) -> PathBuf {
        self.data_dir().join("picloud.db")
    }

    async fn sqlite(&self) -> anyhow::Result<SqliteConnection> {
        let options = SqliteConnectOptions::new()
            .filename(self.sqlite_path())
            .busy_timeout(Duration::from_secs(10));
        Ok(SqliteConnection::connect_with(&options).await?)
    }

    async fn postgres(&self, url: &str) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::connect(url).await?)
    }

    /// Run SQL that returns nothing.
    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Log::Sqlite { .. } => {
                let mut conn = self.sqlite().await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            Log::Postgres { url, .. } => {
                let mut conn = self.postgres(url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
        }
        Ok(())
    }

    /// Number of events and the position of an `InvocationsRecorded` to copy.
    async fn shape(&self) -> anyhow::Result<(i64, i64)> {
        let sql = "SELECT (SELECT count(*) FROM events), \
                   (SELECT max(position) FROM events WHERE event_type = 'InvocationsRecorded')";
        let row = match self {
            Log::Sqlite { .. } => {
                let mut conn = self.sqlite().await?;
                let row: (i64, Option<i64>) = sqlx::query_as(sql).fetch_one(&mut conn).await?;
                conn.close().await?;
                row
            }
            Log::Postgres { url, .. } => {
                let mut conn = self.postgres(url).await?;
                let row: (i64, Option<i64>) = sqlx::query_as(sql).fetch_one(&mut conn).await?;
                conn.close().await?;
                row
            }
        };
        Ok((
            row.0,
            row.1.context("the seed log has no invocation record")?,
        ))
    }

    /// Copy the template row until the log holds `target` events.
    async fn grow_to(&self, target: i64) -> anyhow::Result<()> {
        let (mut count, template) = self.shape().await?;
        while count < target {
            let n = (target - count).min(CHUNK);
            let sql = match self {
                Log::Sqlite { .. } => format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                     INSERT INTO events \
                     (stream, version, event_type, data, metadata, app, actor, recorded_at) \
                     SELECT 'runs-bench-' || ({count} + n.i), 1, t.event_type, \
                            '{{\"runs\":[' || (t.data -> '$.runs[0]') || ']}}', \
                            t.metadata, t.app, t.actor, t.recorded_at \
                     FROM n, (SELECT * FROM events WHERE position = {template}) AS t"
                ),
                Log::Postgres { .. } => format!(
                    "INSERT INTO events \
                     (stream, version, event_type, data, metadata, app, actor, recorded_at, xid) \
                     SELECT 'runs-bench-' || ({count} + i), 1, t.event_type, \
                            '{{\"runs\":[' || (t.data::jsonb -> 'runs' -> 0)::text || ']}}', \
                            t.metadata, t.app, t.actor, t.recorded_at, pg_current_xact_id() \
                     FROM generate_series(1, {n}) AS i, \
                          (SELECT * FROM events WHERE position = {template}) AS t"
                ),
            };
            self.execute(&sql).await?;
            count += n;
        }
        if let Log::Postgres { .. } = self {
            // Set hint bits and statistics now, not during the first measured read.
            self.execute("VACUUM ANALYZE events").await?;
        }
        Ok(())
    }

    /// Make the next start replay the whole log into the catalog.
    async fn reset_catalog(&self) -> anyhow::Result<()> {
        self.execute(
            "DELETE FROM snapshots; \
             UPDATE checkpoints SET position = (SELECT max(position) FROM events)",
        )
        .await
    }

    /// The raw read: every row of the log, in position order.
    async fn raw_read(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut bytes = 0usize;
        match self {
            Log::Sqlite { .. } => {
                let options = SqliteConnectOptions::new()
                    .filename(self.sqlite_path())
                    .read_only(true);
                let mut conn = SqliteConnection::connect_with(&options).await?;
                {
                    let sql = format!("SELECT {COLUMNS} FROM events ORDER BY position");
                    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut conn);
                    while let Some(row) = rows.try_next().await? {
                        let stream: &str = row.try_get(1)?;
                        let data: &str = row.try_get(4)?;
                        let metadata: &str = row.try_get(5)?;
                        bytes += stream.len() + data.len() + metadata.len();
                    }
                }
                conn.close().await?;
            }
            Log::Postgres { url, .. } => {
                let mut conn = self.postgres(url).await?;
                {
                    let sql =
                        format!("COPY (SELECT {COLUMNS} FROM events ORDER BY position) TO STDOUT");
                    let mut out = conn.copy_out_raw(&sql).await?;
                    while let Some(chunk) = out.try_next().await? {
                        bytes += chunk.len();
                    }
                }
                conn.close().await?;
            }
        }
        anyhow::ensure!(bytes > 0, "the raw read returned nothing");
        Ok(start.elapsed())
    }
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let scratch = bench.settings.scratch.path().to_owned();
    let mut rows = Vec::new();
    let sqlite = Log::Sqlite {
        data_dir: scratch.join("replay-sqlite"),
    };
    rows.extend(measure(bench, &sqlite).await?);
    drop(sqlite);
    let _ = std::fs::remove_dir_all(scratch.join("replay-sqlite"));

    match postgres(bench, &scratch).await {
        Ok(more) => rows.extend(more),
        // The SQLite rows still count; the error row fails the run.
        Err(e) => rows.push(Figure::error("start-up replay (postgres)", &e)),
    }
    Ok(rows)
}

async fn postgres(bench: &mut Bench, scratch: &Path) -> anyhow::Result<Vec<Figure>> {
    let url = bench
        .postgres()?
        .create_database("picloud_bench_replay")
        .await?;
    let postgres = Log::Postgres {
        url,
        data_dir: scratch.join("replay-postgres"),
    };
    let rows = measure(bench, &postgres).await?;
    bench
        .postgres()?
        .drop_database("picloud_bench_replay")
        .await?;
    Ok(rows)
}

async fn measure(bench: &Bench, log: &Log) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    seed(bench, log).await?;
    let sizes: Vec<i64> = s.scale(vec![100_000, 1_000_000], vec![2_000]);
    let baseline_name = match log {
        Log::Sqlite { .. } => "SELECT",
        Log::Postgres { .. } => "COPY TO STDOUT",
    };
    let mut rows = Vec::new();
    for size in sizes {
        let grown = Instant::now();
        log.grow_to(size).await?;
        eprintln!(
            "    {} log of {size} events built in {:.1} s",
            log.backend(),
            grown.elapsed().as_secs_f64()
        );
        let mut pairs = Vec::new();
        for _ in 0..s.pairs {
            log.reset_catalog().await?;
            let mut node = Node::spawn(&s.picloud, log.data_dir(), log.database())?;
            let ready = node.wait_ready(READY_LIMIT).await?;
            node.stop().await?;
            let raw = log.raw_read().await?;
            pairs.push(Pair {
                picloud: ready.as_secs_f64(),
                baseline: raw.as_secs_f64(),
            });
        }
        rows.push(
            Figure::compared(
                &format!("start-up replay, {} events", count_label(size)),
                log.backend(),
                "s",
                baseline_name,
                pairs,
                "≤ 3× the raw read",
                |_, _, r| r <= 3.0,
            )
            .with_note("process start to first 200 from /readyz, no catalog snapshot"),
        );
    }
    Ok(rows)
}

/// A node writes the seed log: an app, a script, a route, and a few invocations.
async fn seed(bench: &Bench, log: &Log) -> anyhow::Result<()> {
    let s = &bench.settings;
    let node = Node::start(&s.picloud, log.data_dir(), log.database()).await?;
    node.admin()
        .await?
        .endpoint(
            "demo",
            "hello",
            crate::figures::hot_path::HELLO,
            "GET",
            "/hello/:name",
        )
        .await?;
    let mut conn = Conn::connect(node.addr).await?;
    let raw = http::request("GET", node.addr, crate::figures::hot_path::PATH, &[], b"");
    for _ in 0..50 {
        let reply = conn.send(&raw).await?;
        anyhow::ensure!(reply.status == 200, "seed request: {}", reply.text());
    }
    // SIGTERM flushes the recorder: the invocation records are in the log after.
    node.stop().await
}

fn count_label(n: i64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
