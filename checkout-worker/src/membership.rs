//! Group membership and partition positions, kept in PostgreSQL.
//!
//! Each worker heartbeats a row in `consumer_members` with a short lease. Partition `p` belongs
//! to the live member of rank `p mod n` (members ordered by id, `n` live members), so the
//! partitions are split evenly and every live worker reaches the same split from the same rows.
//! A worker that stops deletes its row (its partitions move at the others' next heartbeat); one
//! that dies stops renewing it (they move once the lease expires).
//!
//! Kafka's own group coordinator would do this too; this design keeps the split, and the
//! positions, beside the data they guard, so a batch's effects and its position are committed
//! together and no broker-side group state can make a partition skip or stall.

use sqlx::PgPool;
use std::{collections::HashMap, time::Duration};
use uuid::Uuid;

/// The partitions (of `partitions`) that `me` owns among `members` (sorted, deduplicated).
pub fn assignment(members: &[Uuid], me: Uuid, partitions: i32) -> Vec<i32> {
    match members.iter().position(|m| *m == me) {
        Some(rank) => (0..partitions)
            .filter(|p| *p as usize % members.len() == rank)
            .collect(),
        None => Vec::new(),
    }
}

pub struct Membership {
    pub pool: PgPool,
    pub group: String,
    pub topic: String,
    pub partitions: i32,
    pub member: Uuid,
    pub lease: Duration,
}

impl Membership {
    /// Renews this member's lease, forgets expired members, and returns the partitions this
    /// member owns now.
    pub async fn heartbeat(&self) -> Result<Vec<i32>, sqlx::Error> {
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO consumer_members (consumer_group, member, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3::DOUBLE PRECISION / 1000))
             ON CONFLICT ON CONSTRAINT consumer_members_pkey DO UPDATE SET expires_at = EXCLUDED.expires_at",
        )
        .bind(&self.group)
        .bind(self.member)
        .bind(lease_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM consumer_members WHERE consumer_group = $1 AND expires_at < now()",
        )
        .bind(&self.group)
        .execute(&mut *tx)
        .await?;
        let members: Vec<Uuid> = sqlx::query_scalar(
            "SELECT member FROM consumer_members WHERE consumer_group = $1 ORDER BY member",
        )
        .bind(&self.group)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(assignment(&members, self.member, self.partitions))
    }

    /// Leaves the group: the other members take this one's partitions at their next heartbeat.
    pub async fn leave(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM consumer_members WHERE consumer_group = $1 AND member = $2")
            .bind(&self.group)
            .bind(self.member)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The next offset to process of each of `partitions` that has a position.
    pub async fn positions(&self, partitions: &[i32]) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM consumer_positions
             WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3)",
        )
        .bind(&self.group)
        .bind(&self.topic)
        .bind(partitions)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

/// Where a batch ends: written in the batch's transaction.
#[derive(Debug, Clone)]
pub struct Position<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub next_offset: i64,
}

impl Position<'_> {
    /// Moves the partition's position forward (never back: a late duplicate batch from a
    /// previous owner cannot rewind it).
    pub async fn save(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
             ON CONFLICT ON CONSTRAINT consumer_positions_pkey DO UPDATE
             SET next_offset = GREATEST(consumer_positions.next_offset, EXCLUDED.next_offset), updated_at = now()",
        )
        .bind(self.group)
        .bind(self.topic)
        .bind(self.partition)
        .bind(self.next_offset)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_split_evenly_and_completely() {
        let mut members: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        members.sort();
        let mut all: Vec<i32> = members
            .iter()
            .flat_map(|m| assignment(&members, *m, 8))
            .collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..8).collect::<Vec<_>>(),
            "each partition exactly once"
        );
        for m in &members {
            let n = assignment(&members, *m, 8).len();
            assert!((2..=3).contains(&n), "{n}");
        }
        assert_eq!(assignment(&members[..1], members[0], 4), [0, 1, 2, 3]);
        assert!(
            assignment(&members, Uuid::new_v4(), 4).is_empty(),
            "not a member: nothing"
        );
    }
}
