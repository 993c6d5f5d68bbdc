//! What the checker reads once traffic has stopped: waiting for the pipeline to settle, then
//! PostgreSQL (through `shop_infra::orders::audit`, and the shoppers over a limit), the Redis
//! stock cache, the order events
//! topic and what the shoppers were answered, gathered into an [`Observed`]; and how long the
//! phase's orders took to be decided.

use super::{
    check::{Observed, StockRow},
    events::order_events,
    seen::Seen,
};
use crate::{env::Environment, error::BenchError, poll, system::System};
use shop_domain::{LineReason, OrderStatus};
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
    let over_limit = over_limit(system).await?;
    let counts_broken = audit::shopper_counts_broken(db).await?.len() as u64;
    let (events, redelivered) = order_events(&env.kafka_brokers, &system.name)?;
    Ok(Observed {
        statuses,
        acked: seen.acked(),
        cancelled: seen.cancelled(),
        duplicated_keys: seen.duplicated(),
        torn_lines,
        stock,
        over_limit,
        counts_broken,
        events,
        redelivered,
        stale_cache,
        settled,
    })
}

/// `(shopper, product)` pairs whose units on CONFIRMED orders exceed the product's
/// `max_per_shopper`, from the orders alone (not from the lanes' counts, which
/// `audit::shopper_counts_broken` holds to the ledger).
async fn over_limit(system: &System) -> Result<u64, BenchError> {
    let over: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT o.user_id, i.product_id, sum(i.quantity) AS units
             FROM orders o JOIN order_items i ON i.order_id = o.id
             WHERE o.status = $1
             GROUP BY o.user_id, i.product_id
         ) held JOIN products p ON p.id = held.product_id
         WHERE held.units > p.max_per_shopper",
    )
    .bind(OrderStatus::Confirmed.as_str())
    .fetch_one(&system.db)
    .await?;
    Ok(u64::try_from(over).unwrap_or(0))
}

/// The drop so far: units on CONFIRMED orders, and lines refused over the shopper's limit.
pub struct DropFigures {
    pub sold: i64,
    pub over_limit_refused: i64,
}

pub async fn drop_figures(system: &System, drop: i64) -> Result<DropFigures, BenchError> {
    let (sold, over_limit_refused): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(i.quantity) FILTER (WHERE o.status = $2), 0)::BIGINT,
                count(*) FILTER (WHERE i.reason_code = $3)
         FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.product_id = $1",
    )
    .bind(drop)
    .bind(OrderStatus::Confirmed.as_str())
    .bind(LineReason::LimitExceeded.as_str())
    .fetch_one(&system.db)
    .await?;
    Ok(DropFigures {
        sold,
        over_limit_refused,
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
