//! A buyer's cancel (the API's `POST /orders/{id}/cancel`), within the caller's transaction: the
//! order row is locked (the lock the checkout worker takes before it decides an order, so a
//! cancel and a decision happen one after the other, never interleaved), marked CANCELLED, and a
//! release command for each of its lines (on its product's lane) and `OrderCancelled` go into
//! the outbox, waking the relays. Each lane gives back exactly what the line holds, whatever came
//! first: an applied reserve's units, nothing for a short one, and a reserve still on its way
//! after the cancel takes nothing.

use crate::outbox::{Outbox, OutboxError};
use chrono::Utc;
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent},
    OrderId, OrderStatus, ProductId, Quantity, UserId, ValidationError,
};
use sqlx::PgConnection;

/// What [`cancel`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// `user` has no such order.
    NoSuchOrder,
    /// The order was CANCELLED already; nothing changed.
    Already,
    /// The order may not be cancelled from this status (REJECTED: nothing was taken); nothing
    /// changed.
    Refused(OrderStatus),
    /// The order was cancelled from this status (PENDING or CONFIRMED).
    Cancelled(OrderStatus),
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("cannot cancel the order")]
    Database(#[from] sqlx::Error),
    #[error("cannot write the cancel's messages")]
    Outbox(#[from] OutboxError),
    /// A stored line holds a value no valid line has: a fault, not the client's.
    #[error("an order line holds an invalid value")]
    Stored(#[from] ValidationError),
    #[error(transparent)]
    Status(#[from] shop_domain::messages::UnknownStatus),
}

/// Cancels `user`'s order `id` if its status allows it, within the caller's transaction (which
/// the caller commits; the relays are woken at its commit).
pub async fn cancel(
    tx: &mut PgConnection,
    id: OrderId,
    user: UserId,
) -> Result<Cancel, CancelError> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM orders WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
    )
    .bind(id.as_uuid())
    .bind(user.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(status) = status else {
        return Ok(Cancel::NoSuchOrder);
    };
    let from = OrderStatus::try_from(status)?;
    if from == OrderStatus::Cancelled {
        return Ok(Cancel::Already);
    }
    if !from.can_become(OrderStatus::Cancelled) {
        return Ok(Cancel::Refused(from));
    }
    let lines: Vec<(i64, i32)> =
        sqlx::query_as("SELECT product_id, quantity FROM order_items WHERE order_id = $1")
            .bind(id.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query(
        "UPDATE orders SET status = $2, cancelled_at = now(),
                completed_at = COALESCE(completed_at, now()), updated_at = now()
         WHERE id = $1",
    )
    .bind(id.as_uuid())
    .bind(OrderStatus::Cancelled.as_str())
    .execute(&mut *tx)
    .await?;
    releases(id, user, &lines)?.insert_and_wake(tx).await?;
    Ok(Cancel::Cancelled(from))
}

/// A release for every line, on its product's lane, and the order's `OrderCancelled`.
fn releases(order: OrderId, user: UserId, lines: &[(i64, i32)]) -> Result<Outbox, CancelError> {
    let mut messages = Outbox::default();
    for &(product, quantity) in lines {
        let product = ProductId::new(product)?;
        let quantity = Quantity::new(quantity.into())?;
        messages.command(&InventoryCommand::new(
            CommandKind::Release,
            order,
            product,
            quantity,
        ))?;
    }
    messages.event(&OrderEvent::cancelled(
        order,
        user,
        Utc::now().timestamp_millis(),
    ))?;
    Ok(messages)
}
