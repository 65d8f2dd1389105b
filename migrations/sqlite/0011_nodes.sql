-- The cluster's node registry. One row per node id (kept in the node's data
-- directory, so a restarted node finds its row again). A node writes its own row
-- when it starts, on every heartbeat (PostgreSQL only: a SQLite store is one
-- node) and when it drains and leaves; any node marks `gone` a node whose
-- heartbeat stopped, and frees the outbox leases it held. Not an event stream:
-- heartbeats are not history, and a row a node overwrites every few seconds would
-- grow the log without end.
CREATE TABLE nodes (
    id           TEXT   PRIMARY KEY,
    address      TEXT   NOT NULL,   -- where the node serves HTTP (host:port)
    version      TEXT   NOT NULL,   -- the binary's version
    started_at   BIGINT NOT NULL,   -- microseconds since the Unix epoch, UTC
    last_seen_at BIGINT NOT NULL,   -- the last heartbeat, microseconds
    state        TEXT   NOT NULL,   -- up | draining | gone
    slots        BIGINT NOT NULL,   -- executor slots
    in_flight    BIGINT NOT NULL    -- runs in flight at the last heartbeat
);

-- Freeing a gone node's leases finds its rows by owner.
CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
