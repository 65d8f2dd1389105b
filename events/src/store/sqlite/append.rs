//! Appends on SQLite: one write transaction, a few statements whatever the batch.
//!
//! The versions of every stream of the batch are read in one statement per chunk
//! (a correlated `MAX(version)` per stream: one index probe each, where a
//! `GROUP BY` would scan every version of a long stream), every expectation is
//! checked in the order given, then all events are inserted with multi-row
//! `INSERT … RETURNING`. A batch of 512 one-event streams (the invocation
//! recorder's) costs three statements instead of 1,024 (besides `BEGIN` and
//! `COMMIT`). One event on one stream, the common case, is a single statement
//! (`append_one`).

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row, SqliteConnection, SqlitePool};

use super::batch::{self, MAX_ROWS};
use crate::error::{StoreError, VersionConflict};
use crate::event::{Appended, EncodedEvent, StreamWrite};
use crate::readmodel::EncodedDoc;
use crate::store::sql::{self, EventColumns};

/// Columns bound per inserted event.
const EVENT_COLUMNS: usize = 8;
/// Streams per version read (one variable each).
const MAX_STREAMS: usize = 512;

/// Append `writes` and put `docs` (of that projection; often none) in the
/// same transaction (`Store::append_projected`).
pub(super) async fn append_many(
    writer: &SqlitePool,
    writes: &[StreamWrite<EncodedEvent>],
    (projection, docs): (&str, &[EncodedDoc]),
) -> Result<Vec<Appended>, StoreError> {
    sql::validate(writes)?;
    let recorded_at = sql::now_micros();
    if let ([write], []) = (writes, docs)
        && let [event] = write.events.as_slice()
    {
        return append_one(writer, write, event, recorded_at).await;
    }
    // Dropping `tx` on any error rolls back whatever was written.
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let streams: Vec<&str> = writes.iter().map(|w| w.stream.as_str()).collect();
    let current = stream_versions_in(&mut tx, &streams).await?;
    let mut columns = Vec::with_capacity(writes.iter().map(|w| w.events.len()).sum());
    for (write, current) in writes.iter().zip(&current) {
        if !write.expected.matches(*current) {
            return Err(VersionConflict {
                stream: write.stream.clone(),
                expected: write.expected,
                actual: *current,
            }
            .into());
        }
        let first_version = current.unwrap_or(0) + 1;
        for (version, event) in (first_version..).zip(&write.events) {
            columns.push(EventColumns::new(
                &write.stream,
                version,
                event,
                recorded_at,
            )?);
        }
    }
    let positions = insert(&mut tx, columns, writes, &current).await?;
    let mut appended = Vec::with_capacity(writes.len());
    let mut last = 0;
    for (write, current) in writes.iter().zip(current) {
        let n = write.events.len();
        last += n;
        let last_position = positions
            .get(last - 1)
            .copied()
            .ok_or_else(|| StoreError::Database("the insert returned too few positions".into()))?;
        let first_version = current.unwrap_or(0) + 1;
        appended.push(Appended {
            stream: write.stream.clone(),
            first_version,
            last_version: first_version + n as u64 - 1,
            last_position,
        });
    }
    super::readmodel::put_many(&mut tx, projection, docs).await?;
    tx.commit().await?;
    Ok(appended)
}

/// One event on one stream, the most common append: one statement in its own
/// implicit transaction, which reads the stream's version, checks the
/// expectation and inserts under the write lock, instead of four round trips to
/// the connection's thread (`BEGIN IMMEDIATE`, the version read, the insert,
/// `COMMIT`). No row inserted means the expectation failed.
///
/// The version is read by scalar subqueries of the bare form
/// `SELECT MAX(version) … WHERE stream = ?`, which SQLite answers with one seek
/// to the end of the stream's index range. As an aggregate of the `INSERT`'s own
/// `SELECT` (with `HAVING`), or wrapped in `COALESCE` inside a subquery in `FROM`,
/// it walked every version of the stream instead: 24 ms per append on a stream
/// of 200,000 events (see `a_single_append_costs_the_same_on_a_long_stream`).
async fn append_one(
    writer: &SqlitePool,
    write: &StreamWrite<EncodedEvent>,
    event: &EncodedEvent,
    recorded_at: i64,
) -> Result<Vec<Appended>, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "INSERT INTO events \
         (stream, version, event_type, data, metadata, app, actor, recorded_at) \
         SELECT ?1, COALESCE((SELECT MAX(version) FROM events WHERE stream = ?1), 0) + 1, \
         ?2, ?3, ?4, ?5, ?6, ?7 \
         WHERE ?8 IS NULL \
         OR COALESCE((SELECT MAX(version) FROM events WHERE stream = ?1), 0) = ?8 \
         RETURNING position, version",
    )
    .bind(&write.stream)
    .bind(&event.event_type)
    .bind(&event.data)
    .bind(&event.metadata)
    .bind(&event.app)
    .bind(&event.actor)
    .bind(recorded_at)
    .bind(sql::expected_param(write.expected)?)
    .fetch_optional(writer)
    .await
    .or_else(|e| match &e {
        // Only another process writing the same file could insert between the
        // read and the insert of one statement: a version conflict all the same.
        sqlx::Error::Database(db) if db.is_unique_violation() => Ok(None),
        _ => Err(e),
    })?;
    let Some((last_position, version)) = row else {
        let mut conn = writer.acquire().await?;
        return Err(VersionConflict {
            stream: write.stream.clone(),
            expected: write.expected,
            actual: super::stream_version_in(&mut conn, &write.stream).await?,
        }
        .into());
    };
    let version = u64::try_from(version)
        .map_err(|_| StoreError::corrupt(format!("negative version in {}", write.stream)))?;
    Ok(vec![Appended {
        stream: write.stream.clone(),
        first_version: version,
        last_version: version,
        last_position,
    }])
}

/// The last version of each stream (`None`: no such stream), in the order given.
pub(super) async fn stream_versions_in(
    conn: &mut SqliteConnection,
    streams: &[&str],
) -> Result<Vec<Option<u64>>, StoreError> {
    let mut found: HashMap<String, Option<i64>> = HashMap::with_capacity(streams.len());
    let mut rest = streams;
    for size in batch::chunk_sizes(streams.len(), MAX_STREAMS) {
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let text = format!(
            "SELECT s.column1, (SELECT MAX(version) FROM events WHERE stream = s.column1) \
             FROM (VALUES {}) AS s",
            batch::values(size, 1)
        );
        let mut query = sqlx::query(AssertSqlSafe(text));
        for stream in chunk {
            query = query.bind(*stream);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    streams
        .iter()
        .map(|stream| {
            let version = found.get(*stream).ok_or_else(|| {
                StoreError::Database(format!("no version read for stream {stream}"))
            })?;
            version
                .map(|v| {
                    u64::try_from(v)
                        .map_err(|_| StoreError::corrupt(format!("negative version in {stream}")))
                })
                .transpose()
        })
        .collect()
}

/// Insert the rows in order; their positions, ascending (so the i-th is the
/// i-th row's: positions are handed out in the order the rows are inserted).
async fn insert(
    conn: &mut SqliteConnection,
    columns: Vec<EventColumns>,
    writes: &[StreamWrite<EncodedEvent>],
    current: &[Option<u64>],
) -> Result<Vec<i64>, StoreError> {
    let mut positions = Vec::with_capacity(columns.len());
    let mut rows = columns.into_iter();
    for size in batch::chunk_sizes(rows.len(), MAX_ROWS) {
        let text = format!(
            "INSERT INTO events \
             (stream, version, event_type, data, metadata, app, actor, recorded_at) \
             VALUES {} RETURNING position",
            batch::values(size, EVENT_COLUMNS)
        );
        let mut query = sqlx::query_scalar(AssertSqlSafe(text));
        let mut first_stream = None;
        for c in rows.by_ref().take(size) {
            if first_stream.is_none() {
                first_stream = Some(c.stream.clone());
            }
            query = query
                .bind(c.stream)
                .bind(c.version)
                .bind(c.event_type)
                .bind(c.data)
                .bind(c.metadata)
                .bind(c.app)
                .bind(c.actor)
                .bind(c.recorded_at);
        }
        let mut chunk: Vec<i64> = query.fetch_all(&mut *conn).await.map_err(|e| match &e {
            // Cannot happen under BEGIN IMMEDIATE (the versions were read under
            // the same write lock), but a unique violation is a version conflict
            // whatever its cause: name the chunk's first stream.
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                conflict_of(first_stream.as_deref(), writes, current)
            }
            _ => StoreError::from(e),
        })?;
        if chunk.len() != size {
            return Err(StoreError::Database(format!(
                "an insert of {size} events returned {} positions",
                chunk.len()
            )));
        }
        // RETURNING promises no order; the positions themselves carry it.
        chunk.sort_unstable();
        positions.append(&mut chunk);
    }
    Ok(positions)
}

fn conflict_of(
    stream: Option<&str>,
    writes: &[StreamWrite<EncodedEvent>],
    current: &[Option<u64>],
) -> StoreError {
    let found = writes
        .iter()
        .zip(current)
        .find(|(w, _)| Some(w.stream.as_str()) == stream);
    match found {
        Some((write, current)) => VersionConflict {
            stream: write.stream.clone(),
            expected: write.expected,
            actual: *current,
        }
        .into(),
        None => StoreError::Database("a unique violation outside the batch's streams".into()),
    }
}
