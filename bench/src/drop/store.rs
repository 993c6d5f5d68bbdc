//! What the stores say once the drop has settled: PostgreSQL for the units sold, the shoppers
//! over the limit and the last decision; the inventory topic for the order the queue served the
//! orders in (the reserve records on the drop's partition, which its lane applies in offset
//! order: the ledger keeps each command's queue position, `queued`, not its offset).

use crate::error::BenchError;
use inventory_partitioner::partition_for;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig, Message, Offset, TopicPartitionList,
};
use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    OrderStatus, ProductId,
};
use shop_infra::orders::audit;
use sqlx::PgPool;
use std::{collections::HashSet, time::Duration};
use uuid::Uuid;

/// The drop's stock after the sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// Units on CONFIRMED orders.
    pub sold: i64,
    /// Units sold beyond the initial stock, plus stock below zero (must be 0).
    pub oversold: i64,
}

/// Units sold of `drop` listed with `units`, from its CONFIRMED orders.
pub async fn stock(db: &PgPool, drop: i64, units: i64) -> Result<Stock, BenchError> {
    let row = audit::product_stock(db)
        .await?
        .into_iter()
        .find(|p| p.product == drop)
        .ok_or_else(|| BenchError::Unexpected(format!("product {drop} is gone")))?;
    Ok(Stock {
        sold: row.confirmed_units,
        oversold: (row.confirmed_units - units).max(0) + (-row.available).max(0),
    })
}

/// Shoppers whose CONFIRMED orders hold more than `limit` units of `drop` together (must be 0).
pub async fn over_limit(db: &PgPool, drop: i64, limit: i64) -> Result<u64, BenchError> {
    let over: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT o.user_id FROM orders o JOIN order_items i ON i.order_id = o.id
             WHERE o.status = $1 AND i.product_id = $2
             GROUP BY o.user_id HAVING sum(i.quantity) > $3
         ) over_limit",
    )
    .bind(OrderStatus::Confirmed.as_str())
    .bind(drop)
    .bind(limit)
    .fetch_one(db)
    .await?;
    Ok(u64::try_from(over).unwrap_or(0))
}

/// When the last order with a line of `drop` was decided (`None` if none was).
pub async fn last_decision(
    db: &PgPool,
    drop: i64,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, BenchError> {
    Ok(sqlx::query_scalar(
        "SELECT max(o.completed_at) FROM orders o JOIN order_items i ON i.order_id = o.id
         WHERE i.product_id = $1",
    )
    .bind(drop)
    .fetch_one(db)
    .await?)
}

/// How long reading the topic's metadata or a partition's watermarks may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading the drop's partition may take.
const READ_WITHIN: Duration = Duration::from_secs(60);

/// The orders of the reserve records of `drop` on its partition of `topic`, in offset order
/// (each at its first record: a record produced twice is applied once).
pub async fn reserve_order(brokers: &str, topic: &str, drop: i64) -> Result<Vec<Uuid>, BenchError> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_reserves(&brokers, &topic, drop))
        .await
        .map_err(|e| BenchError::Unexpected(format!("reading the inventory topic: {e}")))?
}

fn read_reserves(brokers: &str, topic: &str, drop: i64) -> Result<Vec<Uuid>, BenchError> {
    let product = ProductId::new(drop).map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-drop-fairness"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
        .map_err(kafka)?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    let partition = partition_for(product, i32::try_from(partitions).unwrap_or(i32::MAX));
    let (low, end) = consumer
        .fetch_watermarks(topic, partition, KAFKA_TIMEOUT)
        .map_err(kafka)?;
    let mut orders = Vec::new();
    if end <= low {
        return Ok(orders);
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(kafka)?;
    consumer.assign(&assignment).map_err(kafka)?;
    let mut seen = HashSet::new();
    let deadline = std::time::Instant::now() + READ_WITHIN;
    let mut next = low;
    while next < end && std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.map_err(kafka)?;
        next = message.offset() + 1;
        if let Some(order) = message.payload().and_then(|p| reserve_of(p, product)) {
            if seen.insert(order) {
                orders.push(order);
            }
        }
    }
    if next < end {
        return Err(BenchError::Unexpected(format!(
            "read {topic} partition {partition} to offset {next} of {end} within {READ_WITHIN:?}"
        )));
    }
    Ok(orders)
}

/// The order of a record that reserves `product`; `None` for any other record.
fn reserve_of(payload: &[u8], product: ProductId) -> Option<Uuid> {
    let command: InventoryCommand = serde_json::from_slice(payload).ok()?;
    (command.kind == CommandKind::Reserve && command.product_id == product)
        .then(|| command.order_id.as_uuid())
}

fn kafka(error: rdkafka::error::KafkaError) -> BenchError {
    BenchError::Setup(format!("reading the inventory topic: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reserves_of_the_drop_name_an_order() {
        let drop = ProductId::new(42).ok();
        let record = |kind: &str, product: i64| {
            format!(
                r#"{{"v":1,"kind":"{kind}","order_id":"0192f0c4-0000-7000-8000-000000000001","product_id":{product},"quantity":2}}"#
            )
        };
        let reserve = drop.and_then(|d| reserve_of(record("reserve", 42).as_bytes(), d));
        assert_eq!(
            reserve.map(|o| o.to_string()).as_deref(),
            Some("0192f0c4-0000-7000-8000-000000000001")
        );
        for other in [record("release", 42), record("reserve", 7), "{}".to_owned()] {
            assert_eq!(drop.and_then(|d| reserve_of(other.as_bytes(), d)), None);
        }
    }
}
