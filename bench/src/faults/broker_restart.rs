//! The broker stopped, and started again on its durable storage.

use super::harness::service;
use crate::error::BenchError;

pub const NAME: &str = "broker restart";

pub async fn inject() -> Result<(), BenchError> {
    service("broker-stop").await
}

pub async fn mend() -> Result<(), BenchError> {
    service("broker-start").await
}
