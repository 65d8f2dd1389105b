//! The `kv` table on PostgreSQL (queries in `store/kv_sql.rs`). A write takes a
//! transaction-scoped advisory lock for its app first, so the key-count check and
//! `kv_incr`'s read-modify-write are atomic across every node (per app; other
//! apps' writes do not wait).

use sqlx::PgPool;

kv_backend! {
    pool: PgPool,
    begin: |pool, app| {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('picloud-kv:' || $1, 0))")
            .bind(app)
            .execute(&mut *tx)
            .await?;
        tx
    },
    get: "SELECT value, updated_at FROM kv WHERE app = $1 AND key = $2",
    value: "SELECT value FROM kv WHERE app = $1 AND key = $2",
    count: "SELECT count(*) FROM kv WHERE app = $1",
    upsert: "INSERT INTO kv (app, key, value, updated_at) VALUES ($1, $2, $3, $4) \
        ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    delete: "DELETE FROM kv WHERE app = $1 AND key = $2",
    clear: "DELETE FROM kv WHERE app = $1",
    list: "SELECT key, value, updated_at FROM kv \
        WHERE app = $1 AND key >= $2 AND starts_with(key, $2) \
          AND ($3::text IS NULL OR key > $3) \
        ORDER BY key LIMIT $4",
    scan: "SELECT app, key, value, updated_at FROM kv WHERE (app, key) > ($1, $2) \
        ORDER BY app, key LIMIT $3",
}
