//! Every metric the checkout worker exports, declared in this one place.

use crate::batch::{decide::Outcome, BatchResult};
use chrono::Utc;
use shop_domain::LineReason;
use std::time::Duration;

/// Labels `kind` (reserve, release, restock) and `outcome` (reserved, short, over_limit,
/// released, …, duplicate: one per `batch::Outcome`).
pub const COMMANDS: &str = "checkout_worker_commands_total";
pub const BATCH_SIZE: &str = "checkout_worker_batch_size";
pub const BATCH_DURATION: &str = "checkout_worker_batch_duration_seconds";
/// Batches that failed and were retried. Label `reason`.
pub const BATCH_FAILURES: &str = "checkout_worker_batch_failures_total";
/// Batches refused because a newer owner had claimed their partition (the lane then stops).
pub const FENCED: &str = "checkout_worker_fenced_batches_total";
/// From checkout accepted to CONFIRMED / REJECTED.
pub const ORDER_COMPLETION: &str = "checkout_worker_order_completion_seconds";
/// Orders finalised. Label `status`.
pub const ORDERS: &str = "checkout_worker_orders_total";
/// Order lines that could not be reserved. Label `reason` (`shop_domain::LineReason`).
pub const REJECTED_LINES: &str = "checkout_worker_rejected_lines_total";
/// Commands found on a partition that `partition_for` does not give them (still applied).
pub const MISROUTED: &str = "checkout_worker_misrouted_commands_total";
/// Records parked in `dead_letters` because they could not be read, applied or routed. Label
/// `source` (`inventory-topic`, `order-events-topic`, `outbox`).
pub const DEAD_LETTERS: &str = shop_infra::dead_letters::METRIC;
/// 1 for an owned partition whose saved position lies outside its log (not processed). Label
/// `partition`.
pub const PARTITION_STOPPED: &str = "checkout_worker_partition_stopped";
/// Per partition, from librdkafka's statistics. Label `partition`.
pub const CONSUMER_LAG: &str = "checkout_worker_consumer_lag";
/// Rows waiting in the outbox.
pub const OUTBOX_BACKLOG: &str = "checkout_worker_outbox_backlog";
/// Orders accepted and not yet CONFIRMED or REJECTED.
pub const PENDING_ORDERS: &str = "checkout_worker_pending_orders";
/// Age of the oldest PENDING order (0 when there is none).
pub const OLDEST_PENDING: &str = "checkout_worker_oldest_pending_order_seconds";
/// Outbox rows delivered to Kafka. Label `stream`.
pub const OUTBOX_RELAYED: &str = "checkout_worker_outbox_relayed_total";
pub const RELAY_FAILURES: &str = "checkout_worker_relay_failures_total";

pub fn record_batch(result: &BatchResult, took: Duration) {
    metrics::histogram!(BATCH_SIZE).record(result.decisions.len() as f64);
    metrics::histogram!(BATCH_DURATION).record(took.as_secs_f64());
    for decision in &result.decisions {
        let kind = decision.command.kind.as_str();
        let outcome = match decision.outcome {
            Outcome::Reserved => "reserved",
            Outcome::Short { .. } => {
                metrics::counter!(REJECTED_LINES, "reason" => LineReason::InsufficientStock.as_str()).increment(1);
                "short"
            }
            Outcome::OverLimit { .. } => {
                metrics::counter!(REJECTED_LINES, "reason" => LineReason::LimitExceeded.as_str())
                    .increment(1);
                "over_limit"
            }
            Outcome::Released => "released",
            Outcome::Withdrawn => "withdrawn",
            Outcome::NothingHeld => "nothing_held",
            Outcome::Restocked => "restocked",
            Outcome::Overfull { .. } => "overfull",
            Outcome::Absorbed => "absorbed",
            Outcome::Set { .. } => "set",
            Outcome::Superseded => "superseded",
            Outcome::Duplicate => "duplicate",
        };
        metrics::counter!(COMMANDS, "kind" => kind, "outcome" => outcome).increment(1);
    }
    shop_infra::dead_letters::count(
        shop_infra::dead_letters::Source::InventoryTopic,
        result.parked,
    );
    let now = Utc::now();
    for order in &result.finalized {
        metrics::counter!(ORDERS, "status" => order.status.as_str()).increment(1);
        let took = (now - order.created_at).to_std().unwrap_or_default();
        metrics::histogram!(ORDER_COMPLETION).record(took.as_secs_f64());
    }
}

pub fn batch_failed(reason: &'static str) {
    metrics::counter!(BATCH_FAILURES, "reason" => reason).increment(1);
}

pub fn fenced() {
    metrics::counter!(FENCED).increment(1);
}

pub fn relayed(stream: &str) {
    metrics::counter!(OUTBOX_RELAYED, "stream" => stream.to_owned()).increment(1);
}

pub fn relay_failed() {
    metrics::counter!(RELAY_FAILURES).increment(1);
}

/// What is waiting: outbox rows, PENDING orders, and the oldest one's age.
pub fn backlog(outbox_rows: i64, pending_orders: i64, oldest_pending_seconds: f64) {
    metrics::gauge!(OUTBOX_BACKLOG).set(outbox_rows as f64);
    metrics::gauge!(PENDING_ORDERS).set(pending_orders as f64);
    metrics::gauge!(OLDEST_PENDING).set(oldest_pending_seconds);
}

pub fn consumer_lag(partition: i32, lag: i64) {
    metrics::gauge!(CONSUMER_LAG, "partition" => partition.to_string()).set(lag as f64);
}

pub fn partition_stopped(partition: i32, stopped: bool) {
    metrics::gauge!(PARTITION_STOPPED, "partition" => partition.to_string())
        .set(f64::from(u8::from(stopped)));
}

pub fn misrouted() {
    metrics::counter!(MISROUTED).increment(1);
}
