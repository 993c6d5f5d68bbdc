-- Idempotency keys of checkouts, claimed before anything is answered.
--
-- The first request with a key claims it (with the id its order will have) before it can answer
-- "no order" (sold out, empty cart, cart changed). Such a refusal is recorded here and answered
-- again to every retry with the key; a retry that meets a claim still being decided is told so
-- (409 checkout_in_progress) instead of "no order". So a key never gets "no order" first and an
-- order later. A claim left by a request that died undecided can be taken over once it is older
-- than the API's request timeout allows any request to live.
CREATE TABLE checkout_keys (
    user_id         BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- The order the claiming request writes, if it writes one.
    order_id        UUID NOT NULL,
    claimed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The refusal that ended the claiming request without an order: status and JSON body.
    refusal_status  SMALLINT,
    refusal         TEXT,
    CONSTRAINT checkout_keys_pkey PRIMARY KEY (user_id, idempotency_key)
);
