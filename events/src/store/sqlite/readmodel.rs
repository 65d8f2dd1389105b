//! Read-model writes on SQLite: a projection's ops and its checkpoint in one
//! write transaction.

use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::batch;
use crate::error::StoreError;
use crate::readmodel::{self, Doc, EncodedDoc, RowOp};
use crate::store::sql::{self, OpRun};

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
    for run in sql::gather_puts(ops) {
        let op = match run {
            OpRun::Puts(docs) => {
                let docs: Vec<EncodedDoc> = docs.into_iter().map(EncodedDoc::from).collect();
                put_many(&mut tx, projection, &docs).await?;
                continue;
            }
            OpRun::One(op) => op,
        };
        match op {
            RowOp::Put(doc) => put(&mut tx, projection, doc).await?,
            RowOp::Merge(doc) => {
                let doc = match get_doc(&mut tx, &doc.collection, &doc.key).await? {
                    Some(stored) => readmodel::merge(stored, doc),
                    None => doc,
                };
                put(&mut tx, projection, doc).await?;
            }
            RowOp::Delete { collection, key } => {
                sqlx::query(sql::DELETE_DOC)
                    .bind(collection)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            RowOp::PutDelivery(d) => {
                sqlx::query(sql::PUT_DELIVERY)
                    .bind(&d.invocation_id)
                    .bind(&d.app)
                    .bind(sql::to_i64(d.stream_version, "stream_version")?)
                    .bind(i64::from(d.attempt))
                    .bind(d.due_at)
                    .execute(&mut *tx)
                    .await?;
            }
            RowOp::DeleteDelivery { invocation_id } => {
                sqlx::query(sql::DELETE_DELIVERY)
                    .bind(invocation_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
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

async fn put(conn: &mut SqliteConnection, projection: &str, doc: Doc) -> Result<(), StoreError> {
    put_many(conn, projection, &[EncodedDoc::from(doc)]).await
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
