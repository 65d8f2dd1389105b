-- When the outbox has something to run next: the earliest due time of a row that is
-- not leased (or whose lease ended before it was due), and the earliest end of a
-- lease that outlasts its row's due time. `deliveries_due` answers the first; this
-- index, of the leased rows only (a few), answers the second. A dispatcher asks
-- before each claim, and a scan of every row made draining a long outbox quadratic.
CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE lease_until IS NOT NULL;
