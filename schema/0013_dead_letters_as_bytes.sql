-- Dead letters keep the bytes they arrived with.
--
-- A record's payload and key were stored as text, so a record holding a NUL byte could not be
-- parked at all (PostgreSQL's text refuses it) and its batch was retried for ever. They are now
-- bytea, exactly as read, with the topic, partition and offset they were read at. The notifier
-- parks the order events it cannot use here too ('order-events-topic'). A record is parked once
-- per source, topic and position: a replaced topic's records, at positions an earlier one had
-- used, are records of their own.
ALTER TABLE dead_letters
    ALTER COLUMN payload TYPE BYTEA USING convert_to(payload, 'UTF8'),
    ALTER COLUMN message_key TYPE BYTEA USING convert_to(message_key, 'UTF8'),
    ADD COLUMN topic TEXT,
    ADD COLUMN "partition" INTEGER,
    ADD COLUMN "offset" BIGINT,
    DROP CONSTRAINT dead_letters_source_known,
    DROP CONSTRAINT dead_letters_source_position_key,
    ADD CONSTRAINT dead_letters_source_topic_position_key UNIQUE NULLS NOT DISTINCT (source, topic, position),
    ADD CONSTRAINT dead_letters_source_known
        CHECK (source IN ('inventory-topic', 'order-events-topic', 'outbox'));
