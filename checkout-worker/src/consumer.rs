//! The inventory consumer: one sequential lane (task) per owned partition.
//!
//! Every heartbeat of [`Membership`] says which partitions this worker owns; when that changes,
//! the consumer is assigned exactly those, each from its position in PostgreSQL. The receive
//! loop hands each message to its partition's lane, in order. A lane takes what has queued up
//! (up to `WORKER_MAX_BATCH`) as one batch and applies it in one transaction that also moves the
//! partition's position. A crash before the commit means the batch is read again; the ledger
//! turns what was already applied into no-ops.

use crate::{
    announce::Announcer,
    batch,
    membership::{Membership, Position},
    metrics,
};
use inventory_partitioner::partition_for;
use rdkafka::{
    consumer::{Consumer, ConsumerContext, StreamConsumer},
    message::Message,
    ClientContext, Offset, Statistics, TopicPartitionList,
};
use shop_domain::messages::InventoryCommand;
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Turns librdkafka's periodic statistics into the consumer lag gauge: messages on the broker
/// that this worker has not yet taken in.
pub struct WorkerContext;

impl ClientContext for WorkerContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
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

pub struct Lanes {
    /// Also names the pool, topic and partition count the lanes use.
    pub membership: Membership,
    pub consumer: Arc<InventoryConsumer>,
    pub announcer: Announcer,
    pub max_batch: usize,
    pub stop: CancellationToken,
}

struct Envelope {
    offset: i64,
    /// `None` for a message that is not an inventory command: skipped, but its offset counts.
    command: Option<InventoryCommand>,
}

impl Lanes {
    /// Assigns the consumer `owned`, each partition from its saved position (or the beginning).
    async fn assign(&self, owned: &[i32]) -> Result<(), crate::Error> {
        let positions = self.membership.positions(owned).await?;
        let mut list = TopicPartitionList::new();
        for &partition in owned {
            let offset = positions
                .get(&partition)
                .map_or(Offset::Beginning, |&o| Offset::Offset(o));
            list.add_partition_offset(&self.membership.topic, partition, offset)?;
        }
        self.consumer.assign(&list)?;
        tracing::info!(group = %self.membership.group, partitions = ?owned, "partitions assigned");
        Ok(())
    }
}

/// Receives until `stop` is cancelled, then lets every lane finish what it holds and leaves the
/// group.
pub async fn run(lanes: Arc<Lanes>) -> Result<(), crate::Error> {
    let mut senders: HashMap<i32, mpsc::Sender<Envelope>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut owned: Vec<i32> = Vec::new();
    let mut heartbeat = tokio::time::interval(lanes.membership.lease / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            () = lanes.stop.cancelled() => break,
            _ = heartbeat.tick() => {
                match lanes.membership.heartbeat().await {
                    Ok(now_owned) if now_owned != owned => match lanes.assign(&now_owned).await {
                        Ok(()) => owned = now_owned,
                        Err(error) => tracing::warn!(%error, "cannot take the new assignment; retrying"),
                    },
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "membership heartbeat failed"),
                }
                continue;
            }
            received = lanes.consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                shop_infra::metrics::client_error("kafka", "consume");
                tracing::warn!(%error, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let partition = message.partition();
        if !owned.contains(&partition) {
            continue; // fetched before a reassignment; the new owner reads it.
        }
        let command = match message
            .payload()
            .map(serde_json::from_slice::<InventoryCommand>)
        {
            Some(Ok(command)) => {
                if partition_for(command.product_id, lanes.membership.partitions) != partition {
                    metrics::misrouted();
                    tracing::warn!(partition, product_id = %command.product_id, "command on the wrong partition; applying it anyway");
                }
                Some(command)
            }
            _ => {
                metrics::malformed();
                tracing::warn!(
                    partition,
                    offset = message.offset(),
                    "skipping a message that is not an inventory command"
                );
                None
            }
        };
        let envelope = Envelope {
            offset: message.offset(),
            command,
        };
        let sender = senders.entry(partition).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(lanes.max_batch * 2);
            tasks.spawn(lane(partition, receiver, lanes.clone()));
            sender
        });
        if sender.send(envelope).await.is_err() {
            tracing::error!(partition, "partition lane stopped");
            break;
        }
    }
    drop(senders);
    while tasks.join_next().await.is_some() {}
    if let Err(error) = lanes.membership.leave().await {
        tracing::warn!(%error, "cannot leave the group; the lease will expire");
    }
    Ok(())
}

async fn lane(partition: i32, mut receiver: mpsc::Receiver<Envelope>, lanes: Arc<Lanes>) {
    let mut batch: Vec<Envelope> = Vec::with_capacity(lanes.max_batch);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < lanes.max_batch {
            match receiver.try_recv() {
                Ok(envelope) => batch.push(envelope),
                Err(_) => break,
            }
        }
        let (first_offset, last_offset) = (batch[0].offset, batch[batch.len() - 1].offset);
        let span = tracing::info_span!(
            "batch",
            partition,
            first_offset,
            last_offset,
            size = batch.len()
        );
        let position = Position {
            group: &lanes.membership.group,
            topic: &lanes.membership.topic,
            partition,
            next_offset: last_offset + 1,
        };
        if !apply(&batch, &position, &lanes).instrument(span).await {
            return;
        }
        batch.clear();
    }
}

/// Applies a batch, retrying until it commits. Returns false if told to stop first.
async fn apply(batch: &[Envelope], position: &Position<'_>, lanes: &Lanes) -> bool {
    let commands: Vec<InventoryCommand> = batch.iter().filter_map(|e| e.command).collect();
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        match batch::apply_batch(&lanes.membership.pool, &commands, Some(position)).await {
            Ok(result) => {
                metrics::record_batch(&result, started.elapsed());
                lanes.announcer.after_commit(&result).await;
                return true;
            }
            Err(error) => {
                attempt = attempt.saturating_add(1);
                let reason = match error.as_database_error().and_then(|e| e.code()).as_deref() {
                    Some("23505") => "concurrent_duplicate",
                    Some("40P01") => "deadlock",
                    _ => "database",
                };
                metrics::batch_failed(reason);
                tracing::warn!(%error, reason, attempt, "batch failed; retrying");
                let pause = Duration::from_millis(20u64.saturating_mul(1 << attempt.min(7)));
                tokio::select! {
                    () = lanes.stop.cancelled() => return false,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}
