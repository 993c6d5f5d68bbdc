//! `POST /orders/{id}/cancel`: the buyer takes back a PENDING or CONFIRMED order.
//!
//! One transaction (`shop_infra::orders::cancel`) locks the order row (the lock the checkout
//! worker takes before it decides an order, so a cancel and a decision happen one after the
//! other, never interleaved), marks it CANCELLED, and puts in the outbox a release command for
//! each of its lines, on its product's lane, and `OrderCancelled`. Each lane gives back exactly
//! what the line holds, whatever came first (`checkout_worker::batch::decide`): an applied
//! reserve's units, nothing for a short one, and a reserve still on its way after the cancel
//! takes nothing. A decision that comes after
//! the cancel leaves the order CANCELLED; a cancel after a rejection is refused, since a
//! rejection already gave everything back.

use crate::{
    error::{ApiError, ErrorBody},
    extract::Path,
    metrics,
    orders::view::{order_id, show_order, OrderDetail},
    sessions::CurrentUser,
    state::AppState,
};
use axum::{extract::State, Json};
use shop_domain::{
    messages::{OrderStatus, OrderStatusChanged},
    OrderId,
};
use shop_infra::{
    cache::announce_statuses,
    orders::cancel::{self, Cancel},
};

/// `POST /orders/{id}/cancel`: cancels the order; its units go back to stock shortly after.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("session" = [])),
    params(("id" = String, Path, description = "Order id (a UUID)")), responses(
    (status = 200, description = "The order, CANCELLED (the same answer when it already was). \
        Its lines show RESERVED until their products' lanes have given the units back \
        (then RELEASED; SHORT and CANCELLED lines held nothing)", body = OrderDetail),
    crate::error::responses::NoSession,
    (status = 404, description = "No such order among this user's", body = ErrorBody),
    (status = 409, description = "`not_cancellable`: the order was REJECTED (nothing was taken)",
        body = ErrorBody),
))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    let id = OrderId::from_uuid(order_id(&id)?);
    let mut tx = state.db.begin().await?;
    match cancel::cancel(&mut tx, id, user.id).await? {
        Cancel::NoSuchOrder => return Err(ApiError::not_found("order")),
        Cancel::Already => {}
        Cancel::Refused(_) => {
            return Err(ApiError::conflict(
                "not_cancellable",
                "the order was rejected: nothing was taken, so there is nothing to cancel",
            ))
        }
        Cancel::Cancelled(from) => {
            tx.commit().await?;
            metrics::cancelled(from);
            announce(&state, id).await;
        }
    }
    Ok(Json(show_order(&state, user.id, id.as_uuid()).await?))
}

/// Tells the order's SSE watchers at once (best effort: they also re-read the order).
async fn announce(state: &AppState, id: OrderId) {
    let update = OrderStatusChanged {
        order_id: id,
        status: OrderStatus::Cancelled,
    };
    if let Err(error) = announce_statuses(&state.redis, &state.keys, &[update]).await {
        shop_infra::metrics::client_error("redis", "announce");
        tracing::warn!(%error, "cancel announcement failed; SSE clients will poll");
    }
}
