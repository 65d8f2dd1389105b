//! What both backends share: checking an append before it touches the database,
//! turning events into column values and rows back into events, and the SQL of
//! the filtered queries (both backends take `$N` parameters).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::event::{EncodedEvent, EventFilter, ExpectedVersion, RecordedEvent, StreamWrite};
use crate::readmodel::{Doc, DocQuery, EncodedDoc};
use crate::store::Selection;
use crate::upcast::upcast;

/// The columns of `events` a reader selects, in the order `EventRow` expects.
pub(crate) const EVENT_COLUMNS: &str =
    "position, stream, version, event_type, data, metadata, recorded_at";

/// The columns of `read_models` a reader selects, in the order `DocRow` expects.
pub(crate) const DOC_COLUMNS: &str = "collection, key, app, sort, tag1, tag2, body";

/// Refuse a batch that cannot be appended, before opening a transaction.
pub(crate) fn validate(writes: &[StreamWrite<EncodedEvent>]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Err(StoreError::Invalid(
            "append_many needs at least one stream".into(),
        ));
    }
    let mut seen = HashSet::new();
    for w in writes {
        if w.stream.is_empty() {
            return Err(StoreError::Invalid("a stream name cannot be empty".into()));
        }
        if w.events.is_empty() {
            return Err(StoreError::Invalid(format!(
                "no events to append to stream {}",
                w.stream
            )));
        }
        if !seen.insert(w.stream.as_str()) {
            return Err(StoreError::Invalid(format!(
                "stream {} appears twice in one append",
                w.stream
            )));
        }
        if let Some(e) = w.events.iter().find(|e| e.event_type.is_empty()) {
            return Err(StoreError::Invalid(format!(
                "an event type cannot be empty (stream {}, data {})",
                w.stream, e.data
            )));
        }
    }
    Ok(())
}

/// Refuse an import that could not be a log: positions must rise, each stream's
/// versions must run 1, 2, 3 … in log order, names and types must be present.
pub(crate) fn validate_import(events: &[RecordedEvent]) -> Result<(), StoreError> {
    let mut last_position = 0;
    let mut versions: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (n, e) in events.iter().enumerate() {
        let at = || format!("event {} (position {})", n + 1, e.position);
        if e.position <= last_position {
            return Err(StoreError::Invalid(format!(
                "{}: positions must rise (previous {last_position})",
                at()
            )));
        }
        last_position = e.position;
        if e.stream.is_empty() || e.event_type.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{}: stream and type cannot be empty",
                at()
            )));
        }
        let expected = versions.get(e.stream.as_str()).copied().unwrap_or(0) + 1;
        if e.version != expected {
            return Err(StoreError::Invalid(format!(
                "{}: stream {} jumps to version {} (expected {expected})",
                at(),
                e.stream,
                e.version
            )));
        }
        versions.insert(&e.stream, expected);
    }
    Ok(())
}

/// Whether a store has anything an import would collide with.
pub(crate) const STORE_IS_EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM events) \
     AND NOT EXISTS (SELECT 1 FROM checkpoints) \
     AND NOT EXISTS (SELECT 1 FROM read_models) \
     AND NOT EXISTS (SELECT 1 FROM snapshots) \
     AND NOT EXISTS (SELECT 1 FROM kv)";

pub(crate) fn not_empty() -> StoreError {
    StoreError::Invalid(
        "the store is not empty: import only into a new store (no events, read models, snapshots or kv data)"
            .into(),
    )
}

/// One event as column values, ready to insert.
pub(crate) struct EventColumns {
    pub stream: String,
    pub version: i64,
    pub event_type: String,
    pub data: String,
    pub metadata: String,
    pub app: Option<String>,
    pub actor: Option<String>,
    pub recorded_at: i64,
}

impl EventColumns {
    pub(crate) fn new(
        stream: &str,
        version: u64,
        event: &EncodedEvent,
        recorded_at: i64,
    ) -> Result<Self, StoreError> {
        Ok(EventColumns {
            stream: stream.to_owned(),
            version: to_i64(version, "version")?,
            event_type: event.event_type.clone(),
            data: event.data.clone(),
            metadata: event.metadata.clone(),
            app: event.app.clone(),
            actor: event.actor.clone(),
            recorded_at,
        })
    }

    /// An event of an export, with the time it was first recorded.
    pub(crate) fn recorded(event: &RecordedEvent) -> Result<Self, StoreError> {
        let encoded = EncodedEvent::new(
            event.event_type.clone(),
            crate::event::json_text(&event.data)?,
            &event.metadata,
        )?;
        Self::new(
            &event.stream,
            event.version,
            &encoded,
            event.recorded_at.timestamp_micros(),
        )
    }
}

/// The append time, at the precision the store keeps (microseconds), so what is
/// read back equals what was written.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// A row of `EVENT_COLUMNS`, before decoding.
pub(crate) struct EventRow {
    pub position: i64,
    pub stream: String,
    pub version: i64,
    pub event_type: String,
    pub data: String,
    pub metadata: String,
    pub recorded_at: i64,
}

impl EventRow {
    /// Decode, then bring the event to its type's current schema.
    pub(crate) fn decode(self) -> Result<RecordedEvent, StoreError> {
        let at = |what: &str| {
            format!(
                "{what} of event {} ({} v{})",
                self.position, self.stream, self.version
            )
        };
        let data = serde_json::from_str(&self.data)
            .map_err(|e| StoreError::corrupt(format!("{}: {e}", at("data"))))?;
        let metadata = serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::corrupt(format!("{}: {e}", at("metadata"))))?;
        let version = u64::try_from(self.version)
            .map_err(|_| StoreError::corrupt(format!("negative {}", at("version"))))?;
        let recorded_at = from_micros(self.recorded_at)
            .ok_or_else(|| StoreError::corrupt(format!("bad {}", at("recorded_at"))))?;
        Ok(upcast(RecordedEvent {
            position: self.position,
            stream: self.stream,
            version,
            event_type: self.event_type,
            data,
            metadata,
            recorded_at,
        }))
    }
}

impl EventRow {
    /// Read `EVENT_COLUMNS` from a row of either backend.
    pub(crate) fn from_row<'r, R: sqlx::Row>(row: &'r R) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(EventRow {
            position: row.try_get(0)?,
            stream: row.try_get(1)?,
            version: row.try_get(2)?,
            event_type: row.try_get(3)?,
            data: row.try_get(4)?,
            metadata: row.try_get(5)?,
            recorded_at: row.try_get(6)?,
        })
    }
}

pub(crate) fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// A row of `DOC_COLUMNS` from either backend, its body still text.
pub(crate) fn doc_from_row<'r, R: sqlx::Row>(row: &'r R) -> Result<EncodedDoc, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(EncodedDoc {
        collection: row.try_get(0)?,
        key: row.try_get(1)?,
        app: row.try_get(2)?,
        sort: row.try_get(3)?,
        tag1: row.try_get(4)?,
        tag2: row.try_get(5)?,
        body: row.try_get(6)?,
    })
}

/// A stored document with its body parsed.
pub(crate) fn decode_doc(doc: EncodedDoc) -> Result<Doc, StoreError> {
    let body = serde_json::from_str(&doc.body).map_err(|e| {
        StoreError::corrupt(format!(
            "body of document {}/{}: {e}",
            doc.collection, doc.key
        ))
    })?;
    Ok(doc.with_body(body))
}

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is out of range")))
}

/// An expectation as the append statements take it: NULL for any version, 0
/// for no stream yet, else the stream's last version.
pub(crate) fn expected_param(expected: ExpectedVersion) -> Result<Option<i64>, StoreError> {
    Ok(match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(v) => Some(to_i64(v, "expected version")?),
    })
}

/// A `LIMIT` value: SQL wants a signed integer.
/// The `selection`'s events in the position range `(after, reached]`,
/// ascending. Streams are matched with `substr`, so the test does not depend on
/// a collation.
pub(crate) fn selected_rows_query(after: i64, reached: i64, selection: &Selection<'_>) -> Built {
    let mut q = Built::new(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE TRUE"));
    q.and("position", ">", Param::Int(after));
    q.and("position", "<=", Param::Int(reached));
    if let Some(prefixes) = selection.prefixes {
        let mut tests = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            q.params.push(Param::Text((*prefix).to_owned()));
            tests.push(format!(
                "substr(stream, 1, {}) = ${}",
                prefix.chars().count(),
                q.params.len()
            ));
        }
        let test = if tests.is_empty() {
            "FALSE".to_owned()
        } else {
            tests.join(" OR ")
        };
        q.sql.push_str(&format!(" AND ({test})"));
    }
    if let Some(event_type) = selection.except_type {
        q.params.push(Param::Text(event_type.to_owned()));
        q.sql
            .push_str(&format!(" AND event_type <> ${}", q.params.len()));
    }
    q.sql.push_str(" ORDER BY position");
    q
}

pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A value bound to a `$N` of a built query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A query built from the filters that are set, so each shape can use its index
/// (a generic `($2 IS NULL OR app = $2)` plan cannot).
pub(crate) struct Built {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Built {
    fn new(select: &str) -> Self {
        Built {
            sql: select.to_owned(),
            params: Vec::new(),
        }
    }

    /// Append ` AND <column> <op> $N` with `value` as `$N`.
    fn and(&mut self, column: &str, op: &str, value: Param) {
        self.params.push(value);
        self.sql
            .push_str(&format!(" AND {column} {op} ${}", self.params.len()));
    }

    fn tail(&mut self, order: &str, limit: i64) {
        self.params.push(Param::Int(limit));
        self.sql
            .push_str(&format!(" ORDER BY {order} LIMIT ${}", self.params.len()));
    }
}

pub(crate) fn browse_query(filter: &EventFilter, after: i64, limit: usize) -> Built {
    let mut q = Built::new(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE TRUE"));
    q.and("position", ">", Param::Int(after));
    let text = |v: &Option<String>| v.clone().map(Param::Text);
    if let Some(v) = text(&filter.stream) {
        q.and("stream", "=", v);
    }
    if let Some(v) = text(&filter.app) {
        q.and("app", "=", v);
    }
    if let Some(v) = text(&filter.actor) {
        q.and("actor", "=", v);
    }
    if let Some(v) = text(&filter.event_type) {
        q.and("event_type", "=", v);
    }
    if let Some(since) = filter.since {
        q.and("recorded_at", ">=", Param::Int(since.timestamp_micros()));
    }
    if let Some(until) = filter.until {
        q.and("recorded_at", "<", Param::Int(until.timestamp_micros()));
    }
    q.tail("position", self::limit(limit));
    q
}

/// The collection `read_models_sort` leaves out (migration 0007): its documents
/// are listed per app only.
pub(crate) const UNSORTED_COLLECTION: &str = crate::domain::InvocationsProjection::COLLECTION;
/// Written into every other collection's query, so the planner may use that
/// partial index (the migration's condition, word for word).
const NOT_UNSORTED: &str = " AND collection <> 'invocations'";

pub(crate) fn doc_query(query: &DocQuery) -> Built {
    let mut q = Built::new(&format!("SELECT {DOC_COLUMNS} FROM read_models WHERE TRUE"));
    q.and("collection", "=", Param::Text(query.collection.clone()));
    if query.collection != UNSORTED_COLLECTION {
        q.sql.push_str(NOT_UNSORTED);
    }
    if let Some(app) = &query.app {
        q.and("app", "=", Param::Text(app.clone()));
    }
    if let Some(tag) = &query.tag1 {
        q.and("tag1", "=", Param::Text(tag.clone()));
    }
    if let Some(tag) = &query.tag2 {
        q.and("tag2", "=", Param::Text(tag.clone()));
    }
    if let Some(before) = query.before_sort {
        q.and("sort", "<", Param::Int(before));
    }
    q.tail("sort DESC, key DESC", limit(query.limit));
    q
}

// The read-model statements are the same text on both backends.

/// Advance a checkpoint; returns a row only if it moved forward, which makes a
/// re-delivered batch a no-op and locks the row against a concurrent applier.
pub(crate) const ADVANCE_CHECKPOINT: &str = "INSERT INTO checkpoints (projection, position) \
     VALUES ($1, $2) \
     ON CONFLICT (projection) DO UPDATE SET position = excluded.position \
     WHERE checkpoints.position < excluded.position \
     RETURNING position";
pub(crate) const SELECT_CHECKPOINT: &str = "SELECT position FROM checkpoints WHERE projection = $1";
pub(crate) const SELECT_CHECKPOINTS: &str =
    "SELECT projection, position FROM checkpoints ORDER BY projection";
pub(crate) const DELETE_CHECKPOINT: &str = "DELETE FROM checkpoints WHERE projection = $1";
/// What follows the rows of a document upsert (`INSERT INTO read_models
/// (collection, key, projection, app, sort, tag1, tag2, body) …`).
pub(crate) const PUT_DOC_ON_CONFLICT: &str = "ON CONFLICT (collection, key) DO UPDATE SET \
     projection = excluded.projection, app = excluded.app, sort = excluded.sort, \
     tag1 = excluded.tag1, tag2 = excluded.tag2, body = excluded.body";
pub(crate) const DELETE_DOC: &str = "DELETE FROM read_models WHERE collection = $1 AND key = $2";
pub(crate) const DELETE_COLLECTION: &str = "DELETE FROM read_models WHERE collection = $1";

/// Insert or replace one outbox row (SQLite). `$6`/`$7` are the lease it is
/// written with (both NULL for none); a lease of a node that is `gone` (or
/// unknown) is left out, so the row is claimable at once.
pub(crate) const PUT_DELIVERY: &str = "INSERT INTO deliveries \
     (invocation_id, app, stream_version, attempt, due_at, lease_owner, lease_until) \
     VALUES ($1, $2, $3, $4, $5, \
         (SELECT id FROM nodes WHERE id = $6 AND state <> 'gone'), \
         CASE WHEN EXISTS (SELECT 1 FROM nodes WHERE id = $6 AND state <> 'gone') \
             THEN $7 END) \
     ON CONFLICT (invocation_id) DO UPDATE SET app = excluded.app, \
     stream_version = excluded.stream_version, attempt = excluded.attempt, \
     due_at = excluded.due_at, lease_owner = excluded.lease_owner, \
     lease_until = excluded.lease_until";
pub(crate) const DELETE_DELIVERY: &str = "DELETE FROM deliveries WHERE invocation_id = $1";
pub(crate) const DELETE_DELIVERIES: &str = "DELETE FROM deliveries";

/// The earliest instant a delivery becomes claimable: its due time, or the end
/// of the lease that holds it.
/// The earliest moment a row becomes claimable: its due time, or the end of a
/// lease that outlasts it. Split in two so each half is the first entry of an
/// index (`deliveries_due`, `deliveries_lease`) rather than a scan of every row.
pub(crate) const NEXT_DELIVERY_AT: &str = "SELECT MIN(t) FROM ( \
     SELECT t FROM (SELECT due_at AS t FROM deliveries \
         WHERE lease_until IS NULL OR lease_until <= due_at ORDER BY due_at LIMIT 1) AS free \
     UNION ALL \
     SELECT t FROM (SELECT lease_until AS t FROM deliveries \
         WHERE lease_until IS NOT NULL AND lease_until > due_at \
         ORDER BY lease_until LIMIT 1) AS leased) AS next";

pub(crate) const RELEASE_LEASES: &str = "UPDATE deliveries SET lease_owner = NULL, \
     lease_until = NULL WHERE lease_owner = $1";

pub(crate) const POSTPONE_DELIVERY: &str = "UPDATE deliveries SET lease_until = $3 \
     WHERE invocation_id = $1 AND lease_owner = $2";

/// Claim up to `$4` due, unleased rows for node `$1` until `$3`, at time `$2`.
/// `{lock}` is `FOR UPDATE SKIP LOCKED` on PostgreSQL (concurrent claimers skip
/// each other's rows), empty on SQLite (one writer at a time).
pub(crate) fn claim_deliveries_sql(lock: &str) -> String {
    format!(
        "UPDATE deliveries SET lease_owner = $1, lease_until = $3 \
         WHERE invocation_id IN ( \
             SELECT invocation_id FROM deliveries \
             WHERE due_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) \
             ORDER BY due_at LIMIT $4 {lock}) \
         RETURNING invocation_id, app, stream_version, attempt, due_at"
    )
}

/// A claimed row, from `claim_deliveries_sql`'s `RETURNING`.
pub(crate) fn delivery_from_row<'r, R: sqlx::Row>(
    row: &'r R,
) -> Result<crate::readmodel::Delivery, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let version: i64 = row.try_get(2)?;
    let attempt: i64 = row.try_get(3)?;
    Ok(crate::readmodel::Delivery {
        invocation_id: row.try_get(0)?,
        app: row.try_get(1)?,
        stream_version: u64::try_from(version)
            .map_err(|_| StoreError::corrupt("negative delivery stream_version"))?,
        attempt: u32::try_from(attempt)
            .map_err(|_| StoreError::corrupt("delivery attempt out of range"))?,
        due_at: row.try_get(4)?,
        lease: None,
    })
}
// The cluster's node registry (migration 0011, `crate::cluster`).

pub(crate) const PUT_NODE: &str = "INSERT INTO nodes \
     (id, address, version, started_at, last_seen_at, state, slots, in_flight) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (id) DO UPDATE SET address = excluded.address, \
     version = excluded.version, started_at = excluded.started_at, \
     last_seen_at = excluded.last_seen_at, state = excluded.state, \
     slots = excluded.slots, in_flight = excluded.in_flight";
pub(crate) const LIST_NODES: &str = "SELECT id, address, version, started_at, \
     last_seen_at, state, slots, in_flight FROM nodes ORDER BY started_at, id";
/// Mark `gone` the nodes whose last heartbeat is older than `$1`.
pub(crate) const REAP_NODES: &str = "UPDATE nodes SET state = 'gone' \
     WHERE state <> 'gone' AND last_seen_at < $1 RETURNING id";
/// Free the leases of every gone node (after `REAP_NODES`, in its transaction).
pub(crate) const RELEASE_GONE_LEASES: &str = "UPDATE deliveries SET lease_owner = NULL, \
     lease_until = NULL WHERE lease_owner IN (SELECT id FROM nodes WHERE state = 'gone')";

/// `PUT_NODE`'s parameters.
pub(crate) fn bind_node<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    node: &'q crate::cluster::NodeRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(node.id.as_str())
        .bind(node.address.as_str())
        .bind(node.version.as_str())
        .bind(node.started_at)
        .bind(node.last_seen_at)
        .bind(node.state.as_str())
        .bind(node.slots)
        .bind(node.in_flight)
}

/// A registry row, from `LIST_NODES`.
pub(crate) fn node_from_row<'r, R: sqlx::Row>(
    row: &'r R,
) -> Result<crate::cluster::NodeRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get(5)?;
    Ok(crate::cluster::NodeRow {
        id: row.try_get(0)?,
        address: row.try_get(1)?,
        version: row.try_get(2)?,
        started_at: row.try_get(3)?,
        last_seen_at: row.try_get(4)?,
        state: crate::cluster::NodeState::parse(&state),
        slots: row.try_get(6)?,
        in_flight: row.try_get(7)?,
    })
}

pub(crate) const SAVE_SNAPSHOT: &str = "INSERT INTO snapshots (name, position, bytes, saved_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET \
     position = excluded.position, bytes = excluded.bytes, saved_at = excluded.saved_at";
pub(crate) const LOAD_SNAPSHOT: &str = "SELECT position, bytes FROM snapshots WHERE name = $1";

pub(crate) fn get_doc_sql() -> String {
    format!("SELECT {DOC_COLUMNS} FROM read_models WHERE collection = $1 AND key = $2")
}

// The log statements shared by both backends.

pub(crate) const STREAM_VERSION: &str = "SELECT MAX(version) FROM events WHERE stream = $1";
pub(crate) const HEAD_POSITION: &str = "SELECT COALESCE(MAX(position), 0) FROM events";

pub(crate) fn read_stream_sql() -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream = $1 AND version >= $2 \
         ORDER BY version LIMIT $3"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExpectedVersion, Metadata};

    #[test]
    fn browse_numbers_only_the_filters_that_are_set() {
        let filter = EventFilter {
            app: Some("a".into()),
            event_type: Some("T".into()),
            ..EventFilter::default()
        };
        let q = browse_query(&filter, 7, 10);
        assert!(q.sql.ends_with(
            "WHERE TRUE AND position > $1 AND app = $2 AND event_type = $3 ORDER BY position LIMIT $4"
        ));
        assert_eq!(
            q.params,
            vec![
                Param::Int(7),
                Param::Text("a".into()),
                Param::Text("T".into()),
                Param::Int(10)
            ]
        );
    }

    #[test]
    fn doc_queries_name_the_partial_index_condition_except_for_its_collection() {
        assert_eq!(
            NOT_UNSORTED,
            format!(" AND collection <> '{UNSORTED_COLLECTION}'")
        );
        for migrations in [crate::migrate::SQLITE, crate::migrate::POSTGRES] {
            let index = migrations
                .iter()
                .rev()
                .find(|m| m.sql.contains("CREATE INDEX read_models_sort"))
                .expect("a migration creates read_models_sort");
            assert!(
                index
                    .sql
                    .contains(&format!("WHERE collection <> '{UNSORTED_COLLECTION}'")),
                "{}: {}",
                index.name,
                index.sql
            );
        }
        let query = |collection: &str| DocQuery {
            collection: collection.into(),
            app: None,
            tag1: None,
            tag2: None,
            before_sort: None,
            limit: 10,
        };
        assert!(
            doc_query(&query("apps"))
                .sql
                .contains("collection = $1 AND collection <> 'invocations' ORDER BY")
        );
        assert!(!doc_query(&query(UNSORTED_COLLECTION)).sql.contains("<>"));
    }

    #[test]
    fn an_empty_or_doubled_batch_is_invalid() {
        assert!(validate(&[]).is_err());
        let write = |events: Vec<EncodedEvent>| StreamWrite {
            stream: "s".into(),
            expected: ExpectedVersion::Any,
            events,
        };
        assert!(validate(&[write(vec![])]).is_err());
        let one = |event_type: &str| {
            vec![EncodedEvent::new(event_type, "{}".into(), &Metadata::default()).expect("encode")]
        };
        assert!(validate(&[write(one("T"))]).is_ok());
        assert!(validate(&[write(one("T")), write(one("T"))]).is_err());
        assert!(validate(&[write(one(""))]).is_err(), "a type is needed");
    }
}
