//! PostgreSQL stopped (fast), and started again.

use super::harness::service;
use crate::error::BenchError;

pub const NAME: &str = "PostgreSQL restart";

pub async fn inject() -> Result<(), BenchError> {
    service("postgres-stop").await
}

pub async fn mend() -> Result<(), BenchError> {
    service("postgres-start").await
}
