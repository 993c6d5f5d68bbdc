-- The notifier's durable queue: one row per message a shopper is to receive (a sign-in code,
-- an order's confirmation or rejection). `event_id` dedupes: an order event delivered twice by
-- Kafka, or a sign-in request written twice, is one row. A row is `pending` until sent, then
-- `sent`; one that failed `attempts` times is `parked` for an operator. While a notifier holds a
-- row, `next_attempt_at` is its claim's expiry: a notifier that dies mid-send leaves the row due
-- again when the claim lapses.
CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT notifications_pkey PRIMARY KEY,
    event_id        TEXT NOT NULL CONSTRAINT notifications_event_id_key UNIQUE,
    kind            TEXT NOT NULL
                    CONSTRAINT notifications_kind_known
                    CHECK (kind IN ('sign_in_code', 'order_confirmed', 'order_rejected')),
    channel         TEXT NOT NULL CONSTRAINT notifications_channel_known CHECK (channel IN ('email', 'sms')),
    user_id         BIGINT NOT NULL CONSTRAINT notifications_user_id_fkey REFERENCES users (id),
    order_id        UUID,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CONSTRAINT notifications_status_known CHECK (status IN ('pending', 'sent', 'parked')),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);

CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';

-- How far each notifier has read the order events: the next offset per partition. Moved in the
-- transaction that writes the rows the messages became, so a restart reads on from there.
CREATE TABLE notifier_positions (
    topic       TEXT NOT NULL,
    partition   INT NOT NULL,
    next_offset BIGINT NOT NULL,
    CONSTRAINT notifier_positions_pkey PRIMARY KEY (topic, partition)
);
