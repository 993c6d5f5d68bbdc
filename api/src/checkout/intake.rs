//! The queue strategy's intake: checkouts that arrive together are written in one statement and
//! one commit, as a worker lane applies the commands queued for its partition in one
//! transaction. Under load PostgreSQL's cost per order is then a share of a statement and of a
//! commit instead of a whole one; a lone checkout is written at once, on its own.
//!
//! A dispatcher takes what has queued up (up to `CHECKOUT_INTAKE_MAX_BATCH`) as soon as one of
//! `CHECKOUT_INTAKE_WRITERS` writers is free, so nothing waits for a batch to fill. A batch holds
//! at most one checkout per shopper (a second one waits for the next batch), so the per-order
//! rules are those of one order written alone (`shop_infra::orders::place`): the cart's lines are locked and must still be the
//! snapshot's, and the idempotency key's unique constraint settles retries. The statement wakes
//! the relays (`NOTIFY` on `outbox::WRITTEN_CHANNEL`, sent at its commit). A batch that fails
//! as a whole (a deadlock between writers, a row that breaks a constraint) is written again
//! order by order, so one bad checkout never fails the others.

use crate::error::ApiError;
use shop_domain::messages::OrderStatus;
use shop_infra::{
    orders::place::{self, NewOrder, Written},
    outbox::{Columns, Outbox},
};
use sqlx::PgPool;
use std::{collections::HashSet, collections::VecDeque, sync::Arc};
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

/// A checkout waiting to be written, and where its outcome goes.
struct Submission {
    order: NewOrder,
    messages: Columns,
    reply: oneshot::Sender<Result<Written, ApiError>>,
}

/// Hands checkouts to the dispatcher ([`Intake::start`]).
#[derive(Clone)]
pub struct Intake {
    submissions: mpsc::Sender<Submission>,
}

impl Intake {
    /// Starts the dispatcher on `pool`. It ends when every `Intake` handle is dropped.
    pub fn start(pool: PgPool, max_batch: usize, writers: usize) -> Self {
        let (submissions, receiver) = mpsc::channel(max_batch.max(1) * writers.max(1) * 4);
        tokio::spawn(dispatch(pool, receiver, max_batch.max(1), writers.max(1)));
        Self { submissions }
    }

    /// Writes `order` PENDING with its lines and `messages` (its outbox row), taking its lines out
    /// of the cart, as one order alone would be written, in a batch with whatever arrives
    /// meanwhile.
    pub(crate) async fn write(
        &self,
        order: &NewOrder,
        messages: &Outbox,
    ) -> Result<Written, ApiError> {
        let (reply, outcome) = oneshot::channel();
        self.submissions
            .send(Submission {
                order: order.clone(),
                messages: messages.columns()?,
                reply,
            })
            .await
            .map_err(|_| ApiError::Internal("the checkout intake has stopped".into()))?;
        outcome.await.map_err(|_| {
            ApiError::Internal(format!("the checkout intake dropped order {}", order.id).into())
        })?
    }
}

/// Takes batches off `receiver` whenever a writer is free, until every sender is gone.
async fn dispatch(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Submission>,
    max_batch: usize,
    writers: usize,
) {
    let free = Arc::new(Semaphore::new(writers));
    let mut held: VecDeque<Submission> = VecDeque::new();
    loop {
        let Ok(writer) = free.clone().acquire_owned().await else {
            return;
        };
        let first = match held.pop_front() {
            Some(first) => first,
            None => match receiver.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let batch = gather(first, &mut held, &mut receiver, max_batch);
        crate::metrics::intake_batch(batch.len());
        let pool = pool.clone();
        tokio::spawn(async move {
            write_batch(&pool, batch).await;
            drop(writer);
        });
    }
}

/// `first` and what is queued behind it, up to `max_batch`, at most one per shopper: a second
/// checkout of a shopper already in the batch is held for the next one.
fn gather(
    first: Submission,
    held: &mut VecDeque<Submission>,
    receiver: &mut mpsc::Receiver<Submission>,
    max_batch: usize,
) -> Vec<Submission> {
    let mut shoppers = HashSet::from([first.order.user]);
    let mut batch = vec![first];
    let mut deferred = VecDeque::new();
    while batch.len() < max_batch {
        let Some(next) = held.pop_front().or_else(|| receiver.try_recv().ok()) else {
            break;
        };
        if shoppers.insert(next.order.user) {
            batch.push(next);
        } else {
            deferred.push_back(next);
        }
    }
    deferred.append(held);
    *held = deferred;
    batch
}

/// Writes a batch and answers each checkout in it.
async fn write_batch(pool: &PgPool, batch: Vec<Submission>) {
    match insert_batch(pool, &batch).await {
        Ok(outcomes) => {
            for submission in batch {
                let written = outcomes
                    .iter()
                    .find(|(id, _)| *id == submission.order.id.as_uuid())
                    .map(|&(_, written)| written)
                    .ok_or_else(|| ApiError::Internal("a batch lost an order".into()));
                // A client that went away no longer waits for its answer.
                let _ = submission.reply.send(written);
            }
        }
        Err(error) => {
            tracing::warn!(%error, orders = batch.len(), "checkout batch failed; writing its orders one by one");
            for submission in batch {
                let written = alone(pool, &submission).await;
                let _ = submission.reply.send(written);
            }
        }
    }
}

/// One checkout on its own.
async fn alone(pool: &PgPool, submission: &Submission) -> Result<Written, ApiError> {
    let mut conn = pool.acquire().await?;
    Ok(submission
        .order
        .insert(&mut conn, OrderStatus::Pending, &submission.messages)
        .await?)
}

/// The batch's orders in one statement (`place::insert_all`).
async fn insert_batch(
    pool: &PgPool,
    batch: &[Submission],
) -> Result<Vec<(Uuid, Written)>, sqlx::Error> {
    let orders: Vec<(&NewOrder, &Columns)> =
        batch.iter().map(|s| (&s.order, &s.messages)).collect();
    let mut conn = pool.acquire().await?;
    place::insert_all(&mut conn, &orders, OrderStatus::Pending).await
}
