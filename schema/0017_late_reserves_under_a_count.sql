-- A reserve queued before a seller's count (a set) can reach the lane after it: it then takes its
-- units from the count. If its order was cancelled before the count, its release, queued before
-- the count too, was absorbed (the count was taken to hold its units), and the units were lost.
-- Each reserve now records the product's set position (`stock_set_at_outbox_id`) it was applied
-- under; a release is absorbed only when its reserve was applied before the product's current set.
-- NULL in rows from before, and in reserves applied before the product's first set.
--
-- A nullable column without a default changes the catalog only: no rewrite, no scan.

SET LOCAL lock_timeout = '5s';

ALTER TABLE inventory_ledger
    ADD COLUMN reserved_under BIGINT;
