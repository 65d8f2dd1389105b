//! What can go wrong in the store, sorted by what the caller can do about it:
//! reload and retry (`VersionConflict`), wait (`Unavailable`), fix the call
//! (`Invalid`), or call someone (`Corrupt`, `Database`).

use std::fmt;

use crate::event::ExpectedVersion;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the appender expected.
    #[error(transparent)]
    VersionConflict(#[from] VersionConflict),
    /// The database cannot be reached (connection refused or lost, pool closed).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bad argument, e.g. an empty batch.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Stored data cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Database(String),
}

/// An append's expected version did not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("version conflict on stream {stream}: expected {expected}, found {}", ActualVersion(*.actual))]
pub struct VersionConflict {
    pub stream: String,
    pub expected: ExpectedVersion,
    /// The stream's last version when the conflict was seen; `None` if it had none.
    pub actual: Option<u64>,
}

struct ActualVersion(Option<u64>);

impl fmt::Display for ActualVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "version {v}"),
            None => f.write_str("no stream"),
        }
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: impl fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &error {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
                StoreError::Unavailable(error.to_string())
            }
            E::Configuration(_) => StoreError::Invalid(error.to_string()),
            E::ColumnDecode { .. } | E::Decode(_) => StoreError::Corrupt(error.to_string()),
            E::Database(db) => match db.code().as_deref().map(classify_code) {
                Some(Class::Unavailable) => StoreError::Unavailable(error.to_string()),
                Some(Class::Corrupt) => StoreError::Corrupt(error.to_string()),
                _ => StoreError::Database(error.to_string()),
            },
            _ => StoreError::Database(error.to_string()),
        }
    }
}

enum Class {
    Unavailable,
    Corrupt,
    Other,
}

/// Sort a database error code: SQLite's are (extended) result codes, numbers;
/// PostgreSQL's are five-character SQLSTATEs.
fn classify_code(code: &str) -> Class {
    if let Ok(extended) = code.parse::<i32>() {
        return match extended & 0xff {
            // SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL
            14 | 10 | 13 => Class::Unavailable,
            // SQLITE_CORRUPT, SQLITE_NOTADB
            11 | 26 => Class::Corrupt,
            _ => Class::Other,
        };
    }
    match code {
        // connection exceptions, admin/crash shutdown, cannot connect now,
        // too many connections, database does not exist (yet)
        c if c.starts_with("08") => Class::Unavailable,
        "57P01" | "57P02" | "57P03" | "53300" | "3D000" => Class::Unavailable,
        // data corrupted, index corrupted
        "XX001" | "XX002" => Class::Corrupt,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_conflict_names_stream_expected_and_actual() {
        let e = StoreError::from(VersionConflict {
            stream: "app-1".into(),
            expected: ExpectedVersion::Exact(2),
            actual: Some(3),
        });
        assert_eq!(
            e.to_string(),
            "version conflict on stream app-1: expected version 2, found version 3"
        );
        let e = VersionConflict {
            stream: "slug-x".into(),
            expected: ExpectedVersion::Exact(1),
            actual: None,
        };
        assert_eq!(
            e.to_string(),
            "version conflict on stream slug-x: expected version 1, found no stream"
        );
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(io)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
    }
}
