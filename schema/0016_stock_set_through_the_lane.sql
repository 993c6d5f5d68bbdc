-- A seller's absolute stock (`PATCH /products/{id}` with `available_quantity`) is a command on
-- the product's lane, kind 'set'. Before, the API wrote the stock beside the lane (guarded only by
-- the product's version), and a release still on its way added its units on top of the seller's
-- count.
--
-- Records reach a lane out of queue order (several relays claim outbox rows, the producer retries
-- with several requests in flight), so every command carries its queue position: the id of the
-- outbox row it was written in. The ledger records each command's position (`queued`; NULL for
-- rows from before, from the API's synchronous strategies, and for commands relayed without one)
-- and what it did to the stock (`stock_delta`; NULL for those same rows). A product keeps the
-- position of the last set applied (`stock_set_at_outbox_id`, NULL before its first set):
--   * a set at position S makes the stock its count plus the stock deltas of the commands queued
--     after S that the lane applied before it, and moves the product's position to S; a set
--     queued before the product's position changes nothing (a newer count came first);
--   * a release or restock queued before the product's position changes no stock (the seller's
--     count includes it: `applied`, `stock_delta` 0); a reserve always takes its units.
-- A set's row is keyed by the set's id in order_id (as a restock's is) and holds the count in
-- quantity, 0 included.
--
-- Safe on a live table: the new columns are nullable without a default (a change of the catalog
-- only), and the checks only widen the ones they replace (no row is a 'set' yet), so they are
-- added NOT VALID: PostgreSQL holds every new or changed row to them without scanning the table
-- under its lock. The index is partial on the positions, NULL in every existing row.
-- lock_timeout keeps this from waiting behind a long transaction with every lane's insert queued
-- behind it; it fails instead, and the service's next start applies it.

SET LOCAL lock_timeout = '5s';

ALTER TABLE products
    ADD COLUMN stock_set_at_outbox_id BIGINT;

ALTER TABLE inventory_ledger
    ADD COLUMN queued BIGINT,
    ADD COLUMN stock_delta INTEGER,
    DROP CONSTRAINT inventory_ledger_kind_known,
    ADD CONSTRAINT inventory_ledger_kind_known
        CHECK (kind IN ('reserve', 'release', 'restock', 'set')) NOT VALID,
    DROP CONSTRAINT inventory_ledger_quantity_positive,
    ADD CONSTRAINT inventory_ledger_quantity_positive
        CHECK (quantity > 0 OR (kind = 'set' AND quantity = 0)) NOT VALID;

-- A set's sum of what was queued after it and applied before it.
CREATE INDEX inventory_ledger_queued_idx ON inventory_ledger (product_id, queued)
    WHERE queued IS NOT NULL;
