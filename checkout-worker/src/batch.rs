//! One step of a partition's worker: apply a batch of inventory commands in one PostgreSQL
//! transaction.
//!
//! The transaction locks the batch's products (in id order), reads which commands the ledger has
//! seen, decides every command in memory ([`decide`], pure), then writes the ledger, the stock,
//! the order lines and the orders' counters in a few set-based statements. An order whose last
//! line is decided here is finalised in the same transaction: CONFIRMED, or REJECTED (its lines
//! go back to the cart, which checkout took them from, and release commands for its reserved
//! lines go to the outbox), with its event in the outbox. Redelivered commands are recognised by the ledger and change nothing; two
//! workers racing on one command (during a rebalance) collide on the ledger's primary key and one
//! of them rolls back and retries.

use crate::{
    dead_letter::{self, DeadLetter},
    membership::{Fenced, Position},
};
use chrono::{DateTime, Utc};
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent, OrderStatus, ShortLine},
    OrderId, ProductId, Quantity, UserId,
};
use shop_infra::{
    fulfilment::{self, LedgerEntry},
    outbox::{self, Outbox, OutboxError},
};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The units were taken from stock.
    Reserved,
    /// Too little stock: nothing was taken.
    Short { available: i64 },
    /// Reserved units went back to stock.
    Released,
    /// Seen before (redelivery): nothing changed.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub command: InventoryCommand,
    pub outcome: Outcome,
}

type CommandId = (OrderId, ProductId, CommandKind);

fn id_of(c: &InventoryCommand) -> CommandId {
    (c.order_id, c.product_id, c.kind)
}

/// Decides each command in order against `stock`, which it updates. `seen` holds the commands
/// applied before; repeats, in `seen` or earlier in the batch, are duplicates. A product missing
/// from `stock` has none.
pub fn decide(
    commands: &[InventoryCommand],
    stock: &mut HashMap<ProductId, i64>,
    seen: &HashSet<CommandId>,
) -> Vec<Decision> {
    let mut applied_now = HashSet::new();
    commands
        .iter()
        .map(|&command| {
            let id = id_of(&command);
            if seen.contains(&id) || !applied_now.insert(id) {
                return Decision {
                    command,
                    outcome: Outcome::Duplicate,
                };
            }
            let quantity = i64::from(command.quantity.get());
            let available = stock.entry(command.product_id).or_insert(0);
            let outcome = match command.kind {
                CommandKind::Reserve if *available >= quantity => {
                    *available -= quantity;
                    Outcome::Reserved
                }
                CommandKind::Reserve => Outcome::Short {
                    available: *available,
                },
                CommandKind::Release => {
                    *available += quantity;
                    Outcome::Released
                }
            };
            Decision { command, outcome }
        })
        .collect()
}

/// An order that reached its terminal status in this batch.
#[derive(Debug, Clone)]
pub struct Finalized {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
}

/// What a committed batch changed, for the caches, announcements and metrics that follow it.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub decisions: Vec<Decision>,
    /// `(product id, available quantity, version)` after the batch.
    pub stock: Vec<(i64, i32, i64)>,
    pub finalized: Vec<Finalized>,
    /// Messages newly parked as dead letters.
    pub parked: u64,
}

#[derive(sqlx::FromRow)]
struct CountedOrder {
    id: Uuid,
    user_id: i64,
    pending_lines: i32,
    short_lines: i32,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    order_id: Uuid,
    product_id: i64,
    quantity: i32,
    available_at_decision: Option<i32>,
}

fn decode_err(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

pub(crate) fn outbox_err(e: OutboxError) -> sqlx::Error {
    match e {
        OutboxError::Database(e) => e,
        OutboxError::Encode(e) => decode_err(e),
    }
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

/// Applies `commands` (in partition order) in one transaction, and with them moves the
/// partition's `position` past them, if the lane's claim still holds. Safe to call again with the
/// same commands: they come back as duplicates.
pub async fn apply_batch(
    pool: &PgPool,
    commands: &[InventoryCommand],
    parked: &[DeadLetter],
    position: Option<&Position<'_>>,
) -> Result<BatchResult, BatchError> {
    let mut tx = pool.begin().await?;
    if let Some(position) = position {
        position.save(&mut tx).await??;
    }
    let mut result = apply_commands(&mut tx, commands).await?;
    let dead = dead_letter::park(&mut tx, parked).await?;
    result.parked = dead.parked;
    result.finalized.extend(dead.finalized);
    tx.commit().await?;
    Ok(result)
}

/// The commands' part of a batch, inside its transaction.
async fn apply_commands(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    commands: &[InventoryCommand],
) -> Result<BatchResult, sqlx::Error> {
    if commands.is_empty() {
        return Ok(BatchResult::default());
    }

    let mut product_ids: Vec<i64> = commands.iter().map(|c| c.product_id.get()).collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let rows: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT id, available_quantity FROM products WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&product_ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut stock = HashMap::new();
    for (id, available) in rows {
        stock.insert(
            ProductId::new(id).map_err(decode_err)?,
            i64::from(available),
        );
    }
    let before = stock.clone();

    let seen_rows: Vec<(Uuid, i64, String)> = sqlx::query_as(
        "SELECT order_id, product_id, kind FROM inventory_ledger
         WHERE (order_id, product_id) IN (SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[]))",
    )
    .bind(
        commands
            .iter()
            .map(|c| c.order_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(
        commands
            .iter()
            .map(|c| c.product_id.get())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut seen = HashSet::new();
    for (order, product, kind) in seen_rows {
        let kind = if kind == CommandKind::Reserve.as_str() {
            CommandKind::Reserve
        } else {
            CommandKind::Release
        };
        seen.insert((
            OrderId::from_uuid(order),
            ProductId::new(product).map_err(decode_err)?,
            kind,
        ));
    }

    let decisions = decide(commands, &mut stock, &seen);
    let fresh: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.outcome != Outcome::Duplicate)
        .collect();
    if fresh.is_empty() {
        return Ok(BatchResult {
            decisions,
            ..BatchResult::default()
        });
    }

    // The ledger first: a concurrent worker applying the same command fails here and retries.
    let entries: Vec<LedgerEntry> = fresh
        .iter()
        .map(|d| LedgerEntry {
            order_id: d.command.order_id.as_uuid(),
            product_id: d.command.product_id.get(),
            kind: d.command.kind.as_str(),
            quantity: i32::from(d.command.quantity),
            applied: !matches!(d.outcome, Outcome::Short { .. }),
        })
        .collect();
    fulfilment::record_ledger(tx, &entries).await?;

    let changed: Vec<(i64, i32)> = stock
        .iter()
        .filter(|(id, after)| before.get(id).is_some_and(|b| b != *after))
        .map(|(id, after)| (id.get(), i32::try_from(*after).unwrap_or(i32::MAX)))
        .collect();
    let new_stock: Vec<(i64, i32, i64)> = sqlx::query_as(
        "UPDATE products p SET available_quantity = v.q, version = p.version + 1, updated_at = now()
         FROM UNNEST($1::BIGINT[], $2::INT[]) AS v(id, q) WHERE p.id = v.id
         RETURNING p.id, p.available_quantity, p.version",
    )
    .bind(changed.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(changed.iter().map(|c| c.1).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;

    // Order lines.
    let line_status = |d: &&Decision| match d.outcome {
        Outcome::Reserved => ("RESERVED", None, None),
        Outcome::Short { available } => (
            "SHORT",
            Some(format!(
                "insufficient stock: {} requested, {available} available",
                d.command.quantity.get()
            )),
            Some(i32::try_from(available).unwrap_or(i32::MAX)),
        ),
        Outcome::Released | Outcome::Duplicate => ("RELEASED", None, None),
    };
    let statuses: Vec<_> = fresh.iter().map(line_status).collect();
    sqlx::query(
        "UPDATE order_items oi SET status = v.s, reason = v.r, available_at_decision = v.a
         FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::INT[]) AS v(o, p, s, r, a)
         WHERE oi.order_id = v.o AND oi.product_id = v.p",
    )
    .bind(fresh.iter().map(|d| d.command.order_id.as_uuid()).collect::<Vec<_>>())
    .bind(fresh.iter().map(|d| d.command.product_id.get()).collect::<Vec<_>>())
    .bind(statuses.iter().map(|s| s.0).collect::<Vec<_>>())
    .bind(statuses.iter().map(|s| s.1.clone()).collect::<Vec<_>>())
    .bind(statuses.iter().map(|s| s.2).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;

    // Orders: count decided and short lines.
    let mut counts: BTreeMap<Uuid, (i32, i32)> = BTreeMap::new();
    for d in fresh
        .iter()
        .filter(|d| d.command.kind == CommandKind::Reserve)
    {
        let entry = counts.entry(d.command.order_id.as_uuid()).or_default();
        entry.0 += 1;
        entry.1 += i32::from(matches!(d.outcome, Outcome::Short { .. }));
    }
    let finalized = count_and_finalize(tx, &counts).await?;
    Ok(BatchResult {
        decisions,
        stock: new_stock,
        finalized,
        parked: 0,
    })
}

/// Counts decided and short lines on their orders (`counts`: order → (decided, short)), and in
/// the same statement moves the orders whose last line this decided to CONFIRMED or REJECTED.
/// Orders are locked first in id order, so that workers of different partitions lock shared
/// orders in one order and cannot deadlock.
pub(crate) async fn count_and_finalize(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    counts: &BTreeMap<Uuid, (i32, i32)>,
) -> Result<Vec<Finalized>, sqlx::Error> {
    if counts.is_empty() {
        return Ok(Vec::new());
    }
    let order_ids: Vec<Uuid> = counts.keys().copied().collect();
    sqlx::query("SELECT id FROM orders WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&order_ids)
        .execute(&mut **tx)
        .await?;
    let counted: Vec<CountedOrder> = sqlx::query_as(
        "UPDATE orders o SET pending_lines = o.pending_lines - v.d, short_lines = o.short_lines + v.s,
                status = CASE WHEN o.pending_lines > v.d THEN o.status
                              WHEN o.short_lines + v.s = 0 THEN 'CONFIRMED' ELSE 'REJECTED' END,
                completed_at = CASE WHEN o.pending_lines = v.d THEN now() END,
                updated_at = now()
         FROM UNNEST($1::UUID[], $2::INT[], $3::INT[]) AS v(id, d, s)
         WHERE o.id = v.id AND o.status = 'PENDING'
         RETURNING o.id, o.user_id, o.pending_lines, o.short_lines, o.created_at",
    )
    .bind(&order_ids)
    .bind(counts.values().map(|c| c.0).collect::<Vec<_>>())
    .bind(counts.values().map(|c| c.1).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    finalize(
        tx,
        counted
            .into_iter()
            .filter(|o| o.pending_lines == 0)
            .collect(),
    )
    .await
}

/// What follows orders' terminal status (set by [`count_and_finalize`]): their events, releases
/// and cart changes.
async fn finalize(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    complete: Vec<CountedOrder>,
) -> Result<Vec<Finalized>, sqlx::Error> {
    if complete.is_empty() {
        return Ok(Vec::new());
    }
    let now_ms = Utc::now().timestamp_millis();
    let mut finalized = Vec::with_capacity(complete.len());
    for order in &complete {
        finalized.push(Finalized {
            order_id: OrderId::from_uuid(order.id),
            user_id: UserId::new(order.user_id).map_err(decode_err)?,
            status: if order.short_lines == 0 {
                OrderStatus::Confirmed
            } else {
                OrderStatus::Rejected
            },
            created_at: order.created_at,
        });
    }
    let rejected: Vec<Uuid> = finalized
        .iter()
        .filter(|f| f.status == OrderStatus::Rejected)
        .map(|f| f.order_id.as_uuid())
        .collect();

    fulfilment::return_to_carts(tx, &rejected).await?;

    let lines: Vec<LineRow> = if rejected.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT order_id, product_id, quantity, available_at_decision FROM order_items
             WHERE order_id = ANY($1) AND status IN ('RESERVED', 'SHORT') ORDER BY order_id, product_id",
        )
        .bind(&rejected)
        .fetch_all(&mut **tx)
        .await?
    };

    let mut messages = Outbox::default();
    for order in &finalized {
        let event = match order.status {
            OrderStatus::Confirmed => OrderEvent::confirmed(order.order_id, order.user_id, now_ms),
            _ => {
                let mut short_lines = Vec::new();
                for line in lines
                    .iter()
                    .filter(|l| l.order_id == order.order_id.as_uuid())
                {
                    let product = ProductId::new(line.product_id).map_err(decode_err)?;
                    let quantity = Quantity::new(line.quantity.into()).map_err(decode_err)?;
                    match line.available_at_decision {
                        Some(available) => short_lines.push(ShortLine {
                            product_id: product,
                            requested: quantity.get(),
                            available: available.into(),
                        }),
                        // Reserved: compensate on the product's own partition.
                        None => messages
                            .push(
                                outbox::INVENTORY,
                                product.to_string(),
                                &InventoryCommand::new(
                                    CommandKind::Release,
                                    order.order_id,
                                    product,
                                    quantity,
                                ),
                            )
                            .map_err(outbox_err)?,
                    }
                }
                OrderEvent::rejected(order.order_id, order.user_id, short_lines, now_ms)
            }
        };
        messages
            .push(outbox::ORDER_EVENTS, order.order_id.to_string(), &event)
            .map_err(outbox_err)?;
    }
    messages.insert(tx).await.map_err(outbox_err)?;
    Ok(finalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(kind: CommandKind, order: OrderId, product: i64, quantity: i64) -> InventoryCommand {
        InventoryCommand::new(
            kind,
            order,
            ProductId::new(product).expect("id"),
            Quantity::new(quantity).expect("quantity"),
        )
    }

    fn pid(id: i64) -> ProductId {
        ProductId::new(id).expect("id")
    }

    fn outcomes(
        commands: &[InventoryCommand],
        stock: &mut HashMap<ProductId, i64>,
        seen: &HashSet<CommandId>,
    ) -> Vec<Outcome> {
        decide(commands, stock, seen)
            .iter()
            .map(|d| d.outcome)
            .collect()
    }

    #[test]
    fn reserves_in_order_until_stock_runs_out() {
        let orders: Vec<_> = (0..4).map(|_| OrderId::generate()).collect();
        let commands: Vec<_> = orders
            .iter()
            .map(|&o| cmd(CommandKind::Reserve, o, 1, 2))
            .collect();
        let mut stock = HashMap::from([(pid(1), 5)]);
        let outcomes = outcomes(&commands, &mut stock, &HashSet::new());
        assert_eq!(
            outcomes,
            [
                Outcome::Reserved,
                Outcome::Reserved,
                Outcome::Short { available: 1 },
                Outcome::Short { available: 1 }
            ]
        );
        assert_eq!(stock[&pid(1)], 1, "never below zero");
    }

    #[test]
    fn repeats_are_duplicates_within_a_batch_and_across_batches() {
        let (a, b) = (OrderId::generate(), OrderId::generate());
        let reserve_a = cmd(CommandKind::Reserve, a, 1, 1);
        let seen = HashSet::from([(b, pid(1), CommandKind::Reserve)]);
        let commands = [reserve_a, reserve_a, cmd(CommandKind::Reserve, b, 1, 1)];
        let mut stock = HashMap::from([(pid(1), 10)]);
        let outcomes = outcomes(&commands, &mut stock, &seen);
        assert_eq!(
            outcomes,
            [Outcome::Reserved, Outcome::Duplicate, Outcome::Duplicate]
        );
        assert_eq!(stock[&pid(1)], 9);
    }

    #[test]
    fn releases_return_stock_and_unknown_products_have_none() {
        let order = OrderId::generate();
        let commands = [
            cmd(CommandKind::Release, order, 1, 3),
            cmd(CommandKind::Reserve, order, 2, 1),
        ];
        let mut stock = HashMap::from([(pid(1), 0)]);
        let outcomes = outcomes(&commands, &mut stock, &HashSet::new());
        assert_eq!(
            outcomes,
            [Outcome::Released, Outcome::Short { available: 0 }]
        );
        assert_eq!(stock[&pid(1)], 3);
    }

    #[test]
    fn a_reserve_and_its_release_are_distinct_commands() {
        let order = OrderId::generate();
        let commands = [
            cmd(CommandKind::Reserve, order, 1, 4),
            cmd(CommandKind::Release, order, 1, 4),
        ];
        let mut stock = HashMap::from([(pid(1), 4)]);
        let outcomes = outcomes(&commands, &mut stock, &HashSet::new());
        assert_eq!(outcomes, [Outcome::Reserved, Outcome::Released]);
        assert_eq!(stock[&pid(1)], 4, "conservation");
    }
}
