-- Admin read models: documents written by projections, each projection's
-- checkpoint (stored in the same transaction as its writes), and snapshots of
-- in-memory models.
CREATE TABLE read_models (
    collection TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    projection TEXT,                -- who wrote it last
    app        TEXT,
    sort       INTEGER NOT NULL,
    tag1       TEXT,
    tag2       TEXT,
    body       TEXT    NOT NULL,    -- JSON
    PRIMARY KEY (collection, key)
);

-- The DocQuery shapes: a collection newest first, optionally per app and by tag.
CREATE INDEX read_models_sort ON read_models (collection, sort DESC, key DESC);
CREATE INDEX read_models_app ON read_models (collection, app, sort DESC, key DESC);
CREATE INDEX read_models_tag1 ON read_models (collection, tag1, sort DESC, key DESC);
CREATE INDEX read_models_tag2 ON read_models (collection, tag2, sort DESC, key DESC);

CREATE TABLE checkpoints (
    projection TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL
);

CREATE TABLE snapshots (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    bytes      BLOB    NOT NULL,
    saved_at   INTEGER NOT NULL     -- microseconds since the Unix epoch, UTC
);
