-- Which checkout workers are alive, and where each partition's processing stands.
--
-- Workers of a group heartbeat their row; partition p belongs to the live member of rank
-- p mod (live members), ranks in member-id order. A partition's position (the next offset to
-- process) is written in the same transaction as the batch it follows, so effects and position
-- never disagree. Two workers briefly owning one partition while membership changes only
-- produce duplicates, which inventory_ledger turns into no-ops.

CREATE TABLE consumer_members (
    consumer_group TEXT NOT NULL,
    member         UUID NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT consumer_members_pkey PRIMARY KEY (consumer_group, member)
);

CREATE TABLE consumer_positions (
    consumer_group TEXT NOT NULL,
    topic          TEXT NOT NULL,
    partition      INTEGER NOT NULL,
    next_offset    BIGINT NOT NULL CONSTRAINT consumer_positions_offset_nonnegative CHECK (next_offset >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT consumer_positions_pkey PRIMARY KEY (consumer_group, topic, partition)
);
