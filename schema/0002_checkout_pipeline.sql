-- The queue-serialized checkout pipeline.
--
-- Checkout writes an order (PENDING), its lines and outbox rows in one transaction. A relay moves
-- outbox rows to Kafka; the worker owning a product's partition applies its reserve/release
-- commands, recording each in inventory_ledger in the same transaction as the stock change (so a
-- redelivered command is recognised and skipped). The order row counts its undecided lines; the
-- worker that decides the last line finalises the order exactly once.

ALTER TABLE orders
    ADD COLUMN pending_lines INTEGER NOT NULL DEFAULT 0
        CONSTRAINT orders_pending_lines_nonnegative CHECK (pending_lines >= 0),
    ADD COLUMN short_lines INTEGER NOT NULL DEFAULT 0
        CONSTRAINT orders_short_lines_nonnegative CHECK (short_lines >= 0),
    ADD COLUMN completed_at TIMESTAMPTZ,
    ADD CONSTRAINT orders_terminal_complete CHECK ((status = 'PENDING') = (completed_at IS NULL));

-- Orders still in flight, oldest first: for alerts on PENDING orders older than the bound.
CREATE INDEX orders_pending_created_idx ON orders (created_at) WHERE status = 'PENDING';

ALTER TABLE order_items
    ADD COLUMN status TEXT NOT NULL DEFAULT 'PENDING'
        CONSTRAINT order_items_status_known CHECK (status IN ('PENDING', 'RESERVED', 'SHORT', 'RELEASED')),
    ADD COLUMN reason TEXT,
    -- For a SHORT line: the stock the worker saw when it decided.
    ADD COLUMN available_at_decision INTEGER;

CREATE TABLE outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT outbox_pkey PRIMARY KEY,
    -- Logical stream, mapped to a topic name by the relay's configuration.
    stream     TEXT NOT NULL CONSTRAINT outbox_stream_known CHECK (stream IN ('inventory', 'order-events')),
    -- Product id for inventory commands, order id for order events.
    message_key TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE inventory_ledger (
    order_id   UUID NOT NULL,
    product_id BIGINT NOT NULL,
    kind       TEXT NOT NULL CONSTRAINT inventory_ledger_kind_known CHECK (kind IN ('reserve', 'release')),
    quantity   INTEGER NOT NULL CONSTRAINT inventory_ledger_quantity_positive CHECK (quantity > 0),
    -- False for a reserve that found too little stock (nothing was taken).
    applied    BOOLEAN NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT inventory_ledger_pkey PRIMARY KEY (order_id, product_id, kind)
);
