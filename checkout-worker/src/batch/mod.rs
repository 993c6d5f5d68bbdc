//! One step of a partition's worker: apply a batch of inventory commands in one PostgreSQL
//! transaction.
//!
//! The transaction first moves the partition's position under the lane's claim (refused if a
//! newer owner claimed it), then applies the commands (`write`: it locks the batch's products
//! in id order, reads which commands the ledger has seen and the shoppers' counts of products
//! with a per-shopper limit, decides every command in memory ([`decide`], pure), then writes the
//! ledger, the stock, the shoppers' counts, the order lines and the orders' counters in a few
//! set-based statements), and parks the records it cannot apply
//! ([`crate::dead_letter`]). An order whose last line is decided here is finalised in the same
//! transaction ([`crate::finalize`]): CONFIRMED, or REJECTED (its lines go back to the cart,
//! which checkout took them from, and release commands for its reserved lines go to the outbox),
//! with its event in the outbox; an order cancelled meanwhile is left as it is. Releases (of
//! rejected or cancelled orders), sellers' restocks and sellers' sets (ordered by their queue
//! position rather than by arrival, see [`decide`]) are applied on the same lane, so nothing else
//! writes a product's stock while its commands are decided. Redelivered commands are
//! recognised by the ledger and change nothing (neither the stock nor a shopper's count: the
//! ledger records which reserves and releases were counted); two workers racing on one command
//! (during a rebalance) collide on the ledger's primary key and one of them rolls back and
//! retries.

pub mod decide;
mod write;

pub use decide::Outcome;

use crate::{
    dead_letter::{self, DeadLetter},
    membership::{Fenced, Position},
    received::Received,
};
use decide::{Decision, Queued};
use shop_infra::orders::settle::Settled;
use sqlx::PgPool;

/// What a committed batch changed, for the caches, announcements and metrics that follow it.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub decisions: Vec<Decision>,
    /// `(product id, available quantity, version)` after the batch.
    pub stock: Vec<(i64, i32, i64)>,
    /// Orders that reached their terminal status in this batch.
    pub finalized: Vec<Settled>,
    /// Records newly parked as dead letters.
    pub parked: usize,
}

/// Why a batch did not commit.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The lane's claim is stale: nothing was written, and the lane must stop.
    #[error(transparent)]
    Fenced(#[from] Fenced),
    /// Worth retrying: the database was unreachable, a lock wait timed out, a deadlock, or a
    /// concurrent duplicate.
    #[error("PostgreSQL")]
    Database(#[from] sqlx::Error),
}

/// Applies the records of `batch` (in partition order) in one transaction, and with them moves
/// the partition's `position` past them, if the lane's claim still holds. A record that is no
/// command this worker may apply is parked (see [`crate::dead_letter`]). Safe to call again with
/// the same records: their commands come back as duplicates, their letters are parked once.
pub async fn apply_batch(
    pool: &PgPool,
    batch: &[Received],
    position: Option<&Position<'_>>,
) -> Result<BatchResult, BatchError> {
    let mut commands = Vec::with_capacity(batch.len());
    let mut read_from = Vec::with_capacity(batch.len());
    let mut letters = Vec::new();
    for received in batch {
        match &received.read {
            Ok(command) => {
                commands.push(Queued {
                    command: *command,
                    queued: received.queued,
                });
                read_from.push(&received.record);
            }
            Err(reason) => letters.push(DeadLetter::unreadable(received.record.clone(), reason)),
        }
    }
    let mut tx = pool.begin().await?;
    if let Some(position) = position {
        position.save(&mut tx).await??;
    }
    let (written, refused) = write::apply_commands(&mut tx, &commands).await?;
    letters.extend(refused.into_iter().map(|(i, reason)| {
        DeadLetter::refused(read_from[i].clone(), &commands[i].command, &reason)
    }));
    let dead = dead_letter::park(&mut tx, &letters).await?;
    tx.commit().await?;
    let mut finalized = written.finalized;
    finalized.extend(dead.finalized);
    Ok(BatchResult {
        decisions: written.decisions,
        stock: written.stock,
        finalized,
        parked: dead.parked,
    })
}
