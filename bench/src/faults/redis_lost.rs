//! Redis stopped, then started with none of the shop's keys (flushed).

use super::harness::service;
use crate::{error::BenchError, system::System};

pub const NAME: &str = "Redis stopped, flushed, restarted";

pub async fn inject() -> Result<(), BenchError> {
    service("redis-stop").await
}

pub async fn mend(system: &System) -> Result<(), BenchError> {
    service("redis-start").await?;
    system.flush_redis().await
}
