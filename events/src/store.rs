//! The `Store` trait: the event log, the read-model documents and the snapshots,
//! behind one interface with two backends (`sqlite`, `postgres`) that pass one
//! conformance suite (`conformance`).
//!
//! Reading the whole log (`read_all`) never skips an event that commits late: each
//! backend only returns a prefix of the log that can no longer grow in the middle,
//! and says `pending` when committed events wait behind an open transaction.

use std::path::Path;
use std::sync::Arc;

use crate::cluster::NodeRow;
use crate::error::StoreError;
use crate::event::{
    Appended, EncodedEvent, EventFilter, ExpectedVersion, NewEvent, RecordedEvent, StreamWrite,
};
use crate::kv::{KvEntry, KvError, KvRow};
use crate::readmodel::{Delivery, Doc, DocQuery, EncodedDoc, RowOp};

#[doc(hidden)]
#[macro_use]
mod kv_sql;
pub mod conformance;
mod fold;
pub mod postgres;
mod sql;
pub mod sqlite;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A page of the whole log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadAll {
    pub events: Vec<RecordedEvent>,
    /// Committed events exist past what could be safely returned: an older
    /// transaction is still open. Retry shortly (this is not idle polling).
    pub pending: bool,
}

/// Which events `Store::read_selected` answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    /// Only streams whose names start with one of these; `None`: every stream.
    pub prefixes: Option<&'a [&'a str]>,
    /// Leave out the events of this type.
    pub except_type: Option<&'a str>,
}

impl<'a> Selection<'a> {
    /// The events of the streams whose names start with one of `prefixes`.
    pub fn streams(prefixes: &'a [&'a str]) -> Self {
        Selection {
            prefixes: Some(prefixes),
            except_type: None,
        }
    }

    /// Every event but those of `event_type`.
    pub fn except_type(event_type: &'a str) -> Self {
        Selection {
            prefixes: None,
            except_type: Some(event_type),
        }
    }
}

/// A page of the log restricted to a selection (`Store::read_selected`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadSelected {
    /// The selected events among those scanned, ascending.
    pub events: Vec<RecordedEvent>,
    /// How far the log was scanned: every selected event up to this position is
    /// in `events` (or was before `after`). Equal to `after` when nothing new
    /// could be scanned.
    pub reached: i64,
    /// As in `ReadAll`: committed events wait behind an open transaction.
    pub pending: bool,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Append to one stream if it is at the `expected` version.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let mut appended = self
            .append_many(vec![StreamWrite {
                stream: stream.to_owned(),
                expected,
                events,
            }])
            .await?;
        appended
            .pop()
            .ok_or_else(|| StoreError::Database("append returned nothing".into()))
    }

    /// Several streams in one transaction, all or nothing (a conflict on any stream
    /// appends nothing). Results are in the order of `writes`.
    async fn append_many(&self, writes: Vec<StreamWrite>) -> Result<Vec<Appended>, StoreError> {
        let encoded = writes
            .iter()
            .map(StreamWrite::encode)
            .collect::<Result<Vec<_>, _>>()?;
        self.append_projected(&encoded, "", &[]).await
    }

    /// `append_many`, and in the same transaction the documents that
    /// `projection` makes of these events, inserted or replaced (a writer that
    /// projects its own events: see `Projection::skipped_when_following`). A
    /// conflict writes neither. With no documents it is `append_many`.
    async fn append_projected(
        &self,
        writes: &[StreamWrite<EncodedEvent>],
        projection: &str,
        docs: &[EncodedDoc],
    ) -> Result<Vec<Appended>, StoreError>;

    /// Load a whole exported log into a new store in one transaction, keeping each
    /// event's position, stream version, metadata and time. Refused, with nothing
    /// written, when the events could not be a log (positions that do not rise,
    /// stream versions with gaps) or the store already holds events, read models
    /// or snapshots. Read models are then built by the projections as usual.
    /// The kv rows go in with the events, in the same transaction.
    async fn import(&self, events: &[RecordedEvent], kv: &[KvRow]) -> Result<(), StoreError>;

    /// Versions `>= from_version`, ascending, at most `limit`.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stream's last version; `None` when it has no events.
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError>;

    /// Events with position > after, ascending, never skipping an event that commits late.
    async fn read_all(&self, after: i64, limit: usize) -> Result<ReadAll, StoreError>;

    /// Like `read_all`, but scans at most `scan` events past `after` and answers
    /// only the `selection`, and how far it scanned. A follower that needs a few
    /// streams (the catalog), or can do without some events (a projection whose
    /// writers project their own), skips the rest without reading or decoding them.
    async fn read_selected(
        &self,
        after: i64,
        scan: usize,
        selection: &Selection<'_>,
    ) -> Result<ReadSelected, StoreError>;

    /// Admin browse: filter, position > after, ascending, at most limit.
    async fn browse(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Highest committed position, 0 when empty.
    async fn head_position(&self) -> Result<i64, StoreError>;

    /// Wake-up signal: the value changes (at least) whenever new events may be
    /// readable. The payload is never data.
    fn wakeups(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Ops and the projection's new checkpoint in one transaction. A checkpoint not
    /// greater than the stored one makes the whole call a no-op (re-delivery).
    async fn apply(
        &self,
        projection: &str,
        ops: Vec<RowOp>,
        checkpoint: i64,
    ) -> Result<(), StoreError>;

    /// The projection's checkpoint, 0 when unknown.
    async fn checkpoint(&self, projection: &str) -> Result<i64, StoreError>;

    /// Every projection's checkpoint, by name.
    async fn checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Delete the documents of `collections` and the projection's checkpoint, atomically.
    async fn reset(&self, projection: &str, collections: &[&str]) -> Result<(), StoreError>;

    async fn get_doc(&self, collection: &str, key: &str) -> Result<Option<Doc>, StoreError>;

    async fn query_docs(&self, q: &DocQuery) -> Result<Vec<Doc>, StoreError>;

    /// Lease up to `limit` outbox rows that are due at `now` (microseconds) and not
    /// leased, or whose lease ended, to `node` until `lease_until`. Concurrent
    /// claimers (other nodes) never get the same row while a lease holds.
    async fn claim_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// The earliest instant (microseconds) at which an outbox row is or becomes
    /// claimable; `None` when the outbox is empty.
    async fn next_delivery_at(&self) -> Result<Option<i64>, StoreError>;

    /// Shorten or extend `node`'s lease on a row it could not start (overloaded,
    /// shutting down): claimable again from `until` (microseconds). A row leased
    /// to another node is left alone.
    async fn postpone_delivery(
        &self,
        invocation_id: &str,
        node: &str,
        until: i64,
    ) -> Result<(), StoreError>;

    /// Free every lease `node` holds (a restarted node takes back what its previous
    /// run was doing when it died; a draining node hands back what it did not
    /// finish); answers how many rows were freed, and wakes the dispatchers
    /// (`lease_wakeups`) when there were any.
    async fn release_leases(&self, node: &str) -> Result<u64, StoreError>;

    /// Write a node's row of the cluster registry (insert or replace): its start,
    /// its heartbeats, its drain and its exit.
    async fn put_node(&self, node: &NodeRow) -> Result<(), StoreError>;

    /// Every node of the registry, oldest start first.
    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError>;

    /// Mark `gone` every node (not gone yet) whose last heartbeat is older than
    /// `silent_since` (microseconds), and free the outbox leases gone nodes hold,
    /// in one transaction; answers the ids of the nodes marked. When several
    /// nodes reap at once, each node is marked by one of them.
    async fn reap_nodes(&self, silent_since: i64) -> Result<Vec<String>, StoreError>;

    /// Lease wake-up signal: the value changes whenever outbox leases were freed
    /// (`release_leases`, `reap_nodes`), by this node or, on PostgreSQL, any
    /// other: those rows are claimable at once, not when their lease would end.
    fn lease_wakeups(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Save (replace) a snapshot: postcard bytes of an in-memory model at `position`.
    /// The entry at `key` of `app`.
    async fn kv_get(&self, app: &str, key: &str) -> Result<Option<KvEntry>, StoreError>;

    /// Store `value` (JSON text) at `key`; refused with `TooManyKeys` when the key
    /// is new and the app already holds `max_keys` keys.
    async fn kv_put(
        &self,
        app: &str,
        key: &str,
        value: &str,
        max_keys: usize,
    ) -> Result<(), KvError>;

    /// Remove `key`; whether it existed.
    async fn kv_delete(&self, app: &str, key: &str) -> Result<bool, StoreError>;

    /// Entries whose key starts with `prefix` and sorts after `after` (byte order),
    /// at most `limit`.
    async fn kv_list(
        &self,
        app: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError>;

    /// Add `by` to the integer at `key` (a missing key counts as 0) in one atomic
    /// step; answers the new value. `NotInteger` if the key holds anything else.
    async fn kv_incr(&self, app: &str, key: &str, by: i64, max_keys: usize)
    -> Result<i64, KvError>;

    /// Every app's kv rows after `(app, key)`, in `(app, key)` order (export).
    async fn kv_scan(&self, after: (&str, &str), limit: usize) -> Result<Vec<KvRow>, StoreError>;

    /// Remove every key of `app` (the app was deleted); how many were removed.
    async fn kv_clear(&self, app: &str) -> Result<u64, StoreError>;

    async fn save_snapshot(
        &self,
        name: &str,
        position: i64,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError>;

    async fn load_snapshot(&self, name: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError>;

    /// Cheap liveness check (SELECT 1) for /readyz.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Close pools and stop background tasks (PostgreSQL: the link).
    async fn close(&self);
}

/// Bump a store's wake-up channel (`Store::wakeups`): followers waiting on it
/// read the log again.
fn bump(wake: &tokio::sync::watch::Sender<u64>) {
    wake.send_modify(|n| *n = n.wrapping_add(1));
}

/// Open a store and run its migrations: `sqlite://PATH` (the file and its
/// directory are created if missing) or `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(StoreError::Invalid(
                "an in-memory SQLite store is not supported; give a file path".into(),
            ));
        }
        let store = sqlite::SqliteStore::open(Path::new(path)).await?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres::open_with_hooks(url, postgres::TestHooks::default()).await;
    }
    Err(StoreError::Invalid(format!(
        "unsupported database URL (expected sqlite://PATH or postgres://…): {}",
        redact(url)
    )))
}

/// The default store of a data directory: `sqlite://<data_dir>/picloud.db`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("picloud.db").display())
}

/// A URL fit for a log line: any password is replaced.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_points_into_the_data_dir() {
        assert_eq!(
            sqlite_url(Path::new("/var/lib/picloud")),
            "sqlite:///var/lib/picloud/picloud.db"
        );
        assert_eq!(
            sqlite_url(Path::new("./data/")),
            "sqlite://./data/picloud.db"
        );
    }

    #[test]
    fn passwords_never_reach_a_log_line() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("mysql://x"), "mysql://x");
    }

    #[tokio::test]
    async fn an_unknown_url_scheme_is_invalid() {
        let err = open("mysql://u:pw@h/db").await.err();
        assert!(
            matches!(err, Some(StoreError::Invalid(ref m)) if !m.contains("pw")),
            "{err:?}"
        );
    }
}
