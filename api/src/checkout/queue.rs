//! The `queue` strategy: the order is recorded PENDING, with one reserve command per line and
//! `OrderCreated` in the outbox, in one statement (the intake batches concurrent ones). Once that
//! commits the order cannot be lost: the relay in the checkout worker moves the outbox to Kafka
//! whether or not this process is still alive, and the worker owning each product's partition
//! decides the line.

use crate::{
    checkout::order::{replay, Placed, TakeStock},
    error::ApiError,
    state::AppState,
};
use shop_domain::messages::{CommandKind, InventoryCommand, OrderStatus};
use shop_infra::{
    orders::place::{NewOrder, Written},
    outbox::Outbox,
};

/// `queue`.
pub(crate) struct Queue;

impl TakeStock for Queue {
    async fn place(&self, state: &AppState, order: &NewOrder) -> Result<Placed, ApiError> {
        let mut messages = Outbox::default();
        for line in &order.lines {
            messages.command(&InventoryCommand::new(
                CommandKind::Reserve,
                order.id,
                line.product,
                line.quantity,
            ))?;
        }
        messages.event(&order.created_event())?;

        // One statement, committed on its own (no BEGIN and COMMIT round trips), shared with the
        // checkouts that arrive meanwhile.
        let written = state.intake.write(order, &messages).await?;
        if written != Written::Placed {
            return replay(state, order, written).await;
        }
        tracing::info!(order_id = %order.id, lines = order.lines.len(), "checkout accepted");
        Ok(Placed::new(order, OrderStatus::Pending))
    }
}
