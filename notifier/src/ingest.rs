//! Reads the order events (`ORDER_EVENTS_TOPIC`, every partition) and queues a mail for each
//! `OrderConfirmed` and `OrderRejected`.
//!
//! Partitions are assigned, not subscribed (the broker's group protocol is not relied on), from
//! positions kept in PostgreSQL: each batch of messages becomes rows and moves the positions in
//! one transaction ([`queue::ingest`]). A crash before the commit reads the batch again; an event
//! that Kafka delivers twice (the relay sends again after a crash) has the same `event_id`, which
//! the queue's unique key turns into one row. Several notifiers may read the same log: they
//! queue the same rows, once.

use crate::{
    metrics,
    queue::{self, Channel, Kind, NewNotification},
};
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    message::Message,
    Offset, TopicPartitionList,
};
use shop_domain::messages::OrderEvent;
use sqlx::PgPool;
use std::{collections::BTreeMap, time::Duration};
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
        OrderEvent::OrderCreated { .. } => return None,
    };
    Some(NewNotification {
        event_id: format!("order-event/{event_id}"),
        kind,
        channel: Channel::Email,
        user_id: user_id.get(),
        order_id: Some(order_id.as_uuid()),
    })
}

/// Reads `topic`'s `partitions` until `stop`.
pub async fn run(
    pool: PgPool,
    consumer: StreamConsumer,
    topic: String,
    partitions: i32,
    stop: CancellationToken,
) -> Result<(), crate::Error> {
    let positions: BTreeMap<i32, i64> = loop {
        match queue::positions(&pool, &topic).await {
            Ok(rows) => break rows.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the notifier's positions; retrying");
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    };
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        let offset = positions
            .get(&partition)
            .map_or(Offset::Beginning, |next| Offset::Offset(*next));
        assignment.add_partition_offset(&topic, partition, offset)?;
    }
    consumer.assign(&assignment)?;
    tracing::info!(%topic, partitions, "notifier reading order events");
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return Ok(()),
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
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let (mut ignored, mut unreadable) = (0, 0);
        for message in batch {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "order events: fetch failed");
                    continue;
                }
            };
            next.insert(message.partition(), message.offset() + 1);
            match serde_json::from_slice::<OrderEvent>(message.payload().unwrap_or_default()) {
                Ok(event) => match notification_for(&event) {
                    Some(row) => rows.push(row),
                    None => ignored += 1,
                },
                Err(error) => {
                    unreadable += 1;
                    tracing::warn!(%error, partition = message.partition(), offset = message.offset(), "unreadable order event skipped");
                }
            }
        }
        if next.is_empty() {
            continue;
        }
        let next: Vec<(i32, i64)> = next.into_iter().collect();
        let queued = loop {
            match queue::ingest(&pool, &topic, &rows, &next).await {
                Ok(new) => break new,
                Err(error) => {
                    tracing::warn!(%error, "cannot queue notifications; retrying the batch");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        };
        metrics::events("queued", queued);
        metrics::events("duplicate", rows.len() as u64 - queued);
        metrics::events("ignored", ignored);
        metrics::events("unreadable", unreadable);
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
        assert_eq!(confirmed.user_id, 9);
        assert_eq!(confirmed.order_id, Some(order.as_uuid()));
        let again = notification_for(&OrderEvent::confirmed(order, user, 2)).ok_or("a mail")?;
        assert_eq!(
            again.event_id, confirmed.event_id,
            "a redelivery has the same id"
        );
        let rejected =
            notification_for(&OrderEvent::rejected(order, user, vec![], 3)).ok_or("a mail")?;
        assert_eq!(rejected.kind, Kind::OrderRejected);
        assert!(notification_for(&OrderEvent::created(order, user, 0, vec![], 0)).is_none());
        Ok(())
    }
}
