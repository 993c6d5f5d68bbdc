//! What the checker reads once traffic has stopped: waiting for the pipeline to settle, then
//! PostgreSQL (through `shop_infra::orders::audit`), the Redis stock cache, the order events
//! topic and what the shoppers were answered, gathered into an [`Observed`]; and how long the
//! phase's orders took to be decided.

use super::{
    check::{Observed, StockRow},
    events::order_events,
    seen::Seen,
};
use crate::{env::Environment, error::BenchError, poll, system::System};
use shop_infra::orders::audit::{self, ProductStock};
use std::{collections::HashMap, time::Duration};

/// Waits until no order is PENDING, the outbox is empty and every rejected or cancelled order's
/// lines have given their units back (those release commands travel after the order is decided
/// or cancelled); false if `bound` passes first. A failed query counts as not settled.
pub async fn settle(system: &System, bound: Duration) -> Result<bool, BenchError> {
    let settled = poll::until(bound, Duration::from_millis(100), || async move {
        Ok::<_, BenchError>(match audit::unsettled(&system.db).await {
            Ok(unsettled) if unsettled.is_settled() => Ok(()),
            _ => Err(()),
        })
    })
    .await?;
    Ok(settled.is_ok())
}

/// Everything the checker looks at, with `initial` (each product's stock when listed, plus
/// restocks) to hold the stock to.
pub async fn observe(
    system: &System,
    env: &Environment,
    initial: &HashMap<i64, i64>,
    seen: &Seen,
    settled: bool,
) -> Result<Observed, BenchError> {
    let db = &system.db;
    let statuses = audit::order_statuses(db).await?;
    let torn_lines = audit::torn_lines(db).await?;
    let products = audit::product_stock(db).await?;
    let stock = products
        .iter()
        .map(|p| StockRow {
            initial: initial.get(&p.product).copied().unwrap_or(p.available),
            available: p.available,
            sold: p.confirmed_units,
            ledger: p.ledger_units,
        })
        .collect();
    let stale_cache = stale_stock(system, &products).await?;
    let (events, redelivered) = order_events(&env.kafka_brokers, &system.name)?;
    Ok(Observed {
        statuses,
        acked: seen.acked(),
        cancelled: seen.cancelled(),
        duplicated_keys: seen.duplicated(),
        torn_lines,
        stock,
        events,
        redelivered,
        stale_cache,
        settled,
    })
}

/// Hot-stock entries (`version|quantity`) that claim PostgreSQL's version or a newer one but not
/// its quantity. Older entries are ignored by readers, and missing ones (after a flush) too.
async fn stale_stock(system: &System, products: &[ProductStock]) -> Result<u64, BenchError> {
    let versions: HashMap<i64, i64> =
        sqlx::query_as::<_, (i64, i64)>("SELECT id, version FROM products")
            .fetch_all(&system.db)
            .await?
            .into_iter()
            .collect();
    let mut redis = system.redis.clone();
    let mut stale = 0;
    for &ProductStock {
        product: id,
        available,
        ..
    } in products
    {
        let key = format!("{}stock:{id}", system.prefix());
        let entry: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut redis).await?;
        let Some((version, quantity)) = entry.as_deref().and_then(|e| e.split_once('|')) else {
            continue;
        };
        let (Ok(version), Ok(quantity)) = (version.parse::<i64>(), quantity.parse::<i64>()) else {
            stale += 1;
            continue;
        };
        if version >= versions.get(&id).copied().unwrap_or(0) && quantity != available {
            stale += 1;
        }
    }
    Ok(stale)
}

/// Of the orders accepted since `since` (PostgreSQL's clock): the slowest accepted → decided, in
/// seconds, and how many took longer than `bound`.
pub async fn decision_times(
    system: &System,
    since: chrono::DateTime<chrono::Utc>,
    bound: Duration,
) -> Result<(f64, u64), BenchError> {
    let (slowest, over): (f64, i64) = sqlx::query_as(
        "SELECT COALESCE(max(EXTRACT(EPOCH FROM completed_at - created_at)), 0)::FLOAT8,
                count(*) FILTER (WHERE completed_at - created_at > make_interval(secs => $2))
         FROM orders WHERE created_at >= $1",
    )
    .bind(since)
    .bind(bound.as_secs_f64())
    .fetch_one(&system.db)
    .await?;
    Ok((slowest, u64::try_from(over).unwrap_or(0)))
}
