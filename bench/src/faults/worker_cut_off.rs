//! A second worker, reaching PostgreSQL through a [`Proxy`], joins and is cut off from it
//! (half-open: its connections stay, no bytes pass) with a batch's transaction open; the cut is
//! mended after the stall, then the worker leaves. As for a paused worker, its orders must be
//! taken over within the bound and the fence must refuse its batch; its `/healthz` must say it
//! is cut off.

use super::harness::{fenced_batches, set_stalled, stall_mid_batch, wait_for_split};
use crate::{error::BenchError, proxy::Proxy, system::System};

pub const NAME: &str = "second worker cut off from PostgreSQL mid-batch, mended";

/// Starts the worker behind a proxy kept in `cut`, and cuts it off mid-batch.
pub async fn inject(system: &mut System, cut: &mut Option<Proxy>) -> Result<(), BenchError> {
    let proxy = cut.insert(Proxy::start(system.database_addr()?).await?);
    system.start_worker_behind(proxy).await?;
    wait_for_split(system).await?;
    stall_mid_batch(system, Some(proxy)).await
}

/// Mends the cut, and returns how many of its batches the fence refused; then it leaves and its
/// proxy goes.
pub async fn repair(system: &mut System, cut: &mut Option<Proxy>) -> Result<u64, BenchError> {
    set_stalled(system, cut.as_ref(), false).await?;
    let fenced = fenced_batches(system).await?;
    system.stop_worker(false).await?;
    *cut = None;
    Ok(fenced)
}
