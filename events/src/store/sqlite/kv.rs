//! The `kv` table on SQLite (queries in `store/kv_sql.rs`). Writes go through the
//! single writer connection under `BEGIN IMMEDIATE`, so a read-modify-write
//! (`kv_incr`, the key-count check) is atomic without further locking.

use sqlx::SqlitePool;

kv_backend! {
    pool: SqlitePool,
    begin: |writer, app| {
        let _ = app;
        writer.begin_with("BEGIN IMMEDIATE").await?
    },
    get: "SELECT value, updated_at FROM kv WHERE app = ?1 AND key = ?2",
    value: "SELECT value FROM kv WHERE app = ?1 AND key = ?2",
    count: "SELECT count(*) FROM kv WHERE app = ?1",
    upsert: "INSERT INTO kv (app, key, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
        ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    delete: "DELETE FROM kv WHERE app = ?1 AND key = ?2",
    clear: "DELETE FROM kv WHERE app = ?1",
    list: "SELECT key, value, updated_at FROM kv \
        WHERE app = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2 \
          AND (?3 IS NULL OR key > ?3) \
        ORDER BY key LIMIT ?4",
    scan: "SELECT app, key, value, updated_at FROM kv WHERE (app, key) > (?1, ?2) \
        ORDER BY app, key LIMIT ?3",
}
