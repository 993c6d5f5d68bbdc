//! What a seller's two stock changes share, both commands on the product's lane (applied by the
//! checkout worker that owns its partition, among the reserves and releases around it): a restock
//! (`POST /products/{id}/restock`) and an absolute stock (`PATCH /products/{id}` with
//! `available_quantity`, a set). The command goes to the outbox in the caller's transaction
//! ([`queue`]); the request then waits up to [`WAIT`] for the lane's ledger entry
//! ([`wait_for_lane`]), and the caller answers 202 when the lane is slower.

use crate::{error::ApiError, state::AppState};
use shop_domain::messages::InventoryCommand;
use shop_infra::{orders::view, outbox::Outbox};
use sqlx::PgConnection;
use std::time::Duration;
use tokio::time::Instant;

/// How long a request waits for the lane before it answers 202.
pub(crate) const WAIT: Duration = Duration::from_secs(3);
/// How often it looks meanwhile.
const LOOK: Duration = Duration::from_millis(20);

/// What the lane decided about a seller's command, with the product's stock now.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct Decided {
    /// Whether it was applied: a restock past the most a stock may hold is not, nor a set queued
    /// before a newer one that the lane applied first.
    pub applied: bool,
    /// As recorded: a restock's units, a set's count.
    pub quantity: i32,
    pub stock: i32,
}

/// Puts `command` in the outbox, for the product's lane, within the caller's transaction (its
/// row's id is the command's queue position); its commit wakes the relays.
pub(crate) async fn queue(
    tx: &mut PgConnection,
    command: &InventoryCommand,
) -> Result<(), ApiError> {
    let mut messages = Outbox::default();
    messages.command(command)?;
    messages.insert_and_wake(tx).await?;
    Ok(())
}

/// The lane's decision on `command`, if it has made it (its ledger row).
pub(crate) async fn decision(
    state: &AppState,
    command: &InventoryCommand,
) -> Result<Option<Decided>, ApiError> {
    Ok(view::seller_command(
        &state.db,
        command.order_id.as_uuid(),
        command.product_id,
        command.kind,
    )
    .await?)
}

/// Polls for the lane's decision on `command` until it comes or [`WAIT`] passes (`None`).
pub(crate) async fn wait_for_lane(
    state: &AppState,
    command: &InventoryCommand,
) -> Result<Option<Decided>, ApiError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let decided = decision(state, command).await?;
        if decided.is_some() || Instant::now() >= deadline {
            return Ok(decided);
        }
        tokio::time::sleep(LOOK).await;
    }
}
