//! The scripts' key-value store: per-app keys holding JSON values, kept in the
//! `kv` table beside the log (not in it: see `migrations/*/0004_kv.sql`).
//!
//! The store methods (`Store::kv_*`) are the whole contract and behave the same on
//! both backends: a write that would take an app past `max_keys` distinct keys is
//! refused, `kv_incr` is one atomic read-modify-write (SQLite: the single writer
//! under `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock per
//! app), and listing is in byte order of the keys. Size caps on keys and values
//! are checked by the caller (the node's `kv` service and the admin API).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// One stored key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    /// The value's JSON text, as written.
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

/// A key with its app: one row of the whole table (export and import).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvRow {
    pub app: String,
    #[serde(flatten)]
    pub entry: KvEntry,
}

/// Insert one exported row (into a new store).
pub(crate) const IMPORT: &str =
    "INSERT INTO kv (app, key, value, updated_at) VALUES ($1, $2, $3, $4)";

/// Why a kv write was refused.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("the app already has {0} keys (the most it may hold)")]
    TooManyKeys(usize),
    #[error("the value at this key is not an integer")]
    NotInteger,
    #[error("the result does not fit in a 64-bit integer")]
    Overflow,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KvError {
    fn from(e: sqlx::Error) -> Self {
        KvError::Store(e.into())
    }
}

/// The integer a stored value holds, for `kv_incr` (`None`: not an integer).
pub fn integer_of(value: &str) -> Option<i64> {
    match serde_json::from_str::<serde_json::Value>(value).ok()? {
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Microseconds since the epoch → time.
pub(crate) fn time_of(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default()
}

/// What a write does after reading the key's current value (`current`) and, for
/// a new key, how many keys the app holds (`count`): shared by both backends.
pub(crate) fn check_room(
    exists: bool,
    count: impl FnOnce() -> Option<i64>,
    max_keys: usize,
) -> Result<(), KvError> {
    if exists {
        return Ok(());
    }
    let held = count().unwrap_or(0);
    if usize::try_from(held).unwrap_or(usize::MAX) >= max_keys {
        return Err(KvError::TooManyKeys(max_keys));
    }
    Ok(())
}

/// The new value of `kv_incr` given the stored text (`None`: no such key).
pub(crate) fn incremented(current: Option<&str>, by: i64) -> Result<i64, KvError> {
    let base = match current {
        None => 0,
        Some(text) => integer_of(text).ok_or(KvError::NotInteger)?,
    };
    base.checked_add(by).ok_or(KvError::Overflow)
}

/// Microseconds since the epoch, now.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}
