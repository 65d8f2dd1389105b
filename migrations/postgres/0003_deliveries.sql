-- The outbox: one row per asynchronous invocation that still has to run,
-- maintained by the `outbox` projection from the invocation streams
-- (InvocationRequested, InvocationAttemptFailed, InvocationRedriven add or move a
-- row; InvocationCompleted and InvocationDead remove it). Dispatchers claim due
-- rows by leasing them; the lease columns are the only thing written outside the
-- projection, and a projection write clears them.
CREATE TABLE deliveries (
    invocation_id  TEXT    PRIMARY KEY,
    app            TEXT    NOT NULL,
    stream_version BIGINT NOT NULL,   -- version of invocation-<id> the row reflects
    attempt        BIGINT NOT NULL,   -- attempts already made
    due_at         BIGINT NOT NULL,   -- microseconds since the Unix epoch, UTC
    lease_owner    TEXT,             -- node id holding the lease
    lease_until    BIGINT             -- microseconds; claimable again after this
);

-- Claimable rows: due, and not leased or the lease expired.
CREATE INDEX deliveries_due ON deliveries (due_at);
