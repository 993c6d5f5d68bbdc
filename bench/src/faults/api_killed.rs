//! The relay stopped (the worker killed), orders accepted into the outbox, then the API killed:
//! orders accepted and not yet handed to Kafka, with no process left that accepted them. Both
//! are started again.

use crate::{error::BenchError, system::System};
use std::time::Duration;

pub const NAME: &str = "API kill -9 before hand-off to Kafka";

pub async fn inject(system: &mut System) -> Result<(), BenchError> {
    system.stop_worker(true).await?;
    // Checkouts keep being accepted into the outbox, with nothing relaying them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    system.kill_api().await
}

pub async fn mend(system: &mut System) -> Result<(), BenchError> {
    system.start_api().await?;
    system.start_worker().await
}
