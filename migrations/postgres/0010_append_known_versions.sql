-- `picloud_append` with one more argument first, p_known: per stream, the
-- version the caller knows the stream to be at (0: no event yet), or NULL.
-- Every other argument and the answer are as migration 0005 says.
--
-- A stream with a known version skips its lock and its version probe: its
-- events take the versions after the known one, and the unique (stream,
-- version) index is the check. Versions are dense and the log is append-only,
-- so a known version can only be behind the stream, never ahead of it, as
-- long as the caller knows it from an append of its own or claims an empty
-- stream (0). Behind, the insert meets an existing (stream, version) and the
-- call fails with a unique violation, writing nothing; the caller then sends
-- it again without the known version, and the lock and the probe give the
-- answer (a conflict, or the next versions). A known version is used only
-- where it satisfies the stream's expectation (any version, or exactly that
-- one); otherwise the stream goes the locked way.
--
-- The node's link (events/src/store/postgres/link.rs) remembers the version
-- each of its appends left a stream at, and forgets them all whenever its
-- connection is replaced. On the bench VM the probes and locks were a fifth of
-- the append backend's time with eight writers (BENCHMARKS.md).
--
-- This file also folds migration 0009's two insert blocks (one stream, several)
-- into one, and the 10-argument form becomes a call of this one, for nodes that
-- still run the build before (they call it until they restart).
CREATE FUNCTION picloud_append(
    p_known       BIGINT[],
    p_lock_keys   INT[],
    p_streams     TEXT[],
    p_expected    BIGINT[],
    p_counts      INT[],
    p_event_type  TEXT[],
    p_data        TEXT[],
    p_metadata    TEXT[],
    p_app         TEXT[],
    p_actor       TEXT[],
    p_recorded_at BIGINT[]
) RETURNS TABLE (stream_index INT, stream_version BIGINT, last_position BIGINT)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_one       BOOLEAN := cardinality(p_streams) = 1;
    v_current   BIGINT[];
    v_version   BIGINT;
    v_streams   TEXT[] := '{}';
    v_versions  BIGINT[] := '{}';
    v_positions BIGINT[];
    v_event     INT := 0;
BEGIN
    IF v_one THEN
        -- One stream, every append but group commit's shared calls and the
        -- recorder's batches: a lock by a plain call and one index probe
        -- (`ORDER BY … LIMIT 1`; `MAX` plans a sub-plan around the same probe),
        -- or neither with a usable known version.
        IF p_known[1] IS NOT NULL
           AND (p_expected[1] IS NULL OR p_expected[1] = p_known[1]) THEN
            v_version := NULLIF(p_known[1], 0);
        ELSE
            -- 1885954924 = 0x7069636c = 'picl'.
            PERFORM pg_advisory_xact_lock(1885954924, p_lock_keys[1]);
            SELECT e.version INTO v_version FROM events e WHERE e.stream = p_streams[1]
                ORDER BY e.version DESC LIMIT 1;
        END IF;
        v_current := ARRAY[v_version];
        IF p_counts[1] <> cardinality(p_event_type) THEN
            RAISE EXCEPTION 'picloud_append: the counts add up to % events, % were given',
                p_counts[1], cardinality(p_event_type);
        END IF;
    ELSE
        -- Appenders to the same stream take turns until commit, so the versions
        -- read next are final: a race is a clean conflict, not a unique-index
        -- violation. Ascending keys (the caller gives only the keys of the
        -- streams without a usable known version): two multi-stream appends
        -- cannot deadlock.
        IF cardinality(p_lock_keys) > 0 THEN
            PERFORM pg_advisory_xact_lock(1885954924, k) FROM unnest(p_lock_keys) AS k;
        END IF;
        -- Each stream's last version: its known one, or one index probe (a
        -- GROUP BY would scan every version of the stream).
        v_current := ARRAY(
            SELECT CASE
                       WHEN s.known IS NOT NULL AND (s.expected IS NULL OR s.expected = s.known)
                       THEN NULLIF(s.known, 0)
                       ELSE (SELECT MAX(e.version) FROM events e WHERE e.stream = s.name)
                   END
            FROM unnest(p_streams, p_known, p_expected) WITH ORDINALITY
                 AS s(name, known, expected, n)
            ORDER BY s.n);
        FOR i IN 1 .. cardinality(p_streams) LOOP
            FOR k IN 1 .. p_counts[i] LOOP
                v_event := v_event + 1;
                v_streams[v_event] := p_streams[i];
                v_versions[v_event] := COALESCE(v_current[i], 0) + k;
            END LOOP;
        END LOOP;
        IF v_event <> cardinality(p_event_type) THEN
            RAISE EXCEPTION 'picloud_append: the counts add up to % events, % were given',
                v_event, cardinality(p_event_type);
        END IF;
    END IF;
    FOR i IN 1 .. cardinality(p_streams) LOOP
        IF p_expected[i] <> COALESCE(v_current[i], 0) THEN
            stream_index := i;
            stream_version := v_current[i];
            last_position := NULL;
            RETURN NEXT;
            RETURN;
        END IF;
    END LOOP;

    -- The insert of picloud_append_events (migration 0001, whose comment says why
    -- the lock), inlined: no xid is taken before the lock (advisory locks and
    -- reads take none), and the lock is held only for the insert.
    PERFORM pg_advisory_lock(31641073133516132);
    BEGIN
        IF v_one AND p_counts[1] = 1 THEN
            -- One event, the usual case: a single-row insert is cheaper than unnest.
            INSERT INTO events (stream, version, event_type, data, metadata, app, actor,
                                recorded_at, xid)
            VALUES (p_streams[1], COALESCE(v_version, 0) + 1, p_event_type[1], p_data[1],
                    p_metadata[1], p_app[1], p_actor[1], p_recorded_at[1],
                    pg_current_xact_id())
            RETURNING ARRAY[position] INTO v_positions;
        ELSIF v_one THEN
            -- One stream: its versions computed inside the insert.
            WITH inserted AS (
                INSERT INTO events (stream, version, event_type, data, metadata, app,
                                    actor, recorded_at, xid)
                SELECT p_streams[1], COALESCE(v_version, 0) + n, t, d, m, a, c, r,
                       pg_current_xact_id()
                FROM unnest(p_event_type, p_data, p_metadata, p_app, p_actor,
                            p_recorded_at)
                     WITH ORDINALITY AS batch(t, d, m, a, c, r, n)
                ORDER BY n
                RETURNING position
            )
            SELECT ARRAY[max(position)] INTO v_positions FROM inserted;
        ELSE
            WITH inserted AS (
                INSERT INTO events (stream, version, event_type, data, metadata, app,
                                    actor, recorded_at, xid)
                SELECT s, v, t, d, m, a, c, r, pg_current_xact_id()
                FROM unnest(v_streams, v_versions, p_event_type, p_data, p_metadata,
                            p_app, p_actor, p_recorded_at)
                     WITH ORDINALITY AS batch(s, v, t, d, m, a, c, r, n)
                ORDER BY n
                RETURNING position
            )
            SELECT array_agg(position ORDER BY position) INTO v_positions FROM inserted;
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(31641073133516132);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(31641073133516132);
    -- Delivered at commit, to every node's link (store/postgres/link.rs).
    PERFORM pg_notify('picloud_events', '');

    IF v_one THEN
        stream_index := 1;
        stream_version := v_version;
        last_position := v_positions[1];
        RETURN NEXT;
        RETURN;
    END IF;
    v_event := 0;
    FOR i IN 1 .. cardinality(p_streams) LOOP
        v_event := v_event + p_counts[i];
        stream_index := i;
        stream_version := v_current[i];
        last_position := v_positions[v_event];
        RETURN NEXT;
    END LOOP;
END
$$;

-- The form without known versions, for a node of the build before.
CREATE OR REPLACE FUNCTION picloud_append(
    p_lock_keys   INT[],
    p_streams     TEXT[],
    p_expected    BIGINT[],
    p_counts      INT[],
    p_event_type  TEXT[],
    p_data        TEXT[],
    p_metadata    TEXT[],
    p_app         TEXT[],
    p_actor       TEXT[],
    p_recorded_at BIGINT[]
) RETURNS TABLE (stream_index INT, stream_version BIGINT, last_position BIGINT)
LANGUAGE sql
AS $$
    SELECT * FROM picloud_append(NULL::BIGINT[], p_lock_keys, p_streams, p_expected,
                                 p_counts, p_event_type, p_data, p_metadata, p_app,
                                 p_actor, p_recorded_at)
$$;
