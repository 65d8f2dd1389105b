-- The event log: the single source of truth. Append-only.
-- Positions are assigned in commit order (one writer at a time), so a reader
-- asking for `position > checkpoint` never skips a late commit.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    event_type  TEXT    NOT NULL,
    data        TEXT    NOT NULL,   -- JSON
    metadata    TEXT    NOT NULL,   -- JSON (event::Metadata)
    app         TEXT,               -- metadata.app, indexed for browsing
    actor       TEXT,               -- metadata.actor, indexed for browsing
    recorded_at INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    UNIQUE (stream, version)
);

CREATE INDEX events_app ON events (app, position) WHERE app IS NOT NULL;
CREATE INDEX events_actor ON events (actor, position) WHERE actor IS NOT NULL;
CREATE INDEX events_type ON events (event_type, position);
CREATE INDEX events_recorded_at ON events (recorded_at);
