//! The notifier's metric names, and the helpers that record them.

use crate::queue::{Channel, Kind};

/// Messages sent, by kind and channel.
pub const SENT: &str = "shop_notifications_sent_total";
/// Failed sends, by kind, channel and reason; each is retried with backoff.
pub const SEND_FAILURES: &str = "shop_notifications_send_failures_total";
/// Messages waiting to be sent (retries included).
pub const PENDING: &str = "shop_notifications_pending";
/// Messages parked after `NOTIFY_MAX_ATTEMPTS` failed sends: an operator's to look at.
pub const PARKED: &str = "shop_notifications_parked";
/// Age of the oldest message waiting to be sent.
pub const OLDEST_PENDING: &str = "shop_notifications_oldest_pending_seconds";
/// Order events read, by what became of them: `queued` (new rows), `ignored` (events that send
/// nothing). Records the notifier cannot use count in `checkout_worker_dead_letters_total`.
pub const EVENTS: &str = "shop_notifier_events_total";

pub fn sent(kind: Kind, channel: Channel) {
    metrics::counter!(SENT, "kind" => kind.as_str(), "channel" => channel.as_str()).increment(1);
}

pub fn send_failed(kind: Kind, channel: Channel, reason: &'static str) {
    metrics::counter!(SEND_FAILURES, "kind" => kind.as_str(), "channel" => channel.as_str(), "reason" => reason)
        .increment(1);
}

pub fn backlog(pending: i64, parked: i64, oldest_pending_seconds: f64) {
    #[allow(clippy::cast_precision_loss)]
    {
        metrics::gauge!(PENDING).set(pending as f64);
        metrics::gauge!(PARKED).set(parked as f64);
    }
    metrics::gauge!(OLDEST_PENDING).set(oldest_pending_seconds);
}

pub fn events(outcome: &'static str, count: u64) {
    metrics::counter!(EVENTS, "outcome" => outcome).increment(count);
}
