//! Group membership and partition positions, kept in PostgreSQL.
//!
//! Each worker heartbeats a row in `consumer_members` with a short lease. Partition `p` belongs
//! to the live member of rank `p mod n` (members ordered by id, `n` live members), so the
//! partitions are split evenly and every live worker reaches the same split from the same rows.
//! A worker that stops deletes its row (its partitions move at the others' next heartbeat); one
//! that dies stops renewing it (they move once the lease expires).
//!
//! Ownership is fenced: a worker that comes to own a partition [`claims`](Membership::claim) it,
//! which raises the partition's epoch, and every batch of its lane moves the position only while
//! that epoch is still the newest ([`Position::save`]). A stale owner — paused, cut off from
//! PostgreSQL, or slow to notice that its lease ran out — therefore commits nothing once its
//! successor has claimed the partition, and the successor waits on the stale owner's open
//! transaction only until PostgreSQL ends it (`idle_in_transaction_session_timeout` on the
//! worker's sessions).
//!
//! Kafka's own group coordinator would split the partitions too; this design keeps the split,
//! the epochs and the positions beside the data they guard, so a batch's effects, its fence and
//! its position are committed together, and it only asks the broker to fetch from an offset
//! (`assign`), which tansu and Apache Kafka both do the same way.
//!
//! The membership task ([`Membership::keep`]) heartbeats on its own schedule, so a slow lane or a
//! full channel never delays it, and publishes which partitions this worker owns ([`Ownership`]);
//! the receive loop ([`crate::consumer`]) claims them afresh whenever that changes.

use crate::health::Health;
use sqlx::PgPool;
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
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
    /// Renews this member's lease, forgets expired members, and says which partitions this
    /// member owns now.
    pub async fn heartbeat(&self) -> Result<Beat, sqlx::Error> {
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        // `xmax = 0` only on a row this statement inserted: the member had been forgotten.
        let rejoined: bool = sqlx::query_scalar(
            "INSERT INTO consumer_members (consumer_group, member, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3::DOUBLE PRECISION / 1000))
             ON CONFLICT ON CONSTRAINT consumer_members_pkey DO UPDATE SET expires_at = EXCLUDED.expires_at
             RETURNING xmax = 0",
        )
        .bind(&self.group)
        .bind(self.member)
        .bind(lease_ms)
        .fetch_one(&mut *tx)
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
        Ok(Beat {
            owned: assignment(&members, self.member, self.partitions),
            rejoined,
        })
    }

    /// Takes `partitions` over: raises each one's epoch (fencing off any earlier owner, whose
    /// open batch this waits for) and returns where each one's processing resumes.
    pub async fn claim(&self, partitions: &[i32]) -> Result<Vec<Claim>, sqlx::Error> {
        let mut sorted = partitions.to_vec();
        sorted.sort_unstable();
        sqlx::query_as(
            "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset, epoch, owner)
             SELECT $1, $2, p, 0, 1, $3 FROM UNNEST($4::INT[]) AS p ORDER BY p
             ON CONFLICT ON CONSTRAINT consumer_positions_pkey DO UPDATE
             SET epoch = consumer_positions.epoch + 1, owner = EXCLUDED.owner, updated_at = now()
             RETURNING partition, epoch, next_offset",
        )
        .bind(&self.group)
        .bind(&self.topic)
        .bind(self.member)
        .bind(&sorted)
        .fetch_all(&self.pool)
        .await
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
}

/// The partitions the receive loop should have lanes for; a new generation means "claim them
/// again", even when the set is the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    pub generation: u64,
    pub partitions: Vec<i32>,
}

impl Membership {
    /// Renews the membership every third of a lease, until `stop`, and publishes what this
    /// worker owns on `ownership`: a new generation when the owned set changed, when the member
    /// rejoined or the lease had lapsed, or when `reclaim` was set (a lane ended, a take-over
    /// failed). When the lease has run out (no heartbeat got through for a whole lease, or the
    /// member was forgotten meanwhile), others may have claimed its partitions: it owns nothing
    /// until a heartbeat gets through, then claims afresh.
    pub async fn keep(
        &self,
        health: &Health,
        reclaim: &AtomicBool,
        stop: &CancellationToken,
        ownership: watch::Sender<Ownership>,
    ) {
        let lease = self.lease;
        let mut tick = tokio::time::interval(lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ok: Option<Instant> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let beat = tokio::time::timeout(lease / 3, self.heartbeat()).await;
            let lapsed = last_ok.is_none_or(|at| at.elapsed() >= lease);
            match beat {
                Ok(Ok(beat)) => {
                    last_ok = Some(Instant::now());
                    health.beat();
                    let again = lapsed || beat.rejoined || reclaim.swap(false, Ordering::SeqCst);
                    ownership.send_if_modified(|current| {
                        if !again && current.partitions == beat.owned {
                            return false;
                        }
                        current.generation += 1;
                        current.partitions = beat.owned;
                        true
                    });
                }
                failed => {
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(%error, lease_lapsed = lapsed, "membership heartbeat failed");
                    if lapsed {
                        ownership.send_if_modified(|current| {
                            if current.partitions.is_empty() {
                                return false;
                            }
                            current.generation += 1;
                            current.partitions.clear();
                            true
                        });
                    }
                }
            }
        }
    }
}

/// What a heartbeat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The partitions this member owns now.
    pub owned: Vec<i32>,
    /// The member's row had been forgotten (its lease ran out): others may have claimed its
    /// partitions meanwhile, so it must claim them again before its lanes can commit.
    pub rejoined: bool,
}

/// A partition taken over by this worker: its lane commits while `epoch` is the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Claim {
    pub partition: i32,
    pub epoch: i64,
    /// Where processing resumes.
    pub next_offset: i64,
}

/// Where a batch ends, under which claim: written first in the batch's transaction.
#[derive(Debug, Clone)]
pub struct Position<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub epoch: i64,
    pub next_offset: i64,
}

/// The partition was claimed by a newer owner: this batch must not commit.
#[derive(Debug, thiserror::Error)]
#[error("partition {partition} was claimed by a newer owner than epoch {epoch}")]
pub struct Fenced {
    pub partition: i32,
    pub epoch: i64,
}

impl Position<'_> {
    /// Moves the partition's position forward (never back), if the claim still holds. Run first
    /// in a batch: the row stays locked until the batch ends, so a claim waits for it, and a
    /// batch that waited on a claim sees the new epoch.
    pub async fn save(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> Result<Result<(), Fenced>, sqlx::Error> {
        let moved = sqlx::query(
            "UPDATE consumer_positions
             SET next_offset = GREATEST(next_offset, $5), updated_at = now()
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND epoch = $4",
        )
        .bind(self.group)
        .bind(self.topic)
        .bind(self.partition)
        .bind(self.epoch)
        .bind(self.next_offset)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(if moved == 1 {
            Ok(())
        } else {
            Err(Fenced {
                partition: self.partition,
                epoch: self.epoch,
            })
        })
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
