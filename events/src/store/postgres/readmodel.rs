//! Read-model writes on PostgreSQL: a projection's ops and its checkpoint in one
//! transaction. Advancing the checkpoint first locks its row, so two nodes
//! applying the same projection take turns, and the second finds the batch
//! already applied.

use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::error::StoreError;
use crate::readmodel::{self, Doc, EncodedDoc, RowOp};
use crate::store::sql::{self, OpRun};

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
            RowOp::Put(doc) => put_many(&mut tx, projection, &[doc.into()]).await?,
            RowOp::Merge(doc) => {
                let doc = match get_doc(&mut tx, &doc.collection, &doc.key, true).await? {
                    Some(stored) => readmodel::merge(stored, doc),
                    None => doc,
                };
                put_many(&mut tx, projection, &[doc.into()]).await?;
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

/// Upsert documents in one statement, one array per column. The keys must be
/// distinct (`sql::gather_puts` sees to it): an upsert may not touch a row twice.
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
