//! The worker's Kafka consumer of inventory commands: how it is configured, and its statistics
//! turned into the consumer lag gauge. Which partitions it fetches, and from where, is
//! [`crate::fetch`]'s business.

use crate::{config::WorkerSettings, metrics};
use rdkafka::{
    consumer::{ConsumerContext, StreamConsumer},
    error::KafkaError,
    ClientContext, Statistics,
};

/// Turns librdkafka's periodic statistics into the consumer lag gauge: messages on the broker
/// that this worker has not yet taken in.
pub struct WorkerContext;

impl ClientContext for WorkerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        shop_infra::metrics::client_error("kafka", "client");
        tracing::warn!(%error, reason, "Kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for (partition, stats) in &topic.partitions {
                if *partition >= 0 && stats.hi_offset >= 0 && stats.app_offset >= 0 {
                    metrics::consumer_lag(*partition, stats.hi_offset - stats.app_offset);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {}

pub type InventoryConsumer = StreamConsumer<WorkerContext>;

/// The consumer of inventory commands.
pub fn inventory_consumer(settings: &WorkerSettings) -> Result<InventoryConsumer, KafkaError> {
    settings
        .kafka
        .client_config()
        // Partitions are assigned by `membership` and positions kept in PostgreSQL; the
        // group id only names this consumer to the broker.
        .set("group.id", &settings.consumer_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000")
        // Brokers that hold a fetch for its whole wait, even once data has arrived (tansu
        // does), would otherwise add librdkafka's default 500 ms to every order.
        .set("fetch.wait.max.ms", settings.fetch_wait_ms.to_string())
        .create_with_context(WorkerContext)
}
