//! Read-model writes on SQLite: a projection's ops and its checkpoint in one
//! write transaction.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::batch;
use crate::error::StoreError;
use crate::readmodel::{self, Doc, EncodedDoc, RowOp};
use crate::store::fold;
use crate::store::sql;

pub(super) async fn apply(
    writer: &SqlitePool,
    projection: &str,
    ops: Vec<RowOp>,
    checkpoint: i64,
) -> Result<(), StoreError> {
    // The stored checkpoint is at least 0, so this could never advance it.
    if checkpoint <= 0 {
        return Ok(());
    }
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let advanced: Option<i64> = sqlx::query_scalar(sql::ADVANCE_CHECKPOINT)
        .bind(projection)
        .bind(checkpoint)
        .fetch_optional(&mut *tx)
        .await?;
    if advanced.is_none() {
        // Already applied (a re-delivery): change nothing.
        return Ok(());
    }
    let mut stored = HashMap::new();
    for (collection, key) in fold::merge_bases(&ops) {
        if let Some(doc) = get_doc(&mut tx, &collection, &key).await? {
            stored.insert((collection, key), doc);
        }
    }
    let folded = fold::fold(ops, stored);
    for (collection, key) in &folded.delete_docs {
        sqlx::query(sql::DELETE_DOC)
            .bind(collection)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    let docs: Vec<EncodedDoc> = folded.put_docs.into_iter().map(EncodedDoc::from).collect();
    put_many(&mut tx, projection, &docs).await?;
    for invocation_id in &folded.delete_deliveries {
        sqlx::query(sql::DELETE_DELIVERY)
            .bind(invocation_id)
            .execute(&mut *tx)
            .await?;
    }
    for d in &folded.put_deliveries {
        sqlx::query(sql::PUT_DELIVERY)
            .bind(&d.invocation_id)
            .bind(&d.app)
            .bind(sql::to_i64(d.stream_version, "stream_version")?)
            .bind(i64::from(d.attempt))
            .bind(d.due_at)
            .bind(d.lease.as_ref().map(|l| l.node.as_str()))
            .bind(d.lease.as_ref().map(|l| l.until))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Upsert documents, many per statement (see `batch.rs`).
pub(super) async fn put_many(
    conn: &mut SqliteConnection,
    projection: &str,
    docs: &[EncodedDoc],
) -> Result<(), StoreError> {
    let mut rest = docs;
    for size in batch::chunk_sizes(docs.len(), batch::MAX_ROWS) {
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let text = format!(
            "INSERT INTO read_models (collection, key, projection, app, sort, tag1, tag2, body) \
             VALUES {} {}",
            batch::values(size, 8),
            sql::PUT_DOC_ON_CONFLICT
        );
        let mut query = sqlx::query(AssertSqlSafe(text));
        for doc in chunk {
            query = query
                .bind(&doc.collection)
                .bind(&doc.key)
                .bind(projection)
                .bind(&doc.app)
                .bind(doc.sort)
                .bind(&doc.tag1)
                .bind(&doc.tag2)
                .bind(&doc.body);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn get_doc(
    conn: &mut SqliteConnection,
    collection: &str,
    key: &str,
) -> Result<Option<Doc>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(sql::get_doc_sql()))
        .bind(collection)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(|r| sql::decode_doc(sql::doc_from_row(&r)?))
        .transpose()
}

pub(super) async fn reset(
    writer: &SqlitePool,
    projection: &str,
    collections: &[&str],
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
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
