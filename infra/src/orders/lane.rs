//! The statements of the worker's lanes (see [`super`]): the products' stock, limits and the queue
//! position of their last seller's set (locked, read in id order, written back with a new
//! version), the inventory ledger (which commands a lane has seen, with each one's queue position
//! and stock change; its insert is [`crate::orders::ledger::record_placed`], shared with the API's
//! synchronous strategies), the stock changes of commands queued after a set ([`queued_after`]),
//! the order lines commands name and what the lane decided for them, and the line counters of
//! their orders. An order whose last line is counted here takes the status its caller
//! decided (`shop_domain::OrderStatus::settled`); [`super::settle`] does what follows.
//!
//! Every function runs inside the caller's transaction. Statuses are bound from
//! [`shop_domain::OrderStatus`] and [`shop_domain::LineStatus`], never spelled in SQL.

use crate::orders::ledger::{self, LedgerEntry, Placement};
use chrono::{DateTime, Utc};
use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    LineReason, LineStatus, OrderId, OrderStatus, ProductId, ShopperLimit, UserId,
};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// One order's line on one product, or one restock or set of a product.
pub type LineKey = (OrderId, ProductId);

/// A value read from the database that the domain refuses (a product id that is not positive,
/// a ledger kind or a status this version does not know), as the decode error sqlx would give.
pub(crate) fn decode_error(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// A ledger row of a kind this worker does not know (written by a newer version).
#[derive(Debug, thiserror::Error)]
#[error("unknown inventory ledger kind {0:?}")]
pub struct UnknownKind(String);

/// The batch's products as a lane finds them under its lock: their stock, the per-shopper limit
/// of those that have one (`max_per_shopper`), and the queue position of the last set applied
/// to those that had one (`stock_set_at_outbox_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locked {
    pub stock: HashMap<ProductId, i64>,
    pub limits: HashMap<ProductId, ShopperLimit>,
    pub set_at: HashMap<ProductId, i64>,
}

/// Locks the products in id order (so lanes and the API's strategies never deadlock on them) and
/// reads their stock, limits and set positions. A product that does not exist is missing from the
/// answer.
pub async fn lock_stock(
    conn: &mut PgConnection,
    products: &[ProductId],
) -> Result<Locked, sqlx::Error> {
    let mut ids: Vec<i64> = products.iter().map(|p| p.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(i64, i32, Option<i32>, Option<i64>)> = sqlx::query_as(
        "SELECT id, available_quantity, max_per_shopper, stock_set_at_outbox_id
         FROM products WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut locked = Locked::default();
    for (id, available, limit, set_at) in rows {
        let id = ProductId::new(id).map_err(decode_error)?;
        locked.stock.insert(id, i64::from(available));
        if let Some(set_at) = set_at {
            locked.set_at.insert(id, set_at);
        }
        if let Some(limit) = limit {
            let limit = ShopperLimit::new(limit.into()).map_err(decode_error)?;
            locked.limits.insert(id, limit);
        }
    }
    Ok(locked)
}

/// A product's stock as a batch leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockWrite {
    pub product: ProductId,
    pub available: i32,
    /// The queue position of the last set applied, when a set of the batch moved it.
    pub set_at: Option<i64>,
}

/// Writes the stock (and set position) of the products a batch changed, raising each one's
/// version. Returns `(product id, available quantity, version)` as written, for the hot inventory
/// view.
pub async fn write_stock(
    conn: &mut PgConnection,
    changed: &[StockWrite],
) -> Result<Vec<(i64, i32, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE products p SET available_quantity = v.q,
                stock_set_at_outbox_id = COALESCE(v.s, p.stock_set_at_outbox_id),
                version = p.version + 1, updated_at = now()
         FROM UNNEST($1::BIGINT[], $2::INT[], $3::BIGINT[]) AS v(id, q, s) WHERE p.id = v.id
         RETURNING p.id, p.available_quantity, p.version",
    )
    .bind(changed.iter().map(|c| c.product.get()).collect::<Vec<_>>())
    .bind(changed.iter().map(|c| c.available).collect::<Vec<_>>())
    .bind(changed.iter().map(|c| c.set_at).collect::<Vec<_>>())
    .fetch_all(conn)
    .await
}

/// The stock changes the ledger recorded for commands of each product queued after a position
/// (`(product, position)`): `(queue position, stock delta)` of its applied rows that have both.
/// A set needs those queued after it that the lane applied before it.
pub async fn queued_after(
    conn: &mut PgConnection,
    after: &[(ProductId, i64)],
) -> Result<HashMap<ProductId, Vec<(i64, i64)>>, sqlx::Error> {
    if after.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64, i32)> = sqlx::query_as(
        "SELECT l.product_id, l.queued, l.stock_delta
         FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS v(p, s)
         JOIN inventory_ledger l ON l.product_id = v.p AND l.queued > v.s
         WHERE l.applied AND l.stock_delta IS NOT NULL",
    )
    .bind(after.iter().map(|a| a.0.get()).collect::<Vec<_>>())
    .bind(after.iter().map(|a| a.1).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    let mut later: HashMap<ProductId, Vec<(i64, i64)>> = HashMap::new();
    for (product, queued, delta) in rows {
        let product = ProductId::new(product).map_err(decode_error)?;
        later
            .entry(product)
            .or_default()
            .push((queued, i64::from(delta)));
    }
    Ok(later)
}

/// One page of every product's stock, after product id `after`, in id order: `(product id,
/// available quantity, version)`.
pub async fn stock_page(
    conn: &mut PgConnection,
    after: i64,
) -> Result<Vec<(i64, i32, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, available_quantity, version FROM products WHERE id > $1 ORDER BY id LIMIT 5000",
    )
    .bind(after)
    .fetch_all(conn)
    .await
}

/// An order line as a lane finds it: the units it holds, whether its order gives them back
/// (REJECTED or CANCELLED), and whose order it is (the shopper a per-shopper limit counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub quantity: i32,
    pub releasable: bool,
    pub shopper: UserId,
}

/// The order lines named by the reserves and releases of `commands` (restocks and sets name
/// none).
pub async fn order_lines(
    conn: &mut PgConnection,
    commands: &[InventoryCommand],
) -> Result<HashMap<LineKey, Line>, sqlx::Error> {
    let named: Vec<&InventoryCommand> = commands.iter().filter(|c| c.kind.names_a_line()).collect();
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let gives_back = [
        OrderStatus::Rejected.as_str(),
        OrderStatus::Cancelled.as_str(),
    ];
    let rows: Vec<(Uuid, i64, i32, bool, i64)> = sqlx::query_as(
        "SELECT oi.order_id, oi.product_id, oi.quantity, o.status = ANY($3), o.user_id
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
    .bind(&gives_back[..])
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(order, product, quantity, releasable, shopper)| {
            let key = (
                OrderId::from_uuid(order),
                ProductId::new(product).map_err(decode_error)?,
            );
            Ok((
                key,
                Line {
                    quantity,
                    releasable,
                    shopper: UserId::new(shopper).map_err(decode_error)?,
                },
            ))
        })
        .collect()
}

/// A command the ledger has seen for a line: its kind, whether it changed the stock, and whether
/// it changed the shopper's count of the product ([`super::shoppers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub line: LineKey,
    pub kind: CommandKind,
    pub applied: bool,
    pub counted: bool,
    /// For a reserve, the product's set position when it was applied.
    pub reserved_under: Option<i64>,
}

/// What the ledger holds for the lines of `commands`.
pub async fn seen(
    conn: &mut PgConnection,
    commands: &[InventoryCommand],
) -> Result<Vec<Seen>, sqlx::Error> {
    let rows: Vec<(Uuid, i64, String, bool, bool, Option<i64>)> = sqlx::query_as(
        "SELECT order_id, product_id, kind, applied, counted, reserved_under FROM inventory_ledger
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
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(order, product, kind, applied, counted, reserved_under)| {
            Ok(Seen {
                line: (
                    OrderId::from_uuid(order),
                    ProductId::new(product).map_err(decode_error)?,
                ),
                kind: CommandKind::parse(&kind).ok_or_else(|| decode_error(UnknownKind(kind)))?,
                applied,
                counted,
                reserved_under,
            })
        })
        .collect()
}

/// A decided command as the ledger records it: whether it was applied, whether it changed its
/// shopper's count of the product, its queue position and what it did to the stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub command: InventoryCommand,
    pub applied: bool,
    pub counted: bool,
    pub queued: Option<i64>,
    pub reserved_under: Option<i64>,
    pub stock_delta: i32,
}

/// Records `decided` commands in the ledger. A command recorded before violates the ledger's
/// primary key: a concurrent lane applying the same command fails here, and rolls back.
pub async fn record(conn: &mut PgConnection, decided: &[Entry]) -> Result<(), sqlx::Error> {
    let entries: Vec<(LedgerEntry, Placement)> = decided
        .iter()
        .map(|d| {
            let entry = LedgerEntry {
                order_id: d.command.order_id.as_uuid(),
                product_id: d.command.product_id.get(),
                kind: d.command.kind,
                quantity: i32::from(d.command.quantity),
                applied: d.applied,
                counted: d.counted,
            };
            let placement = Placement {
                queued: d.queued,
                reserved_under: d.reserved_under,
                stock_delta: Some(d.stock_delta),
            };
            (entry, placement)
        })
        .collect();
    ledger::record_placed(conn, &entries).await
}

/// What a decision writes on its order line: its new status, and for a short line why (its
/// code, and the reason its order shows people) and what the lane saw: the stock, or the units
/// the shopper's limit still allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDecision {
    pub line: LineKey,
    pub status: LineStatus,
    pub reason_code: Option<LineReason>,
    pub reason: Option<String>,
    pub available: Option<i32>,
}

/// Writes the lines' decisions (at most one per line: the caller keeps each line's last).
pub async fn decide_lines(
    conn: &mut PgConnection,
    lines: &[LineDecision],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE order_items oi
         SET status = v.s, reason = v.r, available_at_decision = v.a, reason_code = v.c
         FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::INT[], $6::TEXT[])
             AS v(o, p, s, r, a, c)
         WHERE oi.order_id = v.o AND oi.product_id = v.p",
    )
    .bind(lines.iter().map(|l| l.line.0.as_uuid()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.line.1.get()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.status.as_str()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.reason.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.available).collect::<Vec<_>>())
    .bind(
        lines
            .iter()
            .map(|l| l.reason_code.map(LineReason::as_str))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Lines still PENDING whose reserve was parked (`(line, reason)`) become SHORT with the reason
/// (code [`LineReason::Unprocessable`]), recorded in the ledger as a reserve not applied (so a readable copy arriving later changes
/// nothing). Returns the order of each line decided here, once per line.
pub async fn short_parked_reserves(
    conn: &mut PgConnection,
    lines: &[(LineKey, String)],
) -> Result<Vec<OrderId>, sqlx::Error> {
    let decided: Vec<Uuid> = sqlx::query_scalar(
        "WITH v AS (SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[]) AS v(o, p, r)),
         recorded AS (
             INSERT INTO inventory_ledger (order_id, product_id, kind, quantity, applied)
             SELECT oi.order_id, oi.product_id, $4, oi.quantity, false
             FROM order_items oi JOIN v ON oi.order_id = v.o AND oi.product_id = v.p
             WHERE oi.status = $5
             ON CONFLICT ON CONSTRAINT inventory_ledger_pkey DO NOTHING
             RETURNING order_id, product_id
         )
         UPDATE order_items oi SET status = $6, reason = v.r, available_at_decision = 0,
                                   reason_code = $7
         FROM recorded JOIN v ON v.o = recorded.order_id AND v.p = recorded.product_id
         WHERE oi.order_id = recorded.order_id AND oi.product_id = recorded.product_id
         RETURNING oi.order_id",
    )
    .bind(lines.iter().map(|l| l.0 .0.as_uuid()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.0 .1.get()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.1.clone()).collect::<Vec<_>>())
    .bind(CommandKind::Reserve.as_str())
    .bind(LineStatus::Pending.as_str())
    .bind(LineStatus::Short.as_str())
    .bind(LineReason::Unprocessable.as_str())
    .fetch_all(conn)
    .await?;
    Ok(decided.into_iter().map(OrderId::from_uuid).collect())
}

/// An order's line counters as a lane finds them, under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub pending_lines: i32,
    pub short_lines: i32,
}

/// Locks `orders` in id order (so that lanes of different partitions lock orders they share in
/// one order and cannot deadlock) and reads their status and line counters.
pub async fn lock_orders(
    conn: &mut PgConnection,
    orders: &[OrderId],
) -> Result<Vec<Tally>, sqlx::Error> {
    let rows: Vec<(Uuid, String, i32, i32)> = sqlx::query_as(
        "SELECT id, status, pending_lines, short_lines FROM orders WHERE id = ANY($1)
         ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(orders.iter().map(OrderId::as_uuid).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, status, pending_lines, short_lines)| {
            Ok(Tally {
                order_id: OrderId::from_uuid(id),
                status: OrderStatus::try_from(status).map_err(decode_error)?,
                pending_lines,
                short_lines,
            })
        })
        .collect()
}

/// Lines of one order decided in one step: how many, how many of them short, and the status the
/// order takes if they were its last (decided by the caller; `None` while lines remain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub order_id: OrderId,
    pub decided: i32,
    pub short: i32,
    pub settles_as: Option<OrderStatus>,
}

/// A PENDING order after its lines were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub order_id: OrderId,
    pub user_id: UserId,
    /// Lines still undecided: 0 when this count decided its last one.
    pub pending_lines: i32,
    pub created_at: DateTime<Utc>,
}

/// Counts decided and short lines on their PENDING orders (locked first with [`lock_orders`]), and
/// stores the status given for those whose last line this decided, with their completion time.
/// Orders no longer PENDING (cancelled meanwhile) are left as they are and not returned.
pub async fn count_lines(
    conn: &mut PgConnection,
    counts: &[Count],
) -> Result<Vec<Counted>, sqlx::Error> {
    let rows: Vec<(Uuid, i64, i32, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE orders o SET pending_lines = o.pending_lines - v.d, short_lines = o.short_lines + v.s,
                status = COALESCE(v.st, o.status),
                completed_at = CASE WHEN o.pending_lines = v.d THEN now() END,
                updated_at = now()
         FROM UNNEST($1::UUID[], $2::INT[], $3::INT[], $4::TEXT[]) AS v(id, d, s, st)
         WHERE o.id = v.id AND o.status = $5
         RETURNING o.id, o.user_id, o.pending_lines, o.created_at",
    )
    .bind(counts.iter().map(|c| c.order_id.as_uuid()).collect::<Vec<_>>())
    .bind(counts.iter().map(|c| c.decided).collect::<Vec<_>>())
    .bind(counts.iter().map(|c| c.short).collect::<Vec<_>>())
    .bind(
        counts
            .iter()
            .map(|c| c.settles_as.map(OrderStatus::as_str))
            .collect::<Vec<_>>(),
    )
    .bind(OrderStatus::Pending.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, user_id, pending_lines, created_at)| {
            Ok(Counted {
                order_id: OrderId::from_uuid(id),
                user_id: UserId::new(user_id).map_err(decode_error)?,
                pending_lines,
                created_at,
            })
        })
        .collect()
}
