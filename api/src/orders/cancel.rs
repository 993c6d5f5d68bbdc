//! `POST /orders/{id}/cancel`: the buyer takes back a PENDING or CONFIRMED order.
//!
//! One transaction locks the order row (the lock the checkout worker takes before it decides an
//! order, so a cancel and a decision happen one after the other, never interleaved), marks it
//! CANCELLED, and puts in the outbox a release command for each of its lines, on its product's
//! lane, and `OrderCancelled`. Each lane gives back exactly what the line holds, whatever came
//! first (`checkout_worker::batch::decide`): an applied reserve's units, nothing for a short one,
//! and a reserve still on its way after the cancel takes nothing. A decision that comes after
//! the cancel leaves the order CANCELLED; a cancel after a rejection is refused, since a
//! rejection already gave everything back.

use super::{order_id, show_order, OrderDetail};
use crate::{
    error::{ApiError, ErrorBody},
    extract::Path,
    metrics,
    sessions::CurrentUser,
    startup::AppState,
};
use axum::{extract::State, Json};
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent, OrderStatus, OrderStatusChanged},
    OrderId, ProductId, Quantity,
};
use shop_infra::{
    cache::announce_statuses,
    outbox::{self, Outbox},
};
use uuid::Uuid;

/// `POST /orders/{id}/cancel`: cancels the order; its units go back to stock shortly after.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("session" = [])),
    params(("id" = String, Path, description = "Order id (a UUID)")), responses(
    (status = 200, description = "The order, CANCELLED (the same answer when it already was). \
        Its lines show RESERVED until their products' lanes have given the units back \
        (then RELEASED; SHORT and CANCELLED lines held nothing)", body = OrderDetail),
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 404, description = "No such order among this user's", body = ErrorBody),
    (status = 409, description = "`not_cancellable`: the order was REJECTED (nothing was taken)",
        body = ErrorBody),
))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    let id = order_id(&id)?;
    let mut tx = state.db.begin().await?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM orders WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
    )
    .bind(id)
    .bind(user.id.get())
    .fetch_optional(&mut *tx)
    .await?;
    let status = status.ok_or_else(|| ApiError::not_found("order"))?;
    match OrderStatus::try_from(status)? {
        OrderStatus::Cancelled => {}
        OrderStatus::Rejected => {
            return Err(ApiError::conflict(
                "not_cancellable",
                "the order was rejected: nothing was taken, so there is nothing to cancel",
            ))
        }
        from @ (OrderStatus::Pending | OrderStatus::Confirmed) => {
            let lines: Vec<(i64, i32)> =
                sqlx::query_as("SELECT product_id, quantity FROM order_items WHERE order_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            sqlx::query(
                "UPDATE orders SET status = 'CANCELLED', cancelled_at = now(),
                        completed_at = COALESCE(completed_at, now()), updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            releases(OrderId::from_uuid(id), user.id, &lines)?
                .insert_and_wake(&mut tx)
                .await?;
            tx.commit().await?;
            metrics::cancelled(from);
            announce(&state, id).await;
        }
    }
    Ok(Json(show_order(&state, user.id, id).await?))
}

/// A release for every line, on its product's lane, and the order's `OrderCancelled`.
fn releases(
    order: OrderId,
    user: shop_domain::UserId,
    lines: &[(i64, i32)],
) -> Result<Outbox, ApiError> {
    let mut messages = Outbox::default();
    // The rows were written from valid values; anything else is a fault, not the client's.
    let stored = |e: shop_domain::ValidationError| ApiError::Internal(e.into());
    for &(product, quantity) in lines {
        let product = ProductId::new(product).map_err(stored)?;
        let quantity = Quantity::new(quantity.into()).map_err(stored)?;
        let command = InventoryCommand::new(CommandKind::Release, order, product, quantity);
        messages.push(outbox::INVENTORY, product.to_string(), &command)?;
    }
    let event = OrderEvent::cancelled(order, user, chrono::Utc::now().timestamp_millis());
    messages.push(outbox::ORDER_EVENTS, order.to_string(), &event)?;
    Ok(messages)
}

/// Tells the order's SSE watchers at once (best effort: they also re-read the order).
async fn announce(state: &AppState, id: Uuid) {
    let update = OrderStatusChanged {
        order_id: OrderId::from_uuid(id),
        status: OrderStatus::Cancelled,
    };
    if let Err(error) = announce_statuses(&state.redis, &state.keys, &[update]).await {
        shop_infra::metrics::client_error("redis", "announce");
        tracing::warn!(%error, "cancel announcement failed; SSE clients will poll");
    }
}
