//! Documents that admin read-model projections write, and the queries the admin
//! API lists them with.
//!
//! A document is a JSON body plus a few indexed columns (`app`, `sort`, `tag1`,
//! `tag2`) so lists paginate and filter in SQL rather than in memory.

use serde::{Deserialize, Serialize};

/// A document: its indexed columns and its body, a JSON object (a `Value`, or
/// its text in an `EncodedDoc`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Doc<B = serde_json::Value> {
    pub collection: String,
    pub key: String,
    pub app: Option<String>,
    /// Lists are newest first by this (e.g. a start time in microseconds).
    pub sort: i64,
    pub tag1: Option<String>,
    pub tag2: Option<String>,
    pub body: B,
}

/// A document as the stores write and read it: the body as JSON text (a writer
/// that has the JSON at hand need not build a `Value` for it).
pub type EncodedDoc = Doc<String>;

impl<B> Doc<B> {
    /// The same document with another body.
    pub fn with_body<C>(self, body: C) -> Doc<C> {
        Doc {
            collection: self.collection,
            key: self.key,
            app: self.app,
            sort: self.sort,
            tag1: self.tag1,
            tag2: self.tag2,
            body,
        }
    }
}

impl From<Doc> for EncodedDoc {
    fn from(doc: Doc) -> Self {
        let body = doc.body.to_string();
        doc.with_body(body)
    }
}

/// One write a projection decides for one event.
#[derive(Clone, Debug, PartialEq)]
pub enum RowOp {
    /// Insert or replace.
    Put(Doc),
    /// Insert, or shallow-merge the body's top-level keys into the stored object and
    /// replace `app`/`sort`/`tag1`/`tag2` with the new values when they are
    /// `Some`/non-zero.
    Merge(Doc),
    Delete {
        collection: String,
        key: String,
    },
    /// Insert or replace an outbox row, with the row's own lease (none: any lease
    /// on it is cleared).
    PutDelivery(Delivery),
    /// Remove an outbox row, leased or not.
    DeleteDelivery {
        invocation_id: String,
    },
}

/// The collection name a projection lists to have `reset` clear the outbox rows.
pub const DELIVERIES: &str = "deliveries";

/// An asynchronous invocation that still has to run (a row of the outbox).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub invocation_id: String,
    pub app: String,
    /// The version of `invocation-<id>` this row reflects: a dispatcher appends the
    /// attempt's outcome expecting exactly this version.
    pub stream_version: u64,
    /// Attempts already made.
    pub attempt: u32,
    /// When it may run, microseconds since the Unix epoch (UTC).
    pub due_at: i64,
    /// The lease the row is written with (`PutDelivery`): the node that accepted
    /// the invocation runs it at once and holds the row meanwhile. A row is
    /// written unleased when that node is `gone` by then (it died or left before
    /// the row was projected), so it is claimable at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<DeliveryLease>,
}

/// A node's hold on an outbox row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLease {
    pub node: String,
    /// Microseconds since the Unix epoch (UTC).
    pub until: i64,
}

/// A page of one collection, newest first (`ORDER BY sort DESC, key DESC`).
/// `before_sort` continues after the last `sort` of the previous page.
#[derive(Clone, Debug, Default)]
pub struct DocQuery {
    pub collection: String,
    pub app: Option<String>,
    pub tag1: Option<String>,
    pub tag2: Option<String>,
    pub before_sort: Option<i64>,
    pub limit: usize,
}

/// The document a `Merge` of `update` into `stored` leaves behind. Both backends
/// merge with this one function, inside the write transaction, so they agree.
pub fn merge(stored: Doc, update: Doc) -> Doc {
    let body = match (stored.body, update.body) {
        (serde_json::Value::Object(mut old), serde_json::Value::Object(new)) => {
            old.extend(new);
            serde_json::Value::Object(old)
        }
        // Nothing to merge into (or nothing to merge): the new body wins.
        (_, new) => new,
    };
    Doc {
        collection: stored.collection,
        key: stored.key,
        app: update.app.or(stored.app),
        sort: if update.sort != 0 {
            update.sort
        } else {
            stored.sort
        },
        tag1: update.tag1.or(stored.tag1),
        tag2: update.tag2.or(stored.tag2),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(app: Option<&str>, sort: i64, tag1: Option<&str>, body: serde_json::Value) -> Doc {
        Doc {
            collection: "c".into(),
            key: "k".into(),
            app: app.map(Into::into),
            sort,
            tag1: tag1.map(Into::into),
            tag2: None,
            body,
        }
    }

    #[test]
    fn merge_overwrites_top_level_keys_and_keeps_the_rest() {
        let stored = doc(Some("a"), 5, Some("queued"), json!({"x": 1, "y": {"z": 1}}));
        let update = doc(None, 0, Some("done"), json!({"y": {"w": 2}, "n": null}));
        let merged = merge(stored, update);
        assert_eq!(merged.body, json!({"x": 1, "y": {"w": 2}, "n": null}));
        assert_eq!(merged.app.as_deref(), Some("a"));
        assert_eq!(merged.sort, 5);
        assert_eq!(merged.tag1.as_deref(), Some("done"));
    }

    #[test]
    fn merge_into_a_non_object_replaces_the_body() {
        let merged = merge(
            doc(None, 1, None, json!([1])),
            doc(None, 2, None, json!({"a": 1})),
        );
        assert_eq!(merged.body, json!({"a": 1}));
        assert_eq!(merged.sort, 2);
    }
}
