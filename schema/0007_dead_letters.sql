-- Messages the pipeline cannot read or route, parked instead of stopping a partition or the relay.
--
-- A command on the inventory topic that does not decode, or comes from a newer message version
-- than the worker knows (a rolling deploy), and an outbox row that cannot be routed, are written
-- here (and announced on the dead-letter topic through the outbox) in the same transaction that
-- moves past them. When the message names an order line, that line is decided SHORT with the
-- reason, so the order ends REJECTED instead of staying PENDING.
CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT dead_letters_pkey PRIMARY KEY,
    source      TEXT NOT NULL CONSTRAINT dead_letters_source_known CHECK (source IN ('inventory-topic', 'outbox')),
    -- Where it was: `<partition>/<offset>` on the inventory topic, or the outbox row's id.
    position    TEXT NOT NULL,
    message_key TEXT,
    payload     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    -- The order it names, when that could be read.
    order_id    UUID,
    parked_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A redelivered message is parked once.
    CONSTRAINT dead_letters_source_position_key UNIQUE (source, position)
);

ALTER TABLE outbox DROP CONSTRAINT outbox_stream_known,
    ADD CONSTRAINT outbox_stream_known CHECK (stream IN ('inventory', 'order-events', 'dead-letters'));
