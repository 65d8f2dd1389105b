//! Read-model writes on PostgreSQL: a projection's ops and its checkpoint in one
//! transaction. Advancing the checkpoint first locks its row, so two nodes
//! applying the same projection take turns, and the second finds the batch
//! already applied.

use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::error::StoreError;
use crate::readmodel::{self, Doc, RowOp};
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
    for op in ops {
        match op {
            RowOp::Put(doc) => put(&mut tx, projection, &doc).await?,
            RowOp::Merge(doc) => {
                let doc = match get_doc(&mut tx, &doc.collection, &doc.key, true).await? {
                    Some(stored) => readmodel::merge(stored, doc),
                    None => doc,
                };
                put(&mut tx, projection, &doc).await?;
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

async fn put(conn: &mut PgConnection, projection: &str, doc: &Doc) -> Result<(), StoreError> {
    sqlx::query(sql::PUT_DOC)
        .bind(&doc.collection)
        .bind(&doc.key)
        .bind(projection)
        .bind(&doc.app)
        .bind(doc.sort)
        .bind(&doc.tag1)
        .bind(&doc.tag2)
        .bind(doc.body.to_string())
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
    row.map(|r| sql::DocRow::from_row(&r)?.decode()).transpose()
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
