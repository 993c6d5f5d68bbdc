//! How far the notifier has read the order events: the next offset of each partition, in
//! `notifier_positions` (schema 0009), moved in the transaction that queues what the events
//! became ([`crate::queue::ingest`]), so a restart reads on from there.
//!
//! Not the checkout worker's position store (`checkout_worker::membership::Position`, table
//! `consumer_positions`), on purpose. A worker lane owns its partition alone: its position is
//! per consumer group, created by a claim that raises the partition's epoch, and a batch commits
//! only while that epoch is the newest (a fenced owner commits nothing), because its effects
//! (stock taken, orders decided) must happen once and in order. Notifiers own nothing: every
//! notifier reads every partition, what it writes is keyed by the event (a row queued twice is
//! one), so a position is only moved forward (`GREATEST`), by whichever notifier got there, with
//! no group, claim or epoch. One interface would have to be the worker's fencing or the lack of
//! it. The idling differs as well: a lane pauses single partitions (`checkout_worker::idle`), the
//! notifier stops fetching all of them at once (`crate::ingest::run`).

use sqlx::{PgConnection, PgPool};

/// Each partition's next offset to read, as last committed for `topic`.
pub async fn read(pool: &PgPool, topic: &str) -> sqlx::Result<Vec<(i32, i64)>> {
    sqlx::query_as("SELECT partition, next_offset FROM notifier_positions WHERE topic = $1")
        .bind(topic)
        .fetch_all(pool)
        .await
}

/// Moves `topic`'s positions to `next` (partition, next offset) within the caller's
/// transaction; a position only moves forward, so notifiers reading the same log agree.
pub async fn advance(
    conn: &mut PgConnection,
    topic: &str,
    next: &[(i32, i64)],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifier_positions (topic, partition, next_offset)
         SELECT $1, * FROM UNNEST($2::INT[], $3::BIGINT[])
         ON CONFLICT ON CONSTRAINT notifier_positions_pkey
         DO UPDATE SET next_offset = GREATEST(notifier_positions.next_offset, EXCLUDED.next_offset)",
    )
    .bind(topic)
    .bind(next.iter().map(|(p, _)| *p).collect::<Vec<_>>())
    .bind(next.iter().map(|(_, o)| *o).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}
