//! A second worker joins, is paused (SIGSTOP) with a batch's transaction open, is resumed
//! (SIGCONT) after the stall, then leaves. Its orders must be taken over within the bound, and
//! the fence must refuse its batch when it comes back.

use super::harness::{fenced_batches, set_stalled, stall_mid_batch, wait_for_split};
use crate::{error::BenchError, system::System};

pub const NAME: &str = "second worker SIGSTOP mid-batch, resumed";

pub async fn inject(system: &mut System) -> Result<(), BenchError> {
    system.start_worker().await?;
    wait_for_split(system).await?;
    stall_mid_batch(system, None).await
}

/// Resumes it, and returns how many of its batches the fence refused; then it leaves.
pub async fn repair(system: &mut System) -> Result<u64, BenchError> {
    set_stalled(system, None, false).await?;
    let fenced = fenced_batches(system).await?;
    system.stop_worker(false).await?;
    Ok(fenced)
}
