//! The lanes: one sequential task per owned partition. A lane takes what has queued up (up to
//! `WORKER_MAX_BATCH`) as one batch and applies it ([`crate::batch`]) in one transaction that also
//! moves the partition's position, under its claim; a batch the fence refuses (a newer owner
//! claimed the partition) ends the lane. A crash before the commit means the batch is read again;
//! the ledger turns what was already applied into no-ops. A failing batch is retried with a
//! growing pause; one that keeps failing for a reason retrying cannot cure is applied record by
//! record, and a record that keeps failing alone stops the partition until it applies or an
//! operator parks it. The lane publishes the next offset it reads (when it starts, and after
//! each batch it commits) for orders' places in line (`shop_infra::place`).

use crate::{
    batch::{self, BatchError},
    lanes::Lanes,
    membership::{Claim, Position},
    metrics,
    received::Received,
};
use shop_infra::place::Places;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::mpsc;
use tracing::Instrument;

/// A record for a lane, at its offset.
pub struct Envelope {
    pub offset: i64,
    /// A command to apply, or a record to park (its offset counts either way).
    pub received: Received,
}

/// Why a lane stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneEnd {
    /// Its channel closed: a new generation replaced it, or the worker is stopping.
    Closed,
    /// The worker is stopping and its batch had not committed.
    Stopped,
    /// A newer owner claimed the partition; its batch did not commit.
    Fenced,
}

/// Runs the lane of `claim`'s partition (of ownership `generation`) until its channel closes or
/// it must end; returns the generation with why it ended.
pub async fn lane(
    claim: Claim,
    mut receiver: mpsc::Receiver<Envelope>,
    lanes: Arc<Lanes>,
    generation: u64,
) -> (u64, LaneEnd) {
    let partition = claim.partition;
    let mut next = claim.next_offset;
    publish_progress(&lanes, partition, next);
    let mut batch: Vec<Envelope> = Vec::with_capacity(lanes.max_batch);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < lanes.max_batch {
            match receiver.try_recv() {
                Ok(envelope) => batch.push(envelope),
                Err(_) => break,
            }
        }
        // Below the claimed position: applied already.
        batch.retain(|e| e.offset >= next);
        let (Some(first_offset), Some(last_offset)) = (
            batch.first().map(|e| e.offset),
            batch.last().map(|e| e.offset),
        ) else {
            continue;
        };
        let span = tracing::info_span!(
            "batch",
            partition,
            epoch = claim.epoch,
            first_offset,
            last_offset,
            size = batch.len()
        );
        let position = Position {
            group: &lanes.membership.group,
            topic: &lanes.membership.topic,
            partition,
            epoch: claim.epoch,
            next_offset: last_offset + 1,
        };
        let applied = match apply(&batch, &position, &lanes).instrument(span).await {
            Applied::Committed => Ok(()),
            Applied::End(end) => Err(end),
            Applied::Exhausted(error) => {
                tracing::error!(partition, first_offset, last_offset, %error, "a batch keeps failing; applying its records one at a time");
                one_at_a_time(&batch, &position, &lanes).await
            }
        };
        if let Err(end) = applied {
            return (generation, end);
        }
        next = last_offset + 1;
        batch.clear();
    }
    (generation, LaneEnd::Closed)
}

/// How applying a batch ended.
enum Applied {
    Committed,
    /// The lane must end.
    End(LaneEnd),
    /// It failed `WORKER_BATCH_ATTEMPTS` times for a reason retrying cannot cure.
    Exhausted(String),
}

/// Applies `batch` record by record, after the batch as a whole kept failing: the records before
/// the culprit commit, and a record that keeps failing alone stops the partition (loudly, in
/// `/healthz` and `checkout_worker_partition_stopped`) and is tried again every
/// [`STOPPED_RETRY`] until it applies or an operator parks it, which fences this lane.
async fn one_at_a_time(
    batch: &[Envelope],
    position: &Position<'_>,
    lanes: &Lanes,
) -> Result<(), LaneEnd> {
    for envelope in batch {
        let position = Position {
            next_offset: envelope.offset + 1,
            ..position.clone()
        };
        let single = std::slice::from_ref(envelope);
        loop {
            match apply(single, &position, lanes).await {
                Applied::Committed => break,
                Applied::End(end) => {
                    if lanes.health.resume(position.partition) {
                        metrics::partition_stopped(position.partition, false);
                    }
                    return Err(end);
                }
                Applied::Exhausted(error) => {
                    let why = format!(
                        "the record at offset {} cannot be applied ({error}); it is tried again every {} s, or park it with `checkout-worker park-record {} {}`",
                        envelope.offset,
                        STOPPED_RETRY.as_secs(),
                        position.partition,
                        envelope.offset
                    );
                    tracing::error!(partition = position.partition, offset = envelope.offset, %why, "partition stopped");
                    lanes.health.stop(position.partition, why);
                    metrics::partition_stopped(position.partition, true);
                    tokio::select! {
                        () = lanes.stop.cancelled() => return Err(LaneEnd::Stopped),
                        () = tokio::time::sleep(STOPPED_RETRY) => {}
                    }
                }
            }
        }
        if lanes.health.resume(position.partition) {
            metrics::partition_stopped(position.partition, false);
        }
    }
    Ok(())
}

/// Publishes that the lane of `partition` reads `next_offset` next (best effort, not waited for).
fn publish_progress(lanes: &Lanes, partition: i32, next_offset: i64) {
    let announcer = &lanes.announcer;
    Places::new(announcer.redis.clone(), announcer.keys.clone()).lane_moved(partition, next_offset);
}

/// How often a stopped partition's record is tried again.
const STOPPED_RETRY: Duration = Duration::from_secs(5);

/// Whether a failed batch may succeed if simply tried again: the database could not serve it
/// now (`shop_infra::db::unavailable`: out of reach, restarting, read-only in a failover), a lock
/// wait or a statement timed out, a deadlock or serialization failure, or a concurrent worker
/// applied the same command (a duplicate on the ledger's key). Anything else (another
/// constraint, a bad value, an unexpected row) fails the same way every time.
fn transient(error: &sqlx::Error) -> bool {
    if shop_infra::db::unavailable(error) {
        return true;
    }
    match error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("40")
                || ["55P03", "25P03"].contains(&code.as_ref())
                || (code == "23505" && e.constraint() == Some("inventory_ledger_pkey"))
        }),
        _ => false,
    }
}

/// Applies a batch, retrying while it fails; gives up after `WORKER_BATCH_ATTEMPTS` failures that
/// retrying cannot cure.
async fn apply(batch: &[Envelope], position: &Position<'_>, lanes: &Lanes) -> Applied {
    let received: Vec<Received> = batch.iter().map(|e| e.received.clone()).collect();
    let _busy = lanes.health.start_batch(position.partition);
    let (mut attempt, mut incurable) = (0u32, 0u32);
    loop {
        let started = Instant::now();
        let applied = tokio::time::timeout(
            lanes.batch_timeout,
            batch::apply_batch(&lanes.membership.pool, &received, Some(position)),
        )
        .await;
        let (reason, error) = match applied {
            Ok(Ok(result)) => {
                if !result.finalized.is_empty() || result.parked > 0 {
                    lanes.relay_wake.rows_written();
                }
                metrics::record_batch(&result, started.elapsed());
                lanes.announcer.after_commit(&result).await;
                publish_progress(lanes, position.partition, position.next_offset);
                return Applied::Committed;
            }
            Ok(Err(BatchError::Fenced(fenced))) => {
                metrics::fenced();
                tracing::warn!(%fenced, "batch refused: the partition has a newer owner");
                return Applied::End(LaneEnd::Fenced);
            }
            Ok(Err(BatchError::Database(error))) => {
                let curable = transient(&error);
                let reason = match error.as_database_error().and_then(|e| e.code()).as_deref() {
                    _ if !curable => "incurable",
                    Some("23505") => "concurrent_duplicate",
                    Some("40P01") => "deadlock",
                    Some("55P03") => "lock_timeout",
                    _ => "database",
                };
                incurable += u32::from(!curable);
                (reason, error.to_string())
            }
            Err(_) => ("timeout", "no answer within the batch timeout".to_owned()),
        };
        attempt = attempt.saturating_add(1);
        metrics::batch_failed(reason);
        tracing::warn!(%error, reason, attempt, "batch failed; retrying");
        if incurable >= lanes.batch_attempts {
            return Applied::Exhausted(error);
        }
        let pause = Duration::from_millis(20u64.saturating_mul(1 << attempt.min(7)));
        tokio::select! {
            () = lanes.stop.cancelled() => return Applied::End(LaneEnd::Stopped),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transient;

    #[test]
    fn outages_and_contention_are_retried_and_other_failures_are_counted() {
        assert!(transient(&sqlx::Error::PoolTimedOut));
        assert!(transient(&sqlx::Error::Io(std::io::Error::other("reset"))));
        assert!(!transient(&sqlx::Error::RowNotFound));
        assert!(!transient(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
