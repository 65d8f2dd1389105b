-- The event log: the single source of truth. Append-only.
--
-- PostgreSQL hands out identity values before commit, so positions do not
-- arrive in commit order. Each row therefore carries the id of the transaction
-- that wrote it (`xid`), and readers only return rows whose transaction is older
-- than every transaction still running (see picloud_append_events and
-- events/src/store/postgres.rs).
CREATE TABLE events (
    position    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream      TEXT    NOT NULL,
    version     BIGINT  NOT NULL CHECK (version >= 1),
    event_type  TEXT    NOT NULL,
    data        TEXT    NOT NULL,   -- JSON, kept as written
    metadata    TEXT    NOT NULL,   -- JSON (event::Metadata)
    app         TEXT,               -- metadata.app, indexed for browsing
    actor       TEXT,               -- metadata.actor, indexed for browsing
    recorded_at BIGINT  NOT NULL,   -- microseconds since the Unix epoch, UTC
    xid         xid8    NOT NULL,   -- pg_current_xact_id() of the writer
    UNIQUE (stream, version)
);

CREATE INDEX events_app ON events (app, position) WHERE app IS NOT NULL;
CREATE INDEX events_actor ON events (actor, position) WHERE actor IS NOT NULL;
CREATE INDEX events_type ON events (event_type, position);
CREATE INDEX events_recorded_at ON events (recorded_at);

-- Inserts a batch of events (one transaction's worth, in order) and returns
-- their positions.
--
-- Why a lock: a reader returns a row only when its xid is below every xid
-- still running in the reader's snapshot, i.e. when every transaction that
-- started writing before it has finished. That is only safe if a smaller
-- position always means a smaller xid. Taking the xid and the positions are two
-- steps, and two appenders can interleave them (A: xid 100, B: xid 101,
-- B: position 10, A: position 11; A commits while B is still open: row 11 has
-- xid 100, below the running 101, and would be read before row 10 exists). The
-- session advisory lock makes "take xid, take positions" atomic among
-- appenders. It is held only for this INSERT, not until commit, so appenders
-- still commit concurrently; the exception handler frees it on any error, so a
-- failed insert never leaves it held. Callers must not write anything earlier
-- in the same transaction (that would assign the xid before the lock).
CREATE FUNCTION picloud_append_events(
    p_stream      TEXT[],
    p_version     BIGINT[],
    p_event_type  TEXT[],
    p_data        TEXT[],
    p_metadata    TEXT[],
    p_app         TEXT[],
    p_actor       TEXT[],
    p_recorded_at BIGINT[]
) RETURNS SETOF BIGINT
LANGUAGE plpgsql AS $$
BEGIN
    -- 0x7069636c6f7564 = 'picloud'
    PERFORM pg_advisory_lock(31641073133516132);
    BEGIN
        RETURN QUERY
        WITH inserted AS (
            INSERT INTO events (stream, version, event_type, data, metadata, app, actor,
                                recorded_at, xid)
            SELECT s, v, t, d, m, a, c, r, pg_current_xact_id()
            FROM unnest(p_stream, p_version, p_event_type, p_data, p_metadata, p_app,
                        p_actor, p_recorded_at)
                 WITH ORDINALITY AS batch(s, v, t, d, m, a, c, r, n)
            ORDER BY n
            RETURNING position
        )
        SELECT position FROM inserted ORDER BY position;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(31641073133516132);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(31641073133516132);
END
$$;
