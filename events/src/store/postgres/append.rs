//! Appends on PostgreSQL: one call of `picloud_append` (migrations 0005, 0010), sent on
//! its own so it runs in its statement's implicit transaction. The function
//! takes the streams' locks, checks every expected version, inserts the events
//! through `picloud_append_events` (which keeps positions and xids in order, see
//! migration 0001) and notifies: one round trip, whatever the batch, where it
//! used to be `BEGIN`, a lock and a version `SELECT` per stream, the insert,
//! `pg_notify` and `COMMIT`. Appends without documents go over the node's
//! link (`append_on`, `append_combined`: see `link.rs` and `combine.rs`); those
//! with documents, in a transaction on a pooled connection
//! (`append_in_transaction`). Calls over the link send the versions the link
//! knows its streams to be at (`known.rs`).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Executor, Postgres, Row};

use super::TestHooks;
use super::known::Known;
use crate::error::{StoreError, VersionConflict};
use crate::event::{Appended, EncodedEvent, StreamWrite};
use crate::readmodel::EncodedDoc;
use crate::store::sql;

/// How often an append that lost a race on the unique (stream, version) index is
/// re-checked and retried; the re-check turns the race into a typed conflict.
/// A race is a call sent with a version known to be behind (`known.rs`), or one
/// that met such a call of another node; the locked way never races another.
const APPEND_ATTEMPTS: usize = 3;

const CALL: &str = "SELECT stream_index, stream_version, last_position \
     FROM picloud_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Append `writes` on `conn`, each attempt one call in its own implicit
/// transaction (the link's connection, `link.rs`, whose `Link::append` has
/// validated them before they got here).
///
/// The first attempt sends the versions `known` has; after a race, the
/// streams are forgotten and the next attempts go the locked way.
pub(super) async fn append_on<C>(
    conn: &mut C,
    writes: &[StreamWrite<EncodedEvent>],
    known: &mut Known,
) -> Result<Vec<Appended>, StoreError>
where
    for<'c> &'c mut C: Executor<'c, Database = Postgres>,
{
    let refs: Vec<&StreamWrite<EncodedEvent>> = writes.iter().collect();
    for attempt in 0..APPEND_ATTEMPTS {
        let trusted = (attempt == 0).then_some(&*known);
        let rows = Call::new(&refs, trusted)?
            .query()
            .fetch_all(&mut *conn)
            .await;
        let Some(rows) = unless_raced(rows)? else {
            known.forget(writes);
            continue;
        };
        let appended = outcome(&refs, &rows)?.into_result()?;
        known.learn(&appended);
        return Ok(appended);
    }
    out_of_attempts(conn, writes).await
}

/// Append `writes` and put `docs` (of that projection) in the same transaction
/// (`Store::append_projected`), on a pooled connection. Tests may hold the
/// commit back (`TestHooks`).
pub(super) async fn append_in_transaction(
    pool: &PgPool,
    hooks: &TestHooks,
    writes: &[StreamWrite<EncodedEvent>],
    (projection, docs): (&str, &[EncodedDoc]),
) -> Result<Vec<Appended>, StoreError> {
    sql::validate(writes)?;
    let refs: Vec<&StreamWrite<EncodedEvent>> = writes.iter().collect();
    for _ in 0..APPEND_ATTEMPTS {
        let mut tx = pool.begin().await?;
        let rows = Call::new(&refs, None)?.query().fetch_all(&mut *tx).await;
        let Some(rows) = unless_raced(rows)? else {
            continue;
        };
        // A conflict wrote nothing: dropping `tx` rolls back, and no document goes in.
        let appended = outcome(&refs, &rows)?.into_result()?;
        super::readmodel::put_many(&mut tx, projection, docs).await?;
        if let Some(max) = hooks.commit_delay_max {
            tokio::time::sleep(random_up_to(max)).await;
        }
        tx.commit().await?;
        return Ok(appended);
    }
    let mut conn = pool.acquire().await?;
    out_of_attempts(&mut *conn, writes).await
}

/// The call's rows, or `None` if it lost a race on the unique (stream, version)
/// index to a writer that did not take the stream lock, or was a deadlock
/// victim: re-check and retry.
fn unless_raced(rows: Result<Vec<PgRow>, sqlx::Error>) -> Result<Option<Vec<PgRow>>, StoreError> {
    match rows {
        Ok(rows) => Ok(Some(rows)),
        Err(sqlx::Error::Database(db))
            if db.is_unique_violation() || db.code().as_deref() == Some("40P01") =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Still losing races against writers that bypass the stream lock: a conflict.
async fn out_of_attempts<C>(
    conn: &mut C,
    writes: &[StreamWrite<EncodedEvent>],
) -> Result<Vec<Appended>, StoreError>
where
    for<'c> &'c mut C: Executor<'c, Database = Postgres>,
{
    let write = writes
        .first()
        .ok_or_else(|| StoreError::Invalid("append_many needs at least one stream".into()))?;
    Err(VersionConflict {
        stream: write.stream.clone(),
        expected: write.expected,
        actual: super::stream_version_in(conn, &write.stream).await?,
    }
    .into())
}

/// One call of `picloud_append` for the writes of several appends together
/// (`combine.rs`), their streams distinct: no retry, no documents, the
/// versions in `known` sent if given. A conflict names the first stream whose
/// expectation failed; `None` is a race (see `APPEND_ATTEMPTS`). Either way
/// nothing was written.
pub(super) async fn append_combined<C>(
    conn: &mut C,
    writes: &[&StreamWrite<EncodedEvent>],
    known: Option<&Known>,
) -> Result<Option<Outcome>, StoreError>
where
    for<'c> &'c mut C: Executor<'c, Database = Postgres>,
{
    let rows = Call::new(writes, known)?
        .query()
        .fetch_all(&mut *conn)
        .await;
    unless_raced(rows)?
        .map(|rows| outcome(writes, &rows))
        .transpose()
}

/// What one call of `picloud_append` did.
pub(super) enum Outcome {
    /// Every stream appended, in the order given.
    Done(Vec<Appended>),
    /// The write at `index` did not find its expected version; nothing was written.
    Conflict {
        index: usize,
        conflict: VersionConflict,
    },
}

impl Outcome {
    fn into_result(self) -> Result<Vec<Appended>, StoreError> {
        match self {
            Outcome::Done(appended) => Ok(appended),
            Outcome::Conflict { conflict, .. } => Err(conflict.into()),
        }
    }
}

/// The arguments of `picloud_append`, one array each (borrowing the writes'
/// text, bound without a copy).
struct Call<'a> {
    known: Vec<Option<i64>>,
    lock_keys: Vec<i32>,
    streams: Vec<&'a str>,
    expected: Vec<Option<i64>>,
    counts: Vec<i32>,
    event_type: Vec<&'a str>,
    data: Vec<&'a str>,
    metadata: Vec<&'a str>,
    app: Vec<Option<&'a str>>,
    actor: Vec<Option<&'a str>>,
    recorded_at: Vec<i64>,
}

impl<'a> Call<'a> {
    /// The call for `writes`, sending the versions `known` has for them.
    fn new(
        writes: &[&'a StreamWrite<EncodedEvent>],
        known: Option<&Known>,
    ) -> Result<Self, StoreError> {
        let recorded_at = sql::now_micros();
        let n = writes.iter().map(|w| w.events.len()).sum();
        let known: Vec<Option<i64>> = writes
            .iter()
            .map(|&w| known.and_then(|k| k.claim(w)))
            .collect();
        // The locks of the streams without a known version, in ascending key
        // order, so two multi-stream appends cannot deadlock.
        let mut lock_keys: Vec<i32> = writes
            .iter()
            .zip(&known)
            .filter(|(_, known)| known.is_none())
            .map(|(w, _)| stream_lock_key(&w.stream))
            .collect();
        lock_keys.sort_unstable();
        lock_keys.dedup();
        let mut call = Call {
            known,
            lock_keys,
            streams: Vec::with_capacity(writes.len()),
            expected: Vec::with_capacity(writes.len()),
            counts: Vec::with_capacity(writes.len()),
            event_type: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            app: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            recorded_at: vec![recorded_at; n],
        };
        for &write in writes {
            call.streams.push(&write.stream);
            call.expected.push(sql::expected_param(write.expected)?);
            call.counts
                .push(i32::try_from(write.events.len()).map_err(|_| {
                    StoreError::Invalid(format!("too many events for stream {}", write.stream))
                })?);
            for event in &write.events {
                call.event_type.push(&event.event_type);
                call.data.push(&event.data);
                call.metadata.push(&event.metadata);
                call.app.push(event.app.as_deref());
                call.actor.push(event.actor.as_deref());
            }
        }
        Ok(call)
    }

    fn query(self) -> sqlx::query::Query<'a, Postgres, <Postgres as sqlx::Database>::Arguments> {
        sqlx::query(CALL)
            .bind(self.known)
            .bind(self.lock_keys)
            .bind(self.streams)
            .bind(self.expected)
            .bind(self.counts)
            .bind(self.event_type)
            .bind(self.data)
            .bind(self.metadata)
            .bind(self.app)
            .bind(self.actor)
            .bind(self.recorded_at)
    }
}

/// What `picloud_append` answered: a row per stream in order, or the one
/// stream whose expectation failed (no `last_position`).
fn outcome(writes: &[&StreamWrite<EncodedEvent>], rows: &[PgRow]) -> Result<Outcome, StoreError> {
    let mut appended = Vec::with_capacity(writes.len());
    for row in rows {
        let index: i32 = row.try_get(0)?;
        let version: Option<i64> = row.try_get(1)?;
        let last_position: Option<i64> = row.try_get(2)?;
        let (at, write) = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| writes.get(i).map(|&w| (i, w)))
            .ok_or_else(|| {
                StoreError::Database(format!(
                    "picloud_append answered for stream {index} of {}",
                    writes.len()
                ))
            })?;
        let current = version
            .map(|v| {
                u64::try_from(v).map_err(|_| {
                    StoreError::corrupt(format!("negative version in {}", write.stream))
                })
            })
            .transpose()?;
        let Some(last_position) = last_position else {
            return Ok(Outcome::Conflict {
                index: at,
                conflict: VersionConflict {
                    stream: write.stream.clone(),
                    expected: write.expected,
                    actual: current,
                },
            });
        };
        let first_version = current.unwrap_or(0) + 1;
        appended.push(Appended {
            stream: write.stream.clone(),
            first_version,
            last_version: first_version + write.events.len() as u64 - 1,
            last_position,
        });
    }
    let in_order = appended.len() == writes.len()
        && appended
            .iter()
            .zip(writes)
            .all(|(a, w)| a.stream == w.stream);
    if !in_order {
        return Err(StoreError::Database(format!(
            "picloud_append answered {} rows for {} streams, or out of order",
            appended.len(),
            writes.len()
        )));
    }
    Ok(Outcome::Done(appended))
}

/// The second key of a stream's advisory lock (the first, 'picl', is written in
/// `picloud_append`): FNV-1a (32 bit) of the stream name. Two streams sharing a
/// key only take turns needlessly. Two-key locks never collide with the one-key
/// lock of `picloud_append_events`. Public for the tests that hold a stream's
/// lock.
#[doc(hidden)]
pub fn stream_lock_key(stream: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in stream.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// A duration in `0..=max`, from the v4 UUID generator's randomness (tests only).
fn random_up_to(max: Duration) -> Duration {
    let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    Duration::from_micros(random % micros.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first key of the per-stream advisory locks: 'picl'.
    const STREAM_LOCK_CLASS: i32 = 0x7069_636c;

    #[test]
    fn the_function_locks_streams_in_the_class_this_file_names() {
        let sql = crate::migrate::POSTGRES
            .iter()
            .find(|m| m.name == "append")
            .map(|m| m.sql)
            .unwrap_or_default();
        assert!(
            sql.contains(&format!("pg_advisory_xact_lock({STREAM_LOCK_CLASS}, ")),
            "migration 0005 must lock in class {STREAM_LOCK_CLASS}"
        );
    }

    #[test]
    fn lock_keys_are_stable() {
        // Nodes of different versions must agree on them.
        assert_eq!(
            stream_lock_key(""),
            i32::from_ne_bytes(0x811c_9dc5_u32.to_ne_bytes())
        );
        assert_eq!(stream_lock_key("a"), stream_lock_key("a"));
        assert_ne!(stream_lock_key("app-1"), stream_lock_key("app-2"));
    }
}
