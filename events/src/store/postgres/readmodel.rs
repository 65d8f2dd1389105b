//! Read-model writes on PostgreSQL: a projection's ops and its checkpoint in one
//! transaction. Advancing the checkpoint first locks its row, so two nodes
//! applying the same projection take turns, and the second finds the batch
//! already applied.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::error::StoreError;
use crate::readmodel::{self, Delivery, Doc, EncodedDoc, RowOp};
use crate::store::fold::{self, DocKey};
use crate::store::sql;

pub(super) async fn apply(
    pool: &PgPool,
    projection: &str,
    ops: Vec<RowOp>,
    checkpoint: i64,
) -> Result<(), StoreError> {
    // The stored checkpoint is at least 0, so this could never advance it.
    if checkpoint <= 0 {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    let advanced: Option<i64> = sqlx::query_scalar(sql::ADVANCE_CHECKPOINT)
        .bind(projection)
        .bind(checkpoint)
        .fetch_optional(&mut *tx)
        .await?;
    if advanced.is_none() {
        // Already applied (a re-delivery): change nothing.
        return Ok(());
    }
    let bases = fold::merge_bases(&ops);
    let stored = get_docs(&mut tx, &bases).await?;
    let folded = fold::fold(ops, stored);
    delete_docs(&mut tx, &folded.delete_docs).await?;
    let docs: Vec<EncodedDoc> = folded.put_docs.into_iter().map(EncodedDoc::from).collect();
    put_many(&mut tx, projection, &docs).await?;
    if !folded.delete_deliveries.is_empty() {
        sqlx::query(DELETE_DELIVERIES)
            .bind(&folded.delete_deliveries)
            .execute(&mut *tx)
            .await?;
    }
    put_deliveries(&mut tx, &folded.put_deliveries).await?;
    tx.commit().await?;
    Ok(())
}

/// Upsert documents in one statement, one array per column. The keys must be
/// distinct (`fold::fold` sees to it): an upsert may not touch a row twice.
pub(super) async fn put_many(
    conn: &mut PgConnection,
    projection: &str,
    docs: &[EncodedDoc],
) -> Result<(), StoreError> {
    if docs.is_empty() {
        return Ok(());
    }
    let n = docs.len();
    let mut collection = Vec::with_capacity(n);
    let mut key = Vec::with_capacity(n);
    let mut app = Vec::with_capacity(n);
    let mut sort = Vec::with_capacity(n);
    let mut tag1 = Vec::with_capacity(n);
    let mut tag2 = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    for doc in docs {
        body.push(doc.body.as_str());
        collection.push(doc.collection.as_str());
        key.push(doc.key.as_str());
        app.push(doc.app.as_deref());
        sort.push(doc.sort);
        tag1.push(doc.tag1.as_deref());
        tag2.push(doc.tag2.as_deref());
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO read_models (collection, key, projection, app, sort, tag1, tag2, body) \
         SELECT c, k, $8, a, s, t1, t2, b \
         FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], \
                     $7::TEXT[]) AS docs(c, k, a, s, t1, t2, b) \
         {}",
        sql::PUT_DOC_ON_CONFLICT
    )))
    .bind(collection)
    .bind(key)
    .bind(app)
    .bind(sort)
    .bind(tag1)
    .bind(tag2)
    .bind(body)
    .bind(projection)
    .execute(conn)
    .await?;
    Ok(())
}

/// `for_update`: lock the row for a read-modify-write (a merge).
pub(super) async fn get_doc(
    conn: &mut PgConnection,
    collection: &str,
    key: &str,
    for_update: bool,
) -> Result<Option<Doc>, StoreError> {
    let mut text = sql::get_doc_sql();
    if for_update {
        text.push_str(" FOR UPDATE");
    }
    let row = sqlx::query(AssertSqlSafe(text))
        .bind(collection)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(|r| sql::decode_doc(sql::doc_from_row(&r)?))
        .transpose()
}

pub(super) async fn reset(
    pool: &PgPool,
    projection: &str,
    collections: &[&str],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for collection in collections {
        if *collection == readmodel::DELIVERIES {
            sqlx::query(sql::DELETE_DELIVERIES)
                .execute(&mut *tx)
                .await?;
            continue;
        }
        sqlx::query(sql::DELETE_COLLECTION)
            .bind(*collection)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(sql::DELETE_CHECKPOINT)
        .bind(projection)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The stored documents at `keys`, locked for the merges that start from them.
async fn get_docs(
    conn: &mut PgConnection,
    keys: &[DocKey],
) -> Result<HashMap<DocKey, Doc>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (collections, names) = key_columns(keys);
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM read_models WHERE (collection, key) IN \
         (SELECT * FROM unnest($1::TEXT[], $2::TEXT[])) FOR UPDATE",
        sql::DOC_COLUMNS
    )))
    .bind(collections)
    .bind(names)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let doc = sql::decode_doc(sql::doc_from_row(r)?)?;
            Ok(((doc.collection.clone(), doc.key.clone()), doc))
        })
        .collect()
}

async fn delete_docs(conn: &mut PgConnection, keys: &[DocKey]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let (collections, names) = key_columns(keys);
    sqlx::query(
        "DELETE FROM read_models WHERE (collection, key) IN \
         (SELECT * FROM unnest($1::TEXT[], $2::TEXT[]))",
    )
    .bind(collections)
    .bind(names)
    .execute(conn)
    .await?;
    Ok(())
}

const DELETE_DELIVERIES: &str = "DELETE FROM deliveries WHERE invocation_id = ANY($1)";

/// Upsert outbox rows in one statement, one array per column (ids distinct, as
/// `fold::fold` leaves them). A row's lease is kept only while its node is not
/// `gone` (see `sql::PUT_DELIVERY`).
async fn put_deliveries(conn: &mut PgConnection, rows: &[Delivery]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut app = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut due = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut until = Vec::with_capacity(n);
    for d in rows {
        id.push(d.invocation_id.as_str());
        app.push(d.app.as_str());
        version.push(sql::to_i64(d.stream_version, "stream_version")?);
        attempt.push(i64::from(d.attempt));
        due.push(d.due_at);
        owner.push(d.lease.as_ref().map(|l| l.node.as_str()));
        until.push(d.lease.as_ref().map(|l| l.until));
    }
    sqlx::query(
        "INSERT INTO deliveries \
         (invocation_id, app, stream_version, attempt, due_at, lease_owner, lease_until) \
         SELECT d.id, d.app, d.v, d.att, d.due, n.id, \
             CASE WHEN n.id IS NULL THEN NULL ELSE d.until END \
         FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], \
                     $6::TEXT[], $7::BIGINT[]) AS d(id, app, v, att, due, owner, until) \
         LEFT JOIN nodes n ON n.id = d.owner AND n.state <> 'gone' \
         ON CONFLICT (invocation_id) DO UPDATE SET app = excluded.app, \
         stream_version = excluded.stream_version, attempt = excluded.attempt, \
         due_at = excluded.due_at, lease_owner = excluded.lease_owner, \
         lease_until = excluded.lease_until",
    )
    .bind(id)
    .bind(app)
    .bind(version)
    .bind(attempt)
    .bind(due)
    .bind(owner)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Document addresses as the two arrays `unnest($1::TEXT[], $2::TEXT[])` takes.
fn key_columns(keys: &[DocKey]) -> (Vec<&str>, Vec<&str>) {
    keys.iter().map(|(c, k)| (c.as_str(), k.as_str())).unzip()
}
