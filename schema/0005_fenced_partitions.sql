-- Fenced partition ownership.
--
-- A worker that takes a partition over claims it: the partition's epoch goes up by one and the
-- claimant is recorded as its owner. Every batch of that partition starts by moving the position
-- forward only where the epoch is still the one its lane claimed, so a stale owner (paused,
-- partitioned from PostgreSQL, slow) whose successor has claimed the partition commits nothing:
-- its batch finds no row to move and rolls back. A claim and a batch of the same partition
-- serialise on this row, and the worker's sessions end idle transactions after a bound, so a
-- successor never waits long on a stale owner's open transaction.
ALTER TABLE consumer_positions
    ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN owner UUID;

-- A relay takes outbox rows for a short claim instead of holding their row locks while it waits
-- for the broker: a relay that is paused or cut off mid-round leaves its rows to the others once
-- the claim runs out (they may then be sent twice; consumers dedupe).
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity';
