//! The worker killed (SIGKILL) while it applies a batch, then started again.

use super::harness::stall_mid_batch;
use crate::{error::BenchError, system::System};

pub const NAME: &str = "worker kill -9 mid-batch, restart";

pub async fn inject(system: &mut System) -> Result<(), BenchError> {
    // Frozen inside a batch (proved), then killed: the kill lands mid-batch.
    stall_mid_batch(system, None).await?;
    system.stop_worker(true).await
}

pub async fn mend(system: &mut System) -> Result<(), BenchError> {
    system.start_worker().await
}
