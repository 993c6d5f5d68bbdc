-- Cancelling orders and restocking products, both through the products' lanes.
--
-- A cancel moves a PENDING or CONFIRMED order to CANCELLED and puts a release command for every
-- line in the outbox. The lane of each line's product gives back what the line holds: a release
-- that finds the line's reserve applied returns its units; one that finds it short returns
-- nothing; one that arrives before the reserve is recorded unapplied, and the reserve that
-- follows takes nothing (its line becomes CANCELLED). The ledger's key makes each happen once.
--
-- A restock is a command of its own kind on the product's lane; its ledger row is keyed by the
-- restock's id in order_id (the ledger has no foreign key to orders).

ALTER TABLE orders
    DROP CONSTRAINT orders_status_known,
    ADD CONSTRAINT orders_status_known CHECK (status IN ('PENDING', 'CONFIRMED', 'REJECTED', 'CANCELLED')),
    ADD COLUMN cancelled_at TIMESTAMPTZ,
    ADD CONSTRAINT orders_cancelled_at CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL));

ALTER TABLE order_items
    DROP CONSTRAINT order_items_status_known,
    ADD CONSTRAINT order_items_status_known
        CHECK (status IN ('PENDING', 'RESERVED', 'SHORT', 'RELEASED', 'CANCELLED'));

ALTER TABLE inventory_ledger
    DROP CONSTRAINT inventory_ledger_kind_known,
    ADD CONSTRAINT inventory_ledger_kind_known CHECK (kind IN ('reserve', 'release', 'restock'));

-- A seller's restocks of one product, newest first.
CREATE INDEX inventory_ledger_restocks_idx ON inventory_ledger (product_id, applied_at DESC)
    WHERE kind = 'restock';

-- The buyer's mail about a cancelled order.
ALTER TABLE notifications
    DROP CONSTRAINT notifications_kind_known,
    ADD CONSTRAINT notifications_kind_known
        CHECK (kind IN ('sign_in_code', 'order_confirmed', 'order_rejected', 'order_cancelled'));
