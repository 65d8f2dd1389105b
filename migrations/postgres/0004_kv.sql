-- Scripts' key-value store (`kv::*`): application data, one row per key of an
-- app. Not event-sourced: script state changes too often to be history, and
-- `kv::incr` must be one atomic read-modify-write. `value` is JSON text (kept
-- as written, unlike jsonb); `updated_at` is microseconds since the Unix epoch,
-- UTC. Keys use the "C" collation (byte order, as on SQLite), so prefix listing
-- is a range scan of the primary key.
CREATE TABLE kv (
    app        TEXT                NOT NULL,
    key        TEXT COLLATE "C"    NOT NULL,
    value      TEXT                NOT NULL,
    updated_at BIGINT              NOT NULL,
    PRIMARY KEY (app, key)
);
