//! What a run of checkouts did, read from PostgreSQL: waiting until the pipeline has settled for
//! a set of users ([`settle`]), and their orders' outcomes and latencies ([`order_figures`]).
//! Used by the scenarios, `scale` and `idle`.

use crate::{cpu::Usage, error::BenchError, poll, profile::StatementCost};
use serde::Serialize;
use shop_domain::OrderStatus;
use shop_infra::orders::audit;
use sqlx::PgPool;
use std::time::Duration;

/// How long the pipeline may take to settle after a scenario.
const SETTLE: Duration = Duration::from_secs(180);

/// What a checkout scenario did to orders and stock, read from PostgreSQL after it settled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckoutFigures {
    pub placed: u64,
    pub out_of_stock: u64,
    pub contention: u64,
    pub failed: u64,
    pub confirmed: i64,
    pub rejected: i64,
    /// Confirmed orders over the time from the first order to the last confirmation.
    pub confirmed_per_sec: f64,
    /// Accepted → CONFIRMED/REJECTED, from the orders' own timestamps.
    pub terminal_p50_ms: f64,
    pub terminal_p99_ms: f64,
    /// Units sold beyond a product's stock (must be 0), over all products after this run.
    pub oversold_units: i64,
    /// Products for which initial ≠ available + confirmed units (must be 0).
    pub conservation_violations: i64,
    /// Each part's CPU from the first checkout until the pipeline settled.
    pub cpu: Usage,
    /// PostgreSQL CPU milliseconds per accepted (or, synchronously, confirmed) order over
    /// that interval.
    pub postgres_ms_per_order: f64,
    /// The statements that took most of PostgreSQL's execution time over that interval (empty
    /// when the server does not keep `pg_stat_statements`).
    pub statements: Vec<StatementCost>,
}

/// Waits until these users' orders are decided, every release applied and the outbox empty
/// ([`audit::unsettled_of`]); an error after three minutes.
pub async fn settle(db: &PgPool, users: &[i64]) -> Result<(), BenchError> {
    let settled = poll::until(SETTLE, Duration::from_millis(100), || async move {
        let unsettled = audit::unsettled_of(db, users).await?;
        Ok::<_, BenchError>(if unsettled.is_settled() {
            Ok(())
        } else {
            Err(unsettled)
        })
    })
    .await?;
    settled.map_err(|unsettled| BenchError::Unsettled(unsettled.total()))
}

/// Outcomes and accepted → terminal latencies of these users' orders.
pub async fn order_figures(db: &PgPool, users: &[i64]) -> Result<CheckoutFigures, BenchError> {
    let row: (i64, i64, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = $2),
                count(*) FILTER (WHERE status = $3),
                extract(epoch FROM max(completed_at) FILTER (WHERE status = $2)
                                  - min(created_at))::FLOAT8,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at))
         FROM orders WHERE user_id = ANY($1)",
    )
    .bind(users)
    .bind(OrderStatus::Confirmed.as_str())
    .bind(OrderStatus::Rejected.as_str())
    .fetch_one(db)
    .await?;
    let (confirmed, rejected, span, p50, p99) = row;
    Ok(CheckoutFigures {
        confirmed,
        rejected,
        confirmed_per_sec: span
            .filter(|s| *s > 0.0)
            .map_or(0.0, |s| confirmed as f64 / s),
        terminal_p50_ms: p50.unwrap_or(0.0) * 1000.0,
        terminal_p99_ms: p99.unwrap_or(0.0) * 1000.0,
        ..CheckoutFigures::default()
    })
}
