//! The worker and the API killed, the broker and Redis stopped, all at once; then everything
//! started again, Redis without the shop's keys.

use super::harness::service;
use crate::{error::BenchError, system::System};

pub const NAME: &str = "combined: worker + API killed, broker + Redis down";

pub async fn inject(system: &mut System) -> Result<(), BenchError> {
    system.stop_worker(true).await?;
    system.kill_api().await?;
    service("broker-stop").await?;
    service("redis-stop").await
}

pub async fn mend(system: &mut System) -> Result<(), BenchError> {
    service("redis-start").await?;
    system.flush_redis().await?;
    service("broker-start").await?;
    system.start_api().await?;
    system.start_worker().await
}
