-- A transaction's outbox messages are written as one row: a checkout's reserve commands and its
-- OrderCreated event, or a batch's decided orders' events and releases. Such a row has stream
-- 'bundle' and a payload that is a JSON array of {stream, key, payload}; the relay produces each
-- message and deletes the row once all are acknowledged. Rows of one message keep their own
-- stream, as before.
ALTER TABLE outbox DROP CONSTRAINT outbox_stream_known,
    ADD CONSTRAINT outbox_stream_known
        CHECK (stream IN ('inventory', 'order-events', 'dead-letters', 'bundle'));
