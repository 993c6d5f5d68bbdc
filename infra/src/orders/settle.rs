//! What follows an order's last line being decided (see [`super`]): its status was stored with
//! its counters ([`super::lane::count_lines`]); here its terminal event goes to the outbox, and a
//! REJECTED order's lines go back to its buyer's cart (checkout took them from it) while release
//! commands for its reserved lines go to the outbox, each to its product's lane. Also the count
//! of orders still waiting for that, for the worker's gauges.
//!
//! Every function runs inside the caller's transaction. Statuses are bound from
//! [`shop_domain::OrderStatus`] and [`shop_domain::LineStatus`], never spelled in SQL.

use super::lane::decode_error;
use crate::outbox::{Outbox, OutboxError};
use chrono::{DateTime, Utc};
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent, ShortLine},
    LineStatus, OrderId, OrderStatus, ProductId, Quantity, UserId,
};
use sqlx::PgConnection;
use uuid::Uuid;

/// An order that reached its terminal status (CONFIRMED or REJECTED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
}

/// An outbox failure as the `sqlx::Error` the order store's callers classify (retry or not): a
/// message that cannot be encoded as a decode error.
pub fn outbox_error(e: OutboxError) -> sqlx::Error {
    match e {
        OutboxError::Database(e) => e,
        OutboxError::Encode(e) => decode_error(e),
    }
}

/// Writes what follows `settled` orders' terminal status: the REJECTED ones' lines back to the
/// carts, then in one outbox row, order by order, a REJECTED order's release commands and each
/// order's terminal event (a REJECTED one names its short lines).
pub async fn settle(conn: &mut PgConnection, settled: &[Settled]) -> Result<(), sqlx::Error> {
    if settled.is_empty() {
        return Ok(());
    }
    let now_ms = Utc::now().timestamp_millis();
    let rejected: Vec<Uuid> = settled
        .iter()
        .filter(|s| s.status == OrderStatus::Rejected)
        .map(|s| s.order_id.as_uuid())
        .collect();
    return_to_carts(conn, &rejected).await?;
    let lines = decided_lines(conn, &rejected).await?;
    let mut messages = Outbox::default();
    for order in settled {
        let event = match order.status {
            OrderStatus::Confirmed => OrderEvent::confirmed(order.order_id, order.user_id, now_ms),
            _ => {
                let mut short_lines = Vec::new();
                for line in lines.iter().filter(|l| l.order_id == order.order_id) {
                    match line.available_at_decision {
                        Some(available) => short_lines.push(ShortLine {
                            product_id: line.product_id,
                            requested: line.quantity.get(),
                            available: available.into(),
                        }),
                        // Reserved: compensate on the product's own partition.
                        None => messages
                            .command(&InventoryCommand::new(
                                CommandKind::Release,
                                order.order_id,
                                line.product_id,
                                line.quantity,
                            ))
                            .map_err(outbox_error)?,
                    }
                }
                OrderEvent::rejected(order.order_id, order.user_id, short_lines, now_ms)
            }
        };
        messages.event(&event).map_err(outbox_error)?;
    }
    messages.insert(conn).await.map_err(outbox_error)
}

/// Rejected orders' lines go back to their buyers' carts (checkout took them out); a line the
/// buyer added again meanwhile, or that several rejected orders share, grows by each order's
/// quantity, up to the line limit.
async fn return_to_carts(conn: &mut PgConnection, rejected: &[Uuid]) -> Result<(), sqlx::Error> {
    if rejected.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO cart_items (user_id, product_id, quantity)
         SELECT o.user_id, oi.product_id, LEAST(sum(oi.quantity), $2)
         FROM orders o JOIN order_items oi ON oi.order_id = o.id
         WHERE o.id = ANY($1)
         GROUP BY o.user_id, oi.product_id
         ON CONFLICT ON CONSTRAINT cart_items_pkey DO UPDATE
         SET quantity = LEAST(cart_items.quantity + EXCLUDED.quantity, $2)",
    )
    .bind(rejected)
    .bind(i32::try_from(shop_domain::MAX_LINE_QUANTITY).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// A decided line of a rejected order: reserved (no `available_at_decision`) or short.
struct DecidedLine {
    order_id: OrderId,
    product_id: ProductId,
    quantity: Quantity,
    available_at_decision: Option<i32>,
}

/// The RESERVED and SHORT lines of the `rejected` orders, by order and product.
async fn decided_lines(
    conn: &mut PgConnection,
    rejected: &[Uuid],
) -> Result<Vec<DecidedLine>, sqlx::Error> {
    if rejected.is_empty() {
        return Ok(Vec::new());
    }
    let statuses = [LineStatus::Reserved.as_str(), LineStatus::Short.as_str()];
    let rows: Vec<(Uuid, i64, i32, Option<i32>)> = sqlx::query_as(
        "SELECT order_id, product_id, quantity, available_at_decision FROM order_items
         WHERE order_id = ANY($1) AND status = ANY($2) ORDER BY order_id, product_id",
    )
    .bind(rejected)
    .bind(&statuses[..])
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(order, product, quantity, available_at_decision)| {
            Ok(DecidedLine {
                order_id: OrderId::from_uuid(order),
                product_id: ProductId::new(product).map_err(decode_error)?,
                quantity: Quantity::new(quantity.into()).map_err(decode_error)?,
                available_at_decision,
            })
        })
        .collect()
}

/// What waits: rows in the outbox, PENDING orders, and the oldest one's age in seconds (0 when
/// there is none).
pub async fn backlog(conn: &mut PgConnection) -> Result<(i64, i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox),
                count(*),
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::FLOAT8, 0)
         FROM orders WHERE status = $1",
    )
    .bind(OrderStatus::Pending.as_str())
    .fetch_one(conn)
    .await
}
