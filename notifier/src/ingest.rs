//! Reads the order events (`ORDER_EVENTS_TOPIC`, every partition) and queues a mail for each
//! `OrderConfirmed`, `OrderRejected` and `OrderCancelled` (an `OrderCreated` sends nothing).
//!
//! Partitions are assigned, not subscribed (the broker's group protocol is not relied on), from
//! positions kept in PostgreSQL ([`positions`]): each batch of messages becomes rows and moves
//! the positions in one transaction ([`queue::ingest`]). A crash before the commit reads the
//! batch again; an event that Kafka delivers twice (the relay sends again after a crash) has the
//! same `event_id`, which the queue's unique key turns into one row. Several notifiers may read
//! the same log: they queue the same rows, once. A record that is no order event of this version, or names an
//! order that is not its shopper's, is parked in `dead_letters` with its bytes, in the same
//! transaction.

use crate::{
    metrics, positions,
    queue::{self, Channel, Kind, NewNotification},
};
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    error::KafkaError,
    message::Message,
    Offset, TopicPartitionList,
};
use shop_domain::messages::{OrderEvent, SCHEMA_VERSION};
use shop_infra::dead_letters::{self, Letter, Record, Source};
use sqlx::PgPool;
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most messages turned into rows in one transaction.
const MAX_BATCH: usize = 500;
/// How long a batch waits for more messages once it has one.
const GATHER: Duration = Duration::from_millis(20);
/// The wait before a failed transaction is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// What an order event means to the notifier; `None` for events that send nothing.
pub fn notification_for(event: &OrderEvent) -> Option<NewNotification> {
    let (kind, event_id, order_id, user_id) = match event {
        OrderEvent::OrderConfirmed {
            event_id,
            order_id,
            user_id,
            ..
        } => (Kind::OrderConfirmed, event_id, order_id, user_id),
        OrderEvent::OrderRejected {
            event_id,
            order_id,
            user_id,
            ..
        } => (Kind::OrderRejected, event_id, order_id, user_id),
        OrderEvent::OrderCancelled {
            event_id,
            order_id,
            user_id,
            ..
        } => (Kind::OrderCancelled, event_id, order_id, user_id),
        OrderEvent::OrderCreated { .. } => return None,
    };
    Some(NewNotification {
        event_id: format!("order-event/{event_id}"),
        kind,
        channel: Channel::Email,
        user_id: Some(user_id.get()),
        order_id: Some(order_id.as_uuid()),
        email: None,
        phone_number: None,
    })
}

/// The event in `payload`, or why it is none this notifier may use: it must decode, and its
/// version must not be newer than this notifier's.
pub fn read_event(payload: &[u8]) -> Result<OrderEvent, String> {
    let event = serde_json::from_slice::<OrderEvent>(payload)
        .map_err(|error| format!("not an order event: {error}"))?;
    let v = match &event {
        OrderEvent::OrderCreated { v, .. }
        | OrderEvent::OrderConfirmed { v, .. }
        | OrderEvent::OrderRejected { v, .. }
        | OrderEvent::OrderCancelled { v, .. } => *v,
    };
    if v > SCHEMA_VERSION {
        return Err(format!(
            "message version {v} is newer than this notifier's ({SCHEMA_VERSION})"
        ));
    }
    Ok(event)
}

/// How the reader paces itself.
pub struct Pace {
    /// Stop fetching after this long without an event.
    pub idle: Duration,
    /// While not fetching, look at the log's end this often.
    pub look: Duration,
}

/// Reads `topic`'s `partitions` until `stop`: fetches while events come, and stops fetching
/// (no partition assigned) after `pace.idle` without one, until a relay announces events
/// (`announced` is notified: [`shop_infra::outbox::ORDER_EVENTS_PRODUCED`]) or a look at the
/// log's end finds it grew. An idle notifier therefore sends the broker no fetch at
/// all: cheaper, and it keeps clear of a librdkafka crash on tansu's answers to fetches during
/// a restart (RELIABILITY.md, "Known issues").
pub async fn run(
    pool: PgPool,
    consumer: StreamConsumer,
    topic: String,
    partitions: i32,
    pace: Pace,
    announced: Arc<Notify>,
    stop: CancellationToken,
) -> Result<(), KafkaError> {
    let consumer = Arc::new(consumer);
    tracing::info!(%topic, partitions, "notifier reading order events");
    loop {
        let Some(positions) = read_positions(&pool, &topic, &stop).await else {
            return Ok(());
        };
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            let offset = positions
                .get(&partition)
                .map_or(Offset::Beginning, |next| Offset::Offset(*next));
            assignment.add_partition_offset(&topic, partition, offset)?;
        }
        consumer.assign(&assignment)?;
        let read = read_until_idle(&pool, &consumer, &topic, pace.idle, &stop).await;
        consumer.assign(&TopicPartitionList::new())?;
        if !read {
            return Ok(());
        }
        // Idle: wait for an announcement, or for the log to have grown anyway.
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = announced.notified() => break,
                () = tokio::time::sleep(pace.look) => {
                    if grew(&pool, &consumer, &topic, partitions, &stop).await {
                        tracing::info!(%topic, "order events arrived unannounced; fetching again");
                        break;
                    }
                }
            }
        }
    }
}

async fn read_positions(
    pool: &PgPool,
    topic: &str,
    stop: &CancellationToken,
) -> Option<BTreeMap<i32, i64>> {
    loop {
        match positions::read(pool, topic).await {
            Ok(rows) => return Some(rows.into_iter().collect()),
            Err(error) => {
                tracing::warn!(%error, "cannot read the notifier's positions; retrying");
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

/// Whether some partition's log ends past the notifier's position. A broker that cannot be
/// asked counts as "no": fetching would not get far either.
async fn grew(
    pool: &PgPool,
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    partitions: i32,
    stop: &CancellationToken,
) -> bool {
    let Some(positions) = read_positions(pool, topic, stop).await else {
        return false;
    };
    let (consumer, topic) = (consumer.clone(), topic.to_owned());
    let ends = tokio::task::spawn_blocking(move || {
        (0..partitions)
            .map(|p| consumer.fetch_watermarks(&topic, p, Duration::from_secs(5)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    match ends {
        Ok(Ok(ends)) => ends
            .iter()
            .zip(0..)
            .any(|((_, high), p)| *high > positions.get(&p).copied().unwrap_or(0)),
        Ok(Err(error)) => {
            tracing::debug!(%error, "cannot look at the order events' log");
            false
        }
        Err(_) => false,
    }
}

/// Reads batches until `idle` passes without a message; false if `stop` came first.
async fn read_until_idle(
    pool: &PgPool,
    consumer: &StreamConsumer,
    topic: &str,
    idle: Duration,
    stop: &CancellationToken,
) -> bool {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(idle) => return true,
            message = consumer.recv() => message,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(GATHER, consumer.recv()).await {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let mut rows = Vec::with_capacity(batch.len());
        let mut letters = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut ignored = 0;
        for message in batch {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "order events: fetch failed");
                    continue;
                }
            };
            next.insert(message.partition(), message.offset() + 1);
            let record = Record::on_topic(
                Source::OrderEventsTopic,
                topic,
                message.partition(),
                message.offset(),
                message.key(),
                message.payload(),
            );
            match read_event(&record.payload) {
                Ok(event) => match notification_for(&event) {
                    Some(row) => rows.push((record, row)),
                    None => ignored += 1,
                },
                Err(reason) => {
                    let letter = Letter::new(record, &reason, None);
                    tracing::error!(partition = message.partition(), offset = message.offset(), reason = %letter.reason, "parking an order event the notifier cannot read");
                    letters.push(letter);
                }
            }
        }
        if next.is_empty() {
            continue;
        }
        let next: Vec<(i32, i64)> = next.into_iter().collect();
        let ingested = loop {
            match queue::ingest(pool, topic, &rows, letters.clone(), &next).await {
                Ok(ingested) => break ingested,
                Err(error) => {
                    tracing::warn!(%error, "cannot queue notifications; retrying the batch");
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        };
        metrics::events("queued", ingested.queued);
        metrics::events("ignored", ignored);
        dead_letters::count(Source::OrderEventsTopic, ingested.parked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_domain::{OrderId, UserId};

    #[test]
    fn terminal_events_become_one_mail_each_and_creation_none(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (order, user) = (OrderId::generate(), UserId::new(9)?);
        let confirmed = notification_for(&OrderEvent::confirmed(order, user, 1)).ok_or("a mail")?;
        assert_eq!(confirmed.kind, Kind::OrderConfirmed);
        assert_eq!(confirmed.user_id, Some(9));
        assert_eq!(confirmed.order_id, Some(order.as_uuid()));
        let again = notification_for(&OrderEvent::confirmed(order, user, 2)).ok_or("a mail")?;
        assert_eq!(
            again.event_id, confirmed.event_id,
            "a redelivery has the same id"
        );
        let rejected =
            notification_for(&OrderEvent::rejected(order, user, vec![], 3)).ok_or("a mail")?;
        assert_eq!(rejected.kind, Kind::OrderRejected);
        let cancelled = notification_for(&OrderEvent::cancelled(order, user, 4)).ok_or("a mail")?;
        assert_eq!(cancelled.kind, Kind::OrderCancelled);
        assert_ne!(cancelled.event_id, rejected.event_id, "a mail of its own");
        assert!(notification_for(&OrderEvent::created(order, user, 0, vec![], 0)).is_none());
        Ok(())
    }
}
