//! Reading a system's order events topic from the beginning to its end, per order, for the
//! checker.

use super::check::OrderEvents;
use crate::error::BenchError;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig, Message, Offset, TopicPartitionList,
};
use serde_json::Value;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use uuid::Uuid;

/// How long reading one partition's watermarks or the topic's metadata may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Every event on the system's order events topic, per order, and how many deliveries repeated
/// an event already seen. Reads for at most a minute.
pub fn order_events(
    brokers: &str,
    system: &str,
) -> Result<(HashMap<Uuid, OrderEvents>, u64), BenchError> {
    let topic = format!("{system}.order-events");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{system}-checker"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka)?;
    let mut ends = assign_from_beginning(&consumer, &topic)?;
    let mut events: HashMap<Uuid, OrderEvents> = HashMap::new();
    let mut deliveries = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.map_err(kafka)?;
        if ends
            .get(&message.partition())
            .is_some_and(|&end| message.offset() + 1 >= end)
        {
            ends.remove(&message.partition());
        }
        if let Some(event) = message
            .payload()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        {
            deliveries += u64::from(record(&mut events, &event));
        }
    }
    let distinct: u64 = events
        .values()
        .map(|e| (e.created.len() + e.terminal.len() + e.cancelled.len()) as u64)
        .sum();
    Ok((events, deliveries.saturating_sub(distinct)))
}

/// Assigns every partition of `topic` that holds messages to `consumer`, from its beginning;
/// returns each one's end (high watermark).
fn assign_from_beginning(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<HashMap<i32, i64>, BenchError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(kafka)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .map_err(kafka)?;
        if high > low {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(kafka)?;
            ends.insert(partition, high);
        }
    }
    consumer.assign(&assignment).map_err(kafka)?;
    Ok(ends)
}

/// Records one event under its order; false when it is not an order event the checker reads.
fn record(events: &mut HashMap<Uuid, OrderEvents>, event: &Value) -> bool {
    let (Some(kind), Some(order), Some(id)) = (
        event["type"].as_str(),
        event["order_id"].as_str().and_then(|o| o.parse().ok()),
        event["event_id"].as_str(),
    ) else {
        return false;
    };
    let seen = events.entry(order).or_default();
    match kind {
        "OrderCreated" => seen.created.insert(id.to_owned()),
        "OrderConfirmed" | "OrderRejected" => {
            seen.terminal.insert((kind.to_owned(), id.to_owned()))
        }
        "OrderCancelled" => seen.cancelled.insert(id.to_owned()),
        _ => return false,
    };
    true
}

fn kafka(error: rdkafka::error::KafkaError) -> BenchError {
    BenchError::Setup(format!("reading the order events topic: {error}"))
}
