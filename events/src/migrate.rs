//! Schema migrations: a small runner of our own over SQL files embedded from
//! `migrations/{sqlite,postgres}/NNNN_name.sql`.
//!
//! Pending migrations are applied in order, all in one transaction (a failed
//! upgrade leaves the schema as it was), and recorded in `picloud_migrations`
//! with a checksum of their text. Editing a migration that a database has already
//! applied is refused: write a new one instead. A database that has applied a
//! migration this binary does not know (a newer binary migrated it) is refused
//! too, rather than run against a schema it does not understand.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::error::StoreError;

/// One migration: `NNNN_name.sql`.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($backend:literal, $version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                "../../migrations/",
                $backend,
                "/",
                stringify!($version),
                "_",
                $name,
                ".sql"
            )),
        }
    };
}

// `stringify!` of a literal keeps its leading zeros, so `0001` names the file.
#[allow(clippy::zero_prefixed_literal)]
pub const SQLITE: &[Migration] = &[
    migration!("sqlite", 0001, "event_log"),
    migration!("sqlite", 0002, "read_models"),
    migration!("sqlite", 0003, "deliveries"),
    migration!("sqlite", 0004, "kv"),
    migration!("sqlite", 0005, "append"),
    migration!("sqlite", 0006, "outbox_next"),
    migration!("sqlite", 0007, "invocations_unsorted"),
    migration!("sqlite", 0008, "read_models_ascending"),
    migration!("sqlite", 0009, "append_one_stream"),
    migration!("sqlite", 0010, "append_known_versions"),
    migration!("sqlite", 0011, "nodes"),
];

#[allow(clippy::zero_prefixed_literal)]
pub const POSTGRES: &[Migration] = &[
    migration!("postgres", 0001, "event_log"),
    migration!("postgres", 0002, "read_models"),
    migration!("postgres", 0003, "deliveries"),
    migration!("postgres", 0004, "kv"),
    migration!("postgres", 0005, "append"),
    migration!("postgres", 0006, "outbox_next"),
    migration!("postgres", 0007, "invocations_unsorted"),
    migration!("postgres", 0008, "read_models_ascending"),
    migration!("postgres", 0009, "append_one_stream"),
    migration!("postgres", 0010, "append_known_versions"),
    migration!("postgres", 0011, "nodes"),
];

/// The highest migration number: the schema this binary expects.
pub const SCHEMA_VERSION: u32 = 11;

/// FNV-1a (64 bit) of the text with line endings normalised: enough to notice an
/// edit, and a checkout with CRLF line endings does not count as one.
pub fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.bytes().filter(|b| *b != b'\r') {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// What a database says it has applied: version → (name, checksum).
type Applied = BTreeMap<i64, (String, String)>;

/// The migrations still to apply, after checking the applied ones are ours and
/// unchanged.
fn pending<'m>(
    known: &'m [Migration],
    applied: &Applied,
) -> Result<Vec<&'m Migration>, StoreError> {
    for (version, (name, sum)) in applied {
        let Some(m) = known.iter().find(|m| i64::from(m.version) == *version) else {
            return Err(StoreError::Invalid(format!(
                "the database has migration {version} ({name}) which this binary does not know; \
                 it was migrated by a newer PiCloud (schema {SCHEMA_VERSION} here)"
            )));
        };
        if *sum != checksum(m.sql) {
            return Err(StoreError::Invalid(format!(
                "migration {version} ({}) was changed after it was applied \
                 (checksum {sum} in the database, {} here); add a new migration instead",
                m.name,
                checksum(m.sql)
            )));
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.contains_key(&i64::from(m.version)))
        .collect())
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS picloud_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    checksum   TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";
const SELECT_APPLIED: &str = "SELECT version, name, checksum FROM picloud_migrations";
const INSERT_APPLIED: &str =
    "INSERT INTO picloud_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)";

/// Apply the pending SQLite migrations; returns how many ran.
pub async fn run_sqlite(pool: &sqlx::SqlitePool) -> Result<usize, StoreError> {
    run_sqlite_with(pool, SQLITE).await
}

pub(crate) async fn run_sqlite_with(
    pool: &sqlx::SqlitePool,
    known: &[Migration],
) -> Result<usize, StoreError> {
    // IMMEDIATE: take the write lock first, so two processes opening the same
    // file do not both decide to migrate.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
    let mut applied = Applied::new();
    for row in sqlx::query(SELECT_APPLIED).fetch_all(&mut *tx).await? {
        applied.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
    }
    let todo = pending(known, &applied)?;
    for m in &todo {
        tracing::info!(version = m.version, name = m.name, "applying migration");
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        sqlx::query(INSERT_APPLIED)
            .bind(i64::from(m.version))
            .bind(m.name)
            .bind(checksum(m.sql))
            .bind(now_micros())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(todo.len())
}

/// Apply the pending PostgreSQL migrations; returns how many ran.
pub async fn run_postgres(pool: &sqlx::PgPool) -> Result<usize, StoreError> {
    run_postgres_with(pool, POSTGRES).await
}

pub(crate) async fn run_postgres_with(
    pool: &sqlx::PgPool,
    known: &[Migration],
) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    // Nodes of a cluster starting together: one migrates, the others wait and
    // then find nothing to do. 0x7069636d6967 = 'picmig'.
    sqlx::query("SELECT pg_advisory_xact_lock(123597941991783)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
    let mut applied = Applied::new();
    for row in sqlx::query(SELECT_APPLIED).fetch_all(&mut *tx).await? {
        applied.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
    }
    let todo = pending(known, &applied)?;
    for m in &todo {
        tracing::info!(version = m.version, name = m.name, "applying migration");
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        sqlx::query(INSERT_APPLIED)
            .bind(i64::from(m.version))
            .bind(m.name)
            .bind(checksum(m.sql))
            .bind(now_micros())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(todo.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations_up_to_schema_version() {
        let names = |ms: &[Migration]| ms.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
        for ms in [SQLITE, POSTGRES] {
            let versions: Vec<u32> = ms.iter().map(|m| m.version).collect();
            let expected: Vec<u32> = (1..=SCHEMA_VERSION).collect();
            assert_eq!(
                versions, expected,
                "migrations are numbered 1..=SCHEMA_VERSION"
            );
            assert!(ms.iter().all(|m| !m.sql.trim().is_empty()));
        }
    }

    #[test]
    fn checksum_ignores_line_endings_but_not_edits() {
        assert_eq!(checksum("a;\nb;\n"), checksum("a;\r\nb;\r\n"));
        assert_ne!(checksum("a;\nb;\n"), checksum("a;\nc;\n"));
    }

    #[test]
    fn an_edited_applied_migration_is_refused() {
        let mut applied = Applied::new();
        applied.insert(1, ("event_log".into(), "0000000000000000".into()));
        let err = pending(SQLITE, &applied).unwrap_err();
        assert!(
            err.to_string().contains("was changed after it was applied"),
            "{err}"
        );
    }

    #[test]
    fn a_migration_from_a_newer_binary_is_refused() {
        let mut applied = Applied::new();
        applied.insert(99, ("future".into(), "x".into()));
        assert!(pending(SQLITE, &applied).is_err());
    }

    #[test]
    fn only_unapplied_migrations_are_pending() {
        let mut applied = Applied::new();
        applied.insert(1, ("event_log".into(), checksum(SQLITE[0].sql)));
        let todo = pending(SQLITE, &applied).unwrap();
        assert_eq!(todo.len(), SQLITE.len() - 1);
        assert_eq!(todo[0].version, 2);
    }
}
