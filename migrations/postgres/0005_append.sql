-- One append, one call: `picloud_append` takes the per-stream locks, checks every
-- stream's expected version, inserts the events and signals the listeners. Sent
-- on its own, it runs in its statement's implicit transaction, so an append is
-- one round trip instead of six (BEGIN, a lock and a version SELECT per stream,
-- the insert, pg_notify, COMMIT).
--
-- Arguments, one element per stream, in the order given:
--   p_lock_keys   the second keys of the streams' transaction advisory locks (the
--                 first is 'picl'), distinct and ascending, computed by the caller
--                 (events/src/store/postgres/append.rs) so that every node agrees;
--   p_streams     the stream names (distinct);
--   p_expected    NULL: any version; 0: the stream must not exist yet;
--                 n: its last event must have version n;
--   p_counts      how many events go to it;
-- then one element per event, each stream's events one after the other in that
-- order: p_event_type … p_recorded_at.
--
-- Returns one row per stream, in order: its index (from 1), its version before
-- the append (NULL if it had none) and the position of its last event. If a
-- stream's expectation fails, it returns only that stream's row (the first that
-- failed), with last_position NULL, and writes nothing.
--
-- Generic plans: the queries take the arrays as parameters, and the planner
-- would otherwise plan them afresh on every call (a custom plan for one stream
-- always looks cheaper than the generic one), which costs more than running them.
CREATE FUNCTION picloud_append(
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
    v_current   BIGINT[];
    v_version   BIGINT;
    v_streams   TEXT[] := '{}';
    v_versions  BIGINT[] := '{}';
    v_positions BIGINT[];
    v_event     INT := 0;
BEGIN
    -- Appenders to the same stream take turns until commit, so the versions read
    -- next are final: a race is a clean conflict, not a unique-index violation.
    -- Ascending keys: two multi-stream appends cannot deadlock.
    -- 1885954924 = 0x7069636c = 'picl'.
    PERFORM pg_advisory_xact_lock(1885954924, k) FROM unnest(p_lock_keys) AS k;

    -- Each stream's last version: one index probe each (a GROUP BY would scan
    -- every version of the stream). One stream, the usual case, in the
    -- cheapest statement.
    IF cardinality(p_streams) = 1 THEN
        SELECT MAX(e.version) INTO v_version FROM events e WHERE e.stream = p_streams[1];
        v_current := ARRAY[v_version];
    ELSE
        v_current := ARRAY(
            SELECT (SELECT MAX(e.version) FROM events e WHERE e.stream = s.name)
            FROM unnest(p_streams) WITH ORDINALITY AS s(name, n)
            ORDER BY s.n);
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

    -- The insert of picloud_append_events (migration 0001, whose comment says why
    -- the lock), inlined: no xid is taken before the lock (advisory locks and
    -- reads take none), and the lock is held only for the insert.
    PERFORM pg_advisory_lock(31641073133516132);
    BEGIN
        IF v_event = 1 THEN
            -- One event, the usual case: a single-row insert is cheaper than unnest.
            INSERT INTO events (stream, version, event_type, data, metadata, app, actor,
                                recorded_at, xid)
            VALUES (v_streams[1], v_versions[1], p_event_type[1], p_data[1], p_metadata[1],
                    p_app[1], p_actor[1], p_recorded_at[1], pg_current_xact_id())
            RETURNING ARRAY[position] INTO v_positions;
        ELSE
            WITH inserted AS (
                INSERT INTO events (stream, version, event_type, data, metadata, app, actor,
                                    recorded_at, xid)
                SELECT s, v, t, d, m, a, c, r, pg_current_xact_id()
                FROM unnest(v_streams, v_versions, p_event_type, p_data, p_metadata, p_app,
                            p_actor, p_recorded_at)
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
    -- Delivered at commit, to every node's listener (store/postgres/listener.rs).
    PERFORM pg_notify('picloud_events', '');

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
