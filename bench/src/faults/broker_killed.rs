//! The broker killed (SIGKILL): no clean shutdown, whatever it had not written is gone. It is
//! started again on its durable storage as after a restart (`broker_restart::mend`).

use super::harness::service;
use crate::error::BenchError;

pub const NAME: &str = "broker killed (SIGKILL)";

pub async fn inject() -> Result<(), BenchError> {
    service("broker-kill").await
}
