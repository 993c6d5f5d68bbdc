//! A second worker joins (the partitions rebalance), then leaves with SIGTERM.

use crate::{error::BenchError, system::System};

pub const NAME: &str = "second worker joins, then leaves";

pub async fn inject(system: &mut System) -> Result<(), BenchError> {
    system.start_worker().await
}

pub async fn mend(system: &mut System) -> Result<(), BenchError> {
    system.stop_worker(false).await
}
