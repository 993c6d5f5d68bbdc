//! The `queue` strategy: the order is recorded PENDING, with one reserve command per line and
//! `OrderCreated` in the outbox, in one statement ([`super::intake`] batches concurrent ones).
//! Once that commits the order cannot be lost: the relay in the checkout worker moves the outbox
//! to Kafka whether or not this process is still alive, and the worker owning each product's
//! partition decides the line.

use super::{replay, NewOrder, Placed, Written};
use crate::{error::ApiError, startup::AppState};
use shop_domain::messages::{CommandKind, InventoryCommand, OrderStatus};
use shop_infra::outbox::{self, Outbox};

pub(super) async fn hand_off(state: &AppState, order: &NewOrder) -> Result<Placed, ApiError> {
    let mut messages = Outbox::default();
    for line in &order.lines {
        let command =
            InventoryCommand::new(CommandKind::Reserve, order.id, line.product, line.quantity);
        messages.push(outbox::INVENTORY, line.product.to_string(), &command)?;
    }
    messages.push(
        outbox::ORDER_EVENTS,
        order.id.to_string(),
        &order.created_event(),
    )?;

    // One statement, committed on its own (no BEGIN and COMMIT round trips), shared with the
    // checkouts that arrive meanwhile.
    let written = state.intake.write(order, &messages).await?;
    if written != Written::Placed {
        return replay(state, order, written).await;
    }
    tracing::info!(order_id = %order.id, lines = order.lines.len(), "checkout accepted");
    Ok(Placed {
        order_id: order.id.as_uuid(),
        status: OrderStatus::Pending,
        replayed: false,
    })
}
