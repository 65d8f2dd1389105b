-- Scripts' key-value store (`kv::*`): application data, one row per key of an
-- app. Not event-sourced: script state changes too often to be history, and
-- `kv::incr` must be one atomic read-modify-write. `value` is JSON text;
-- `updated_at` is microseconds since the Unix epoch, UTC. Keys compare byte by
-- byte (BINARY), so prefix listing is a range scan of the primary key.
CREATE TABLE kv (
    app        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, key)
) WITHOUT ROWID;
