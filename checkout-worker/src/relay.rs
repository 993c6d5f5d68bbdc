//! The outbox relay: moves rows that checkouts and finalised orders wrote to `outbox` onto Kafka.
//! A row holds one message, or a transaction's messages as a bundle (`outbox::BUNDLE`).
//!
//! A round claims the oldest unclaimed rows for `RELAY_CLAIM_MS` (one statement, `SKIP LOCKED`,
//! so relays in several worker processes share the work), produces them (`acks=all`), waits for
//! every acknowledgement, then deletes them. No row lock is held while the broker is waited for:
//! a relay paused or cut off mid-round leaves its rows to the others once the claim runs out. A
//! crash or a lapsed claim between the acknowledgement and the delete sends those rows again:
//! consumers dedupe (commands by the ledger, events by `event_id`). Nothing is deleted before
//! the broker has it.
//!
//! An idle relay waits, longer and longer, between rounds; its [`Wake`] ends the wait when rows
//! were written (by a batch of this process, or announced on `outbox::WRITTEN_CHANNEL`, which
//! [`crate::wake`] listens to). After a round that produced inventory commands it announces their
//! partitions ([`COMMANDS_PRODUCED`]) to the workers that stopped fetching them while idle, and
//! after order events it announces those to the notifiers (`outbox::ORDER_EVENTS_PRODUCED`).
//! Where the broker wrote orders' reserves goes to Redis, for their places in line
//! (`shop_infra::place`), best effort: the round does not wait for it.

use crate::{
    config::WorkerSettings,
    dead_letter::{self, DeadLetter},
    metrics,
};
use futures_util::future::join_all;
use inventory_partitioner::{partition_for, KafkaSettings};
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use shop_domain::{
    messages::{CommandKind, InventoryCommand, QUEUED_FIELD},
    OrderId, ProductId,
};
use shop_infra::{
    dead_letters::{self, Record, Source},
    orders::settle,
    outbox::{self, Message},
    place::{LineOffset, Places},
};
use sqlx::PgPool;
use std::{collections::BTreeSet, sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox query failed")]
    Database(#[from] sqlx::Error),
    #[error("Kafka did not take an outbox message")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A row that cannot be routed (it is parked as a dead letter).
    #[error("outbox row {id} has key {key:?}, which is not a product id")]
    BadKey { id: i64, key: String },
    /// A row that cannot be routed (it is parked as a dead letter).
    #[error("outbox row {id} names unknown stream {stream:?}")]
    BadStream { id: i64, stream: String },
}

pub fn producer(settings: &WorkerSettings) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    settings
        .kafka
        .client_config()
        // Not idempotent: tansu 0.6.0 panics on a restart when an idempotent producer it no
        // longer knows sends again (found by the fault suite), and takes its storage down. The
        // pipeline does not need it: commands are deduplicated by the ledger and events carry
        // their `event_id`. Retries may reorder messages in flight together; nothing needs
        // their order: a release is written only after its reserve was consumed (so it is in the
        // log already), and several workers' relays claim rows concurrently anyway, so an
        // order's events were never promised in order (consumers key on `event_id`); a seller's
        // set is ordered by its queue position, the field `queued` that `mark_positions` adds,
        // not by arrival.
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "5")
        .set("acks", "all")
        .set("linger.ms", "2")
        // Order events: the same partition for a key as Kafka's Java client would choose.
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "30000")
        .create()
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    stream: String,
    message_key: String,
    payload: String,
}

/// One round: relays up to `RELAY_BATCH` rows, and records in `places` where the orders'
/// reserves were written. Returns how many rows.
pub async fn relay_once(
    pool: &PgPool,
    producer: &FutureProducer,
    settings: &WorkerSettings,
    places: &Places,
) -> Result<usize, RelayError> {
    let rows = claim(pool, settings).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut unroutable = Vec::new();
    let mut messages = unbundle(&rows, &mut unroutable);
    mark_positions(&mut messages);
    let (records, produced_to) = records(&messages, &settings.kafka, &mut unroutable);
    if !unroutable.is_empty() {
        park(pool, &unroutable).await?;
    }
    let reserves = deliver(producer, records, &settings.kafka).await?;
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    places.lines_relayed(&reserves);
    announce_commands(pool, &produced_to).await?;
    if messages
        .iter()
        .any(|(_, _, m)| m.stream == outbox::ORDER_EVENTS)
    {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(outbox::ORDER_EVENTS_PRODUCED)
            .execute(pool)
            .await?;
    }
    for (_, _, message) in &messages {
        metrics::relayed(&message.stream);
    }
    Ok(rows.len())
}

/// Claims the oldest unclaimed rows (up to `RELAY_BATCH`) for `RELAY_CLAIM_MS`.
async fn claim(pool: &PgPool, settings: &WorkerSettings) -> Result<Vec<Row>, sqlx::Error> {
    let claim_ms = i64::try_from(settings.relay_claim.as_millis()).unwrap_or(i64::MAX);
    sqlx::query_as(
        "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2::DOUBLE PRECISION / 1000)
         WHERE id IN (SELECT id FROM outbox WHERE claimed_until < now()
                      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, stream, message_key, payload",
    )
    .bind(settings.relay_batch)
    .bind(claim_ms)
    .fetch_all(pool)
    .await
}

/// The messages the rows hold, each with its row's id and its place in the row; a row that is
/// not a bundle of messages joins `unroutable`.
fn unbundle(rows: &[Row], unroutable: &mut Vec<DeadLetter>) -> Vec<(i64, usize, Message)> {
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        match outbox::unbundle(&row.stream, &row.message_key, &row.payload) {
            Ok(held) => messages.extend(held.into_iter().enumerate().map(|(i, m)| (row.id, i, m))),
            Err(error) => unroutable.push(DeadLetter::unreadable(
                Record::in_outbox(row.id.to_string(), &row.message_key, &row.payload),
                &format!("outbox row {} is not a bundle of messages: {error}", row.id),
            )),
        }
    }
    messages
}

/// Writes each inventory command's queue position, the id of its outbox row, into its JSON (the
/// field `QUEUED_FIELD`): the lane orders a seller's set by it among the commands around it,
/// whatever order their records arrive in. A payload that is not a JSON object is left as it is
/// (its lane parks it).
fn mark_positions(messages: &mut [(i64, usize, Message)]) {
    for (id, _, message) in messages
        .iter_mut()
        .filter(|(_, _, m)| m.stream == outbox::INVENTORY)
    {
        if let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(&message.payload) {
            fields.insert(QUEUED_FIELD.to_owned(), (*id).into());
            message.payload = serde_json::Value::Object(fields).to_string();
        }
    }
}

/// The Kafka records of `messages`, and the inventory partitions they go to; a message that
/// cannot be routed joins `unroutable`.
fn records<'a>(
    messages: &'a [(i64, usize, Message)],
    kafka: &'a KafkaSettings,
    unroutable: &mut Vec<DeadLetter>,
) -> (Vec<FutureRecord<'a, str, str>>, BTreeSet<i32>) {
    let mut records = Vec::with_capacity(messages.len());
    let mut produced_to = BTreeSet::new();
    for (id, index, message) in messages {
        match route(*id, message, kafka) {
            Ok(record) => {
                if let Some(partition) = record.partition {
                    produced_to.insert(partition);
                }
                records.push(record.key(&message.key).payload(&message.payload));
            }
            Err(reason) => unroutable.push(DeadLetter::unreadable(
                Record::in_outbox(
                    // A bundle's messages are told apart by their place in it.
                    if *index == 0 {
                        id.to_string()
                    } else {
                        format!("{id}/{index}")
                    },
                    &message.key,
                    &message.payload,
                ),
                &reason.to_string(),
            )),
        }
    }
    (records, produced_to)
}

/// Produces `records` and waits for every acknowledgement; returns where the broker wrote the
/// reserves of orders' lines among them.
async fn deliver(
    producer: &FutureProducer,
    records: Vec<FutureRecord<'_, str, str>>,
    kafka: &KafkaSettings,
) -> Result<Vec<LineOffset>, RelayError> {
    let orders: Vec<Option<OrderId>> = records.iter().map(|r| reserve_of(r, kafka)).collect();
    let deliveries = records
        .into_iter()
        .map(|record| producer.send(record, Timeout::After(Duration::from_secs(30))));
    let mut reserves = Vec::new();
    for (delivery, order) in join_all(deliveries).await.into_iter().zip(orders) {
        let delivery = delivery.map_err(|(error, _)| error)?;
        if let Some(order) = order {
            reserves.push(LineOffset {
                order,
                partition: delivery.partition,
                offset: delivery.offset,
            });
        }
    }
    Ok(reserves)
}

/// The order whose line `record` reserves, if it is an inventory command that reserves one
/// (not a release, a seller's restock or set, nor a command the lane will park).
fn reserve_of(record: &FutureRecord<'_, str, str>, kafka: &KafkaSettings) -> Option<OrderId> {
    if record.topic != kafka.inventory_topic {
        return None;
    }
    let command: InventoryCommand = serde_json::from_str(record.payload?).ok()?;
    (command.kind == CommandKind::Reserve).then_some(command.order_id)
}

/// The PostgreSQL channel on which relays announce the inventory partitions they have just
/// produced to, so that a worker that stopped fetching an idle partition fetches it again at once.
pub const COMMANDS_PRODUCED: &str = "inventory_commands_produced";

/// Announces `partitions` (comma-separated) on [`COMMANDS_PRODUCED`]: one notification per round.
async fn announce_commands(pool: &PgPool, partitions: &BTreeSet<i32>) -> Result<(), RelayError> {
    if partitions.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(COMMANDS_PRODUCED)
        .bind(list.join(","))
        .execute(pool)
        .await?;
    Ok(())
}

/// The topic (and partition) of a message of outbox row `id`.
fn route<'a>(
    id: i64,
    message: &Message,
    kafka: &'a KafkaSettings,
) -> Result<FutureRecord<'a, str, str>, RelayError> {
    match message.stream.as_str() {
        outbox::INVENTORY => {
            let product = message
                .key
                .parse()
                .ok()
                .and_then(|id| ProductId::new(id).ok())
                .ok_or_else(|| RelayError::BadKey {
                    id,
                    key: message.key.clone(),
                })?;
            Ok(FutureRecord::to(&kafka.inventory_topic)
                .partition(partition_for(product, kafka.inventory_partitions)))
        }
        outbox::ORDER_EVENTS => Ok(FutureRecord::to(&kafka.order_events_topic)),
        outbox::DEAD_LETTERS => Ok(FutureRecord::to(&kafka.dead_letter_topic)),
        other => Err(RelayError::BadStream {
            id,
            stream: other.to_owned(),
        }),
    }
}

/// Parks rows that cannot be routed, deciding the order lines they name; their rows are deleted
/// with the rest of the round once it is delivered.
async fn park(pool: &PgPool, letters: &[DeadLetter]) -> Result<(), RelayError> {
    let mut tx = pool.begin().await?;
    let parked = dead_letter::park(&mut tx, letters).await?;
    tx.commit().await?;
    for letter in letters {
        tracing::error!(position = %letter.letter.record.position, reason = %letter.letter.reason, "parked an outbox row that cannot be routed");
    }
    dead_letters::count(Source::Outbox, parked.parked);
    Ok(())
}

/// What wakes an idle relay of this process early: outbox rows were written, by a batch here or
/// (announced on `outbox::WRITTEN_CHANNEL`) by another process.
#[derive(Debug, Default)]
pub struct Wake(Notify);

impl Wake {
    /// Outbox rows were written: an idle relay looks at once, a busy one right after its round.
    pub fn rows_written(&self) {
        self.0.notify_one();
    }
}

/// Relays until `stop` is cancelled. Errors (broker or database down) are retried. An idle
/// relay's wait doubles up to `RELAY_IDLE_POLL_MAX_MS`, and ends early when `wake` says rows
/// were written. Orders' reserves are recorded in `places`.
pub async fn run(
    pool: PgPool,
    producer: FutureProducer,
    settings: WorkerSettings,
    places: Places,
    wake: Arc<Wake>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    let mut idle = settings.relay_idle_poll;
    while !stop.is_cancelled() {
        // After an error the pause is kept whole: a wake-up must not turn a backoff into a spin.
        let (pause, wakeable) = match relay_once(&pool, &producer, &settings, &places).await {
            Ok(0) => {
                let wait = idle;
                idle = (idle * 2).min(settings.relay_idle_poll_max.max(settings.relay_idle_poll));
                (wait, true)
            }
            Ok(_) => {
                failures = 0;
                idle = settings.relay_idle_poll;
                continue;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                metrics::relay_failed();
                if matches!(error, RelayError::Kafka(_)) {
                    shop_infra::metrics::client_error("kafka", "produce");
                }
                tracing::warn!(error = %error, source = ?std::error::Error::source(&error), failures, "outbox relay round failed; retrying");
                (
                    Duration::from_millis(100 * u64::from(failures.min(20))),
                    false,
                )
            }
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = wake.0.notified(), if wakeable => idle = settings.relay_idle_poll,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Reports the outbox and order backlog every [`shop_infra::metrics::REPORT_EVERY`] until `stop`
/// is cancelled.
pub async fn report_backlog(pool: PgPool, stop: CancellationToken) {
    shop_infra::metrics::report_every(stop.cancelled_owned(), || async {
        let backlog = async { settle::backlog(&mut *pool.acquire().await?).await }.await;
        match backlog {
            Ok((rows, pending, oldest)) => metrics::backlog(rows, pending, oldest),
            Err(error) => tracing::warn!(%error, "cannot read the backlog"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(stream: &str, payload: &str) -> Message {
        Message {
            stream: stream.to_owned(),
            key: "7".to_owned(),
            payload: payload.to_owned(),
        }
    }

    #[test]
    fn an_inventory_command_carries_its_row_id_as_its_queue_position() {
        let mut messages = vec![
            (41, 0, message(outbox::INVENTORY, r#"{"v":1,"kind":"set"}"#)),
            (41, 1, message(outbox::ORDER_EVENTS, r#"{"v":1}"#)),
            (42, 0, message(outbox::INVENTORY, "not json")),
        ];
        mark_positions(&mut messages);
        let fields: serde_json::Value = serde_json::from_str(&messages[0].2.payload).expect("json");
        assert_eq!(
            (fields["queued"].as_i64(), fields["kind"].as_str()),
            (Some(41), Some("set"))
        );
        assert_eq!(messages[1].2.payload, r#"{"v":1}"#, "events are left alone");
        assert_eq!(
            messages[2].2.payload, "not json",
            "left for its lane to park"
        );
    }
}
