-- Flash-sale drops (issue 24): a product's scheduled start, and how many units one shopper may
-- hold of it.
--
-- A checkout with a line whose product's sale_starts_at is still ahead of PostgreSQL's now() is
-- refused by the statement that would accept it (409 not_on_sale_yet): one clock for every API
-- replica. NULL is on sale.
--
-- max_per_shopper bounds the units one shopper holds of the product across their orders. The
-- product's lane counts them in shopper_units, in the batch transaction that reserves them (the
-- API's synchronous strategies in the order's own transaction), always under the product row's
-- lock. A reserve applied while the product has a limit is recorded `counted` in the ledger, and
-- so is the release that takes its units off the count: a redelivered command is a duplicate in
-- the ledger and changes the count once. NULL is no limit.
ALTER TABLE products
    ADD COLUMN sale_starts_at TIMESTAMPTZ,
    ADD COLUMN max_per_shopper INTEGER
        CONSTRAINT products_max_per_shopper_positive CHECK (max_per_shopper > 0);

-- No foreign keys: their checks would take KEY SHARE locks on the product row the writer holds
-- for update (see 0004), and products are never deleted.
CREATE TABLE shopper_units (
    product_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    units      INTEGER NOT NULL CONSTRAINT shopper_units_nonnegative CHECK (units >= 0),
    CONSTRAINT shopper_units_pkey PRIMARY KEY (product_id, user_id)
);

ALTER TABLE inventory_ledger
    ADD COLUMN counted BOOLEAN NOT NULL DEFAULT false,
    -- Only a change of stock is counted (a reserve that took units, the release giving them back).
    ADD CONSTRAINT inventory_ledger_counted_applied CHECK (applied OR NOT counted);

-- Why a SHORT line's reserve was refused, as a code (its `reason` stays the text for people).
-- Not required of SHORT lines by a constraint: a worker from before this migration, still
-- running during a rolling deploy, decides lines without it.
ALTER TABLE order_items
    ADD COLUMN reason_code TEXT
        CONSTRAINT order_items_reason_code_known
        CHECK (reason_code IN ('insufficient_stock', 'limit_exceeded', 'unprocessable'));

-- Lines decided SHORT before this migration: too little stock, or a parked reservation.
UPDATE order_items
SET reason_code = CASE WHEN reason LIKE 'insufficient stock:%' THEN 'insufficient_stock'
                       ELSE 'unprocessable' END
WHERE status = 'SHORT';
