//! The `kv` table's queries, written once for both backends: `kv_backend!`
//! expands into a backend's `kv` module (given its pool type, its SQL and how a
//! write transaction starts). Each store's `Store::kv_*` methods delegate to it
//! (`async_trait` cannot see methods made by a macro).

/// A backend's `kv` module. `$begin` is an expression opening the write
/// transaction of `$pool_var` for `$app_var` (it must make the read-modify-write
/// atomic: SQLite's `BEGIN IMMEDIATE` on the single writer, PostgreSQL's per-app
/// advisory lock).
macro_rules! kv_backend {
    (
        pool: $pool:ty,
        begin: |$pool_var:ident, $app_var:ident| $begin:expr,
        get: $get:expr, value: $value:expr, count: $count:expr, upsert: $upsert:expr,
        delete: $delete:expr, clear: $clear:expr, list: $list:expr, scan: $scan:expr $(,)?
    ) => {
        use sqlx::Row;

        use crate::error::StoreError;
        use crate::kv::{KvEntry, KvError, KvRow, check_room, incremented, now_micros, time_of};

        /// Every app's rows after `(app, key)` in `(app, key)` order, at most `limit`.
        pub(super) async fn scan(
            pool: &$pool,
            after: (&str, &str),
            limit: usize,
        ) -> Result<Vec<KvRow>, StoreError> {
            let rows = sqlx::query($scan)
                .bind(after.0)
                .bind(after.1)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(KvRow {
                        app: row.try_get(0)?,
                        entry: KvEntry {
                            key: row.try_get(1)?,
                            value: row.try_get(2)?,
                            updated_at: time_of(row.try_get(3)?),
                        },
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(Into::into)
        }

        /// A kv write: a whole value, or an increment.
        pub(super) enum Write<'a> {
            Put(&'a str),
            Incr(i64),
        }

        pub(super) async fn get(
            pool: &$pool,
            app: &str,
            key: &str,
        ) -> Result<Option<KvEntry>, StoreError> {
            let row = sqlx::query($get)
                .bind(app)
                .bind(key)
                .fetch_optional(pool)
                .await?;
            row.map(|row| {
                Ok(KvEntry {
                    key: key.to_owned(),
                    value: row.try_get(0)?,
                    updated_at: time_of(row.try_get(1)?),
                })
            })
            .transpose()
            .map_err(|e: sqlx::Error| e.into())
        }

        /// Write a value, or add to the stored integer; answers the integer an
        /// increment wrote.
        pub(super) async fn write(
            $pool_var: &$pool,
            $app_var: &str,
            key: &str,
            value: Write<'_>,
            max_keys: usize,
        ) -> Result<Option<i64>, KvError> {
            let mut tx = $begin;
            let current: Option<String> = sqlx::query_scalar($value)
                .bind($app_var)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let count = match current {
                None => Some(
                    sqlx::query_scalar::<_, i64>($count)
                        .bind($app_var)
                        .fetch_one(&mut *tx)
                        .await?,
                ),
                Some(_) => None,
            };
            check_room(current.is_some(), || count, max_keys)?;
            let (text, answer) = match value {
                Write::Put(text) => (text.to_owned(), None),
                Write::Incr(by) => {
                    let n = incremented(current.as_deref(), by)?;
                    (n.to_string(), Some(n))
                }
            };
            sqlx::query($upsert)
                .bind($app_var)
                .bind(key)
                .bind(text)
                .bind(now_micros())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(answer)
        }

        pub(super) async fn delete(pool: &$pool, app: &str, key: &str) -> Result<bool, StoreError> {
            let done = sqlx::query($delete)
                .bind(app)
                .bind(key)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        pub(super) async fn clear(pool: &$pool, app: &str) -> Result<u64, StoreError> {
            let done = sqlx::query($clear).bind(app).execute(pool).await?;
            Ok(done.rows_affected())
        }

        pub(super) async fn list(
            pool: &$pool,
            app: &str,
            prefix: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<KvEntry>, StoreError> {
            let rows = sqlx::query($list)
                .bind(app)
                .bind(prefix)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(KvEntry {
                        key: row.try_get(0)?,
                        value: row.try_get(1)?,
                        updated_at: time_of(row.try_get(2)?),
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(Into::into)
        }
    };
}
