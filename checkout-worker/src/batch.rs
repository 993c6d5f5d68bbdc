//! One step of a partition's worker: apply a batch of inventory commands in one PostgreSQL
//! transaction.
//!
//! The transaction locks the batch's products (in id order), reads which commands the ledger has
//! seen, decides every command in memory ([`decide`], pure), then writes the ledger, the stock,
//! the order lines and the orders' counters in a few set-based statements. An order whose last
//! line is decided here is finalised in the same transaction: CONFIRMED, or REJECTED (its lines
//! go back to the cart, which checkout took them from, and release commands for its reserved
//! lines go to the outbox), with its event in the outbox; an order cancelled meanwhile is left as
//! it is. Releases (of rejected or cancelled orders) and sellers' restocks are applied on the
//! same lane, so nothing else writes a product's stock while its commands are decided.
//! Redelivered commands are recognised by the ledger and change nothing; two workers racing on
//! one command (during a rebalance) collide on the ledger's primary key and one of them rolls
//! back and retries.

use crate::{
    dead_letter::{self, DeadLetter, Received},
    membership::{Fenced, Position},
};
use chrono::{DateTime, Utc};
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent, OrderStatus, ShortLine},
    OrderId, ProductId, Quantity, UserId, MAX_STOCK,
};
use shop_infra::{
    fulfilment::{self, LedgerEntry},
    outbox::{self, Outbox, OutboxError},
};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The units were taken from stock.
    Reserved,
    /// Too little stock: nothing was taken.
    Short { available: i64 },
    /// A reserve whose line was released before it came (its order was cancelled while the
    /// reserve was on its way): nothing was taken.
    Withdrawn,
    /// The line's reserved units went back to stock.
    Released,
    /// A release of a line that holds nothing (short, or not reserved yet): nothing changed, and
    /// the line's reserve, if it comes later, is withdrawn.
    NothingHeld,
    /// A restock added its units.
    Restocked,
    /// A restock that would take the stock past [`MAX_STOCK`]: nothing was added.
    Overfull { available: i64 },
    /// Seen before (redelivery): nothing changed.
    Duplicate,
}

impl Outcome {
    /// Whether the command changed the stock (the ledger's `applied`).
    fn applied(self) -> bool {
        matches!(self, Self::Reserved | Self::Released | Self::Restocked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub command: InventoryCommand,
    pub outcome: Outcome,
}

/// One order's line on one product, or one restock of a product.
type LineKey = (OrderId, ProductId);

/// What the ledger holds for a line: its reserve (and whether it took units), its release, or a
/// restock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub reserve: Option<bool>,
    pub release: bool,
    pub restock: bool,
}

/// Decides each command in order against `stock`, which it updates. `lines` starts with what
/// the ledger saw before, and takes in each command as it is decided; a command recorded there
/// is a duplicate. A product missing from `stock` has none.
pub fn decide(
    commands: &[InventoryCommand],
    stock: &mut HashMap<ProductId, i64>,
    mut lines: HashMap<LineKey, Recorded>,
) -> Vec<Decision> {
    commands
        .iter()
        .map(|&command| {
            let line = lines
                .entry((command.order_id, command.product_id))
                .or_default();
            let quantity = i64::from(command.quantity.get());
            let available = stock.entry(command.product_id).or_insert(0);
            let outcome = match command.kind {
                CommandKind::Reserve if line.reserve.is_some() => Outcome::Duplicate,
                CommandKind::Release if line.release => Outcome::Duplicate,
                CommandKind::Restock if line.restock => Outcome::Duplicate,
                CommandKind::Reserve => {
                    let outcome = if line.release {
                        Outcome::Withdrawn
                    } else if *available >= quantity {
                        *available -= quantity;
                        Outcome::Reserved
                    } else {
                        Outcome::Short {
                            available: *available,
                        }
                    };
                    line.reserve = Some(outcome == Outcome::Reserved);
                    outcome
                }
                CommandKind::Release => {
                    line.release = true;
                    if line.reserve == Some(true) {
                        *available += quantity;
                        Outcome::Released
                    } else {
                        Outcome::NothingHeld
                    }
                }
                CommandKind::Restock => {
                    line.restock = true;
                    if *available + quantity <= MAX_STOCK {
                        *available += quantity;
                        Outcome::Restocked
                    } else {
                        Outcome::Overfull {
                            available: *available,
                        }
                    }
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
    /// Records newly parked as dead letters.
    pub parked: usize,
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

/// A ledger row of a kind this worker does not know (written by a newer version).
#[derive(Debug, thiserror::Error)]
#[error("unknown inventory ledger kind {0:?}")]
struct UnknownKind(String);

/// An order line's status (`order_items.status`) after its reserve or release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineStatus {
    Reserved,
    Short,
    Released,
    Cancelled,
}

impl LineStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Short => "SHORT",
            Self::Released => "RELEASED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// What a decision writes on its order line: the status, and for a short line the reason its
/// order shows and the stock the lane saw.
struct LineUpdate {
    status: LineStatus,
    reason: Option<String>,
    available: Option<i32>,
}

impl LineUpdate {
    /// `None` for decisions that leave the line as it is: a release that held nothing, restocks
    /// and duplicates.
    fn of(d: &Decision) -> Option<Self> {
        let plain = |status| {
            Some(Self {
                status,
                reason: None,
                available: None,
            })
        };
        match d.outcome {
            Outcome::Reserved => plain(LineStatus::Reserved),
            Outcome::Released => plain(LineStatus::Released),
            Outcome::Withdrawn => plain(LineStatus::Cancelled),
            Outcome::Short { available } => Some(Self {
                status: LineStatus::Short,
                reason: Some(format!(
                    "insufficient stock: {} requested, {available} available",
                    d.command.quantity.get()
                )),
                available: Some(i32::try_from(available).unwrap_or(i32::MAX)),
            }),
            Outcome::NothingHeld
            | Outcome::Restocked
            | Outcome::Overfull { .. }
            | Outcome::Duplicate => None,
        }
    }
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
                commands.push(*command);
                read_from.push(&received.record);
            }
            Err(reason) => letters.push(DeadLetter::unreadable(received.record.clone(), reason)),
        }
    }
    let mut tx = pool.begin().await?;
    if let Some(position) = position {
        position.save(&mut tx).await??;
    }
    let (mut result, refused) = apply_commands(&mut tx, &commands).await?;
    letters.extend(
        refused
            .into_iter()
            .map(|(i, reason)| DeadLetter::refused(read_from[i].clone(), &commands[i], &reason)),
    );
    let dead = dead_letter::park(&mut tx, &letters).await?;
    result.parked = dead.parked;
    result.finalized.extend(dead.finalized);
    tx.commit().await?;
    Ok(result)
}

/// An order line as the lane finds it: the units it holds, and whether its order gives them
/// back (REJECTED or CANCELLED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    quantity: i32,
    releasable: bool,
}

/// Why a command that reads well may still not be applied: `None` when it may.
fn refusal(command: &InventoryCommand, product_known: bool, line: Option<Line>) -> Option<String> {
    if !product_known {
        return Some(format!("unknown product {}", command.product_id));
    }
    if command.kind == CommandKind::Restock {
        return None;
    }
    let quantity = i32::from(command.quantity);
    let (order, product) = (command.order_id, command.product_id);
    match line {
        None => Some(format!("order {order} has no line for product {product}")),
        Some(line) if line.quantity != quantity => Some(format!(
            "order {order} has {} units of product {product}, not {quantity}",
            line.quantity
        )),
        Some(line) if command.kind == CommandKind::Release && !line.releasable => Some(format!(
            "order {order} is neither rejected nor cancelled: its units stay taken"
        )),
        Some(_) => None,
    }
}

/// The commands' part of a batch, inside its transaction. Returns, beside what it did, the
/// commands it refused (by their place in `commands`, with the reason): those of unknown
/// products, and reserves or releases of order lines that do not exist as they say.
async fn apply_commands(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    all: &[InventoryCommand],
) -> Result<(BatchResult, Vec<(usize, String)>), sqlx::Error> {
    if all.is_empty() {
        return Ok((BatchResult::default(), Vec::new()));
    }

    let mut product_ids: Vec<i64> = all.iter().map(|c| c.product_id.get()).collect();
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

    let lines = order_lines(tx, all).await?;
    let mut refused = Vec::new();
    let mut commands = Vec::with_capacity(all.len());
    for (i, command) in all.iter().enumerate() {
        let line = lines.get(&(command.order_id, command.product_id)).copied();
        match refusal(command, stock.contains_key(&command.product_id), line) {
            Some(reason) => refused.push((i, reason)),
            None => commands.push(*command),
        }
    }
    if commands.is_empty() {
        return Ok((BatchResult::default(), refused));
    }
    let commands = commands.as_slice();

    let rows: Vec<(Uuid, i64, String, bool)> = sqlx::query_as(
        "SELECT order_id, product_id, kind, applied FROM inventory_ledger
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
    let mut recorded: HashMap<LineKey, Recorded> = HashMap::new();
    for (order, product, kind, applied) in rows {
        let line = recorded
            .entry((
                OrderId::from_uuid(order),
                ProductId::new(product).map_err(decode_err)?,
            ))
            .or_default();
        match CommandKind::parse(&kind) {
            Some(CommandKind::Reserve) => line.reserve = Some(applied),
            Some(CommandKind::Release) => line.release = true,
            Some(CommandKind::Restock) => line.restock = true,
            None => return Err(decode_err(UnknownKind(kind))),
        }
    }

    let decisions = decide(commands, &mut stock, recorded);
    let fresh: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.outcome != Outcome::Duplicate)
        .collect();
    if fresh.is_empty() {
        return Ok((
            BatchResult {
                decisions,
                ..BatchResult::default()
            },
            refused,
        ));
    }

    // The ledger first: a concurrent worker applying the same command fails here and retries.
    let entries: Vec<LedgerEntry> = fresh
        .iter()
        .map(|d| LedgerEntry {
            order_id: d.command.order_id.as_uuid(),
            product_id: d.command.product_id.get(),
            kind: d.command.kind.as_str(),
            quantity: i32::from(d.command.quantity),
            applied: d.outcome.applied(),
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

    // Order lines: what reserves and releases did to them (restocks have none; a release that
    // held nothing leaves its line as it is). A line reserved and released in one batch gets its
    // last status: an UPDATE … FROM applies only one of several rows that match a line.
    let mut last: HashMap<LineKey, LineUpdate> = HashMap::new();
    for d in &fresh {
        if let Some(update) = LineUpdate::of(d) {
            last.insert((d.command.order_id, d.command.product_id), update);
        }
    }
    let (keys, lines): (Vec<LineKey>, Vec<LineUpdate>) = last.into_iter().unzip();
    sqlx::query(
        "UPDATE order_items oi SET status = v.s, reason = v.r, available_at_decision = v.a
         FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::INT[]) AS v(o, p, s, r, a)
         WHERE oi.order_id = v.o AND oi.product_id = v.p",
    )
    .bind(keys.iter().map(|(order, _)| order.as_uuid()).collect::<Vec<_>>())
    .bind(keys.iter().map(|(_, product)| product.get()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.status.as_str()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.reason.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.available).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;

    // Orders: count decided and short lines (a withdrawn reserve belongs to a cancelled order,
    // which the count leaves alone).
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
    Ok((
        BatchResult {
            decisions,
            stock: new_stock,
            finalized,
            parked: 0,
        },
        refused,
    ))
}

/// The order lines named by the reserves and releases of `commands`.
async fn order_lines(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    commands: &[InventoryCommand],
) -> Result<HashMap<LineKey, Line>, sqlx::Error> {
    let named: Vec<&InventoryCommand> = commands
        .iter()
        .filter(|c| c.kind != CommandKind::Restock)
        .collect();
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64, i32, bool)> = sqlx::query_as(
        "SELECT oi.order_id, oi.product_id, oi.quantity, o.status IN ('REJECTED', 'CANCELLED')
         FROM order_items oi JOIN orders o ON o.id = oi.order_id
         WHERE (oi.order_id, oi.product_id) IN (SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[]))",
    )
    .bind(
        named
            .iter()
            .map(|c| c.order_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(named.iter().map(|c| c.product_id.get()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(order, product, quantity, releasable)| {
            Ok((
                (
                    OrderId::from_uuid(order),
                    ProductId::new(product).map_err(decode_err)?,
                ),
                Line {
                    quantity,
                    releasable,
                },
            ))
        })
        .collect()
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
        recorded: HashMap<LineKey, Recorded>,
    ) -> Vec<Outcome> {
        decide(commands, stock, recorded)
            .iter()
            .map(|d| d.outcome)
            .collect()
    }

    fn restock(id: OrderId, product: i64, quantity: i64) -> InventoryCommand {
        InventoryCommand::restock(
            id,
            pid(product),
            shop_domain::Units::new(quantity).expect("units"),
        )
    }

    #[test]
    fn reserves_in_order_until_stock_runs_out() {
        let orders: Vec<_> = (0..4).map(|_| OrderId::generate()).collect();
        let commands: Vec<_> = orders
            .iter()
            .map(|&o| cmd(CommandKind::Reserve, o, 1, 2))
            .collect();
        let mut stock = HashMap::from([(pid(1), 5)]);
        let outcomes = outcomes(&commands, &mut stock, HashMap::new());
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
        let (a, b, r) = (
            OrderId::generate(),
            OrderId::generate(),
            OrderId::generate(),
        );
        let reserve_a = cmd(CommandKind::Reserve, a, 1, 1);
        let recorded = HashMap::from([
            (
                (b, pid(1)),
                Recorded {
                    reserve: Some(false),
                    ..Recorded::default()
                },
            ),
            (
                (r, pid(1)),
                Recorded {
                    restock: true,
                    ..Recorded::default()
                },
            ),
        ]);
        let commands = [
            reserve_a,
            reserve_a,
            cmd(CommandKind::Reserve, b, 1, 1),
            restock(r, 1, 50),
        ];
        let mut stock = HashMap::from([(pid(1), 10)]);
        let outcomes = outcomes(&commands, &mut stock, recorded);
        assert_eq!(
            outcomes,
            [
                Outcome::Reserved,
                Outcome::Duplicate,
                Outcome::Duplicate,
                Outcome::Duplicate
            ]
        );
        assert_eq!(stock[&pid(1)], 9);
    }

    #[test]
    fn a_release_returns_what_its_reserve_took_and_nothing_else() {
        let (a, b, c) = (
            OrderId::generate(),
            OrderId::generate(),
            OrderId::generate(),
        );
        let recorded = HashMap::from([(
            (a, pid(1)),
            Recorded {
                reserve: Some(true),
                ..Recorded::default()
            },
        )]);
        let commands = [
            // Reserved in an earlier batch: its units come back, once.
            cmd(CommandKind::Release, a, 1, 3),
            cmd(CommandKind::Release, a, 1, 3),
            // Short: nothing comes back.
            cmd(CommandKind::Reserve, b, 1, 9),
            cmd(CommandKind::Release, b, 1, 9),
            // Released before its reserve came: the reserve takes nothing.
            cmd(CommandKind::Release, c, 1, 2),
            cmd(CommandKind::Reserve, c, 1, 2),
            cmd(CommandKind::Reserve, c, 2, 1),
        ];
        let mut stock = HashMap::from([(pid(1), 0)]);
        let outcomes = outcomes(&commands, &mut stock, recorded);
        assert_eq!(
            outcomes,
            [
                Outcome::Released,
                Outcome::Duplicate,
                Outcome::Short { available: 3 },
                Outcome::NothingHeld,
                Outcome::NothingHeld,
                Outcome::Withdrawn,
                Outcome::Short { available: 0 },
            ]
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
        let outcomes = outcomes(&commands, &mut stock, HashMap::new());
        assert_eq!(outcomes, [Outcome::Reserved, Outcome::Released]);
        assert_eq!(stock[&pid(1)], 4, "conservation");
    }

    #[test]
    fn restocks_add_units_up_to_the_ceiling() {
        let order = OrderId::generate();
        let commands = [
            cmd(CommandKind::Reserve, order, 1, 5),
            restock(OrderId::generate(), 1, 5),
            cmd(CommandKind::Reserve, order, 2, 1),
            restock(OrderId::generate(), 2, 1_000_000),
        ];
        let mut stock = HashMap::from([(pid(1), 0), (pid(2), MAX_STOCK - 10)]);
        let outcomes = outcomes(&commands, &mut stock, HashMap::new());
        assert_eq!(
            outcomes,
            [
                Outcome::Short { available: 0 },
                Outcome::Restocked,
                Outcome::Reserved,
                Outcome::Overfull {
                    available: MAX_STOCK - 11
                },
            ]
        );
        assert_eq!(stock[&pid(1)], 5);
        assert_eq!(stock[&pid(2)], MAX_STOCK - 11);
    }

    #[test]
    fn commands_naming_nothing_they_may_change_are_refused() {
        let order = OrderId::generate();
        let held = |quantity, releasable| {
            Some(Line {
                quantity,
                releasable,
            })
        };
        let reserve = cmd(CommandKind::Reserve, order, 1, 2);
        assert_eq!(refusal(&reserve, true, held(2, false)), None);
        let unknown = refusal(&reserve, false, held(2, false)).expect("refused");
        assert!(unknown.contains("unknown product"), "{unknown}");
        let no_line = refusal(&reserve, true, None).expect("refused");
        assert!(no_line.contains("no line"), "{no_line}");
        let other = refusal(&reserve, true, held(3, false)).expect("refused");
        assert!(other.contains("3 units"), "{other}");
        let release = cmd(CommandKind::Release, order, 1, 2);
        assert!(refusal(&release, true, None).is_some());
        assert_eq!(refusal(&release, true, held(2, true)), None);
        let kept = refusal(&release, true, held(2, false)).expect("a confirmed order's units");
        assert!(kept.contains("stay taken"), "{kept}");
        // A restock names no order line: only its product must exist.
        assert_eq!(refusal(&restock(order, 1, 5), true, None), None);
        assert!(refusal(&restock(order, 1, 5), false, None).is_some());
    }
}
