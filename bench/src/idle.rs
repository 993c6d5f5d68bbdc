//! `shop-bench idle`: what the whole shop costs while nobody shops, and how fast the first order
//! after the quiet is decided.
//!
//! A fresh system (API and worker; PostgreSQL, Redis and the broker shared) gets one order, so
//! nothing is cold, then no traffic at all for the quiet period, measured from `/proc`; then one
//! order, timed from its acceptance to its decision by its own timestamps.

use crate::{
    cpu::{Reading, Usage},
    env::Environment,
    error::BenchError,
    pipeline::{order_figures, settle},
    shop::{CheckoutAnswer, Shop},
    system::System,
};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct IdleReport {
    /// Each part's CPU over the quiet period.
    pub usage: Usage,
    /// The shop's parts together (the load generator excluded), in percent of one core.
    pub shop_percent_of_core: f64,
    /// The first order after the quiet, accepted → decided.
    pub first_order_ms: f64,
}

pub async fn measure(env: &Environment, quiet: Duration) -> Result<IdleReport, BenchError> {
    let system = System::start_notifying(env, "queue").await?;
    let result = run(&system, quiet).await;
    let stopped = system.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

/// Places one order for `buyer` and waits until it is decided; returns accepted → decided in ms.
async fn one_order(
    shop: &Shop,
    system: &System,
    (user, token): &(i64, String),
    product: i64,
) -> Result<f64, BenchError> {
    shop.cart_add(token, product, 1).await?;
    if !matches!(shop.checkout(token).await, CheckoutAnswer::Placed) {
        return Err(BenchError::Unexpected(
            "the idle probe's checkout was refused".into(),
        ));
    }
    settle(&system.db, &[*user]).await?;
    // The user's latest order: its own accepted → decided time.
    let ms: f64 = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM completed_at - created_at) * 1000)::FLOAT8
         FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(user)
    .fetch_one(&system.db)
    .await?;
    Ok(ms)
}

async fn run(system: &System, quiet: Duration) -> Result<IdleReport, BenchError> {
    let shop = Shop::new(&system.api).with_codes(system.codes());
    let (_, seller) = shop.register(0).await?;
    let product = shop
        .create_products(&seller, "idle", 1, 1_000_000)
        .await?
        .first()
        .copied()
        .ok_or_else(|| BenchError::Setup("no product".into()))?;
    let buyer = shop.register(1).await?;
    one_order(&shop, system, &buyer, product).await?;
    let before = Reading::now();
    tokio::time::sleep(quiet).await;
    let usage = before.until(&Reading::now());
    let first_order_ms = one_order(&shop, system, &buyer, product).await?;
    // Every order of the run is decided: nothing was lost in the quiet.
    let figures = order_figures(&system.db, &[buyer.0]).await?;
    if figures.confirmed != 2 {
        return Err(BenchError::Unexpected(format!(
            "{} of 2 orders confirmed",
            figures.confirmed
        )));
    }
    let shop_percent_of_core = usage
        .percent_of_core
        .iter()
        .filter(|(part, _)| **part != "load generator")
        .map(|(_, share)| share)
        .sum();
    Ok(IdleReport {
        usage,
        shop_percent_of_core,
        first_order_ms,
    })
}

/// The report, in Markdown.
pub fn table(report: &IdleReport) -> String {
    let mut out = format!(
        "Idle for {:.0} s: the shop used {:.1} % of one core; the first order after it was decided in {:.0} ms.\n\n| part | % of one core |\n|---|---:|\n",
        report.usage.seconds, report.shop_percent_of_core, report.first_order_ms
    );
    for (part, share) in &report.usage.percent_of_core {
        out.push_str(&format!("| {part} | {share:.2} |\n"));
    }
    out
}
