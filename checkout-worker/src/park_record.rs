//! `checkout-worker park-record PARTITION OFFSET`: the operator's way past a record that stopped
//! its partition (see `WORKER_BATCH_ATTEMPTS`). The record is read from the inventory topic and
//! parked in `dead_letters` with its bytes (deciding the order line it asked to reserve, as for
//! any parked reserve), and the partition's saved position moves past it, under a new epoch, in
//! one transaction. The new epoch fences the lane that is stuck on the record; the partition is
//! then claimed afresh from the record after. Refused unless the record is the first one at or
//! after the saved position (offsets may have gaps), so it parks only the record the lane is
//! stuck on.

use crate::{
    config::WorkerSettings,
    dead_letter::{self, DeadLetter},
    pool::connect,
};
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    Message, Offset, TopicPartitionList,
};
use shop_infra::dead_letters::{Record, Source};
use std::time::Duration;

/// Why nothing was parked.
#[derive(Debug, thiserror::Error)]
pub enum ParkError {
    #[error(
        "the partition's saved position is {saved:?}, not offset {offset}: nothing was parked"
    )]
    NotStuckThere { saved: Option<i64>, offset: i64 },
    #[error(
        "the record at {partition}/{offset} could not be read from the broker within {within:?}"
    )]
    NotRead {
        partition: i32,
        offset: i64,
        within: Duration,
    },
    #[error("the first record after the saved position is at offset {next}, not {offset}: nothing was parked")]
    NotNext { next: i64, offset: i64 },
    #[error("Kafka client")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("PostgreSQL")]
    Database(#[from] sqlx::Error),
}

const READ_WITHIN: Duration = Duration::from_secs(15);

/// Parks the record at `partition`/`offset` of the inventory topic and moves the partition past
/// it (see the module's documentation).
pub async fn park_record(
    settings: &WorkerSettings,
    partition: i32,
    offset: i64,
) -> Result<(), ParkError> {
    let topic = &settings.kafka.inventory_topic;
    let pool = connect(settings).await?;
    let saved_position = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT next_offset FROM consumer_positions
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3 FOR UPDATE",
        )
        .bind(&settings.consumer_group)
        .bind(topic)
        .bind(partition)
    };
    let saved = saved_position().fetch_optional(&pool).await?;
    let from = match saved {
        Some(from) if from <= offset => from,
        _ => return Err(ParkError::NotStuckThere { saved, offset }),
    };
    let record = read_record(settings, partition, from, offset).await?;
    let letter =
        DeadLetter::unreadable(record, "parked by an operator: its lane could not apply it");
    let mut tx = pool.begin().await?;
    if saved_position().fetch_optional(&mut *tx).await? != saved {
        return Err(ParkError::NotStuckThere { saved, offset });
    }
    dead_letter::park(&mut tx, std::slice::from_ref(&letter)).await?;
    sqlx::query(
        "UPDATE consumer_positions SET next_offset = $4, epoch = epoch + 1, owner = NULL, updated_at = now()
         WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
    )
    .bind(&settings.consumer_group)
    .bind(topic)
    .bind(partition)
    .bind(offset + 1)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    shop_infra::dead_letters::count(Source::InventoryTopic, 1);
    Ok(())
}

/// The record at `offset`, which must be the first one at or after `from`.
async fn read_record(
    settings: &WorkerSettings,
    partition: i32,
    from: i64,
    offset: i64,
) -> Result<Record, ParkError> {
    let topic = &settings.kafka.inventory_topic;
    let consumer: StreamConsumer = settings
        .kafka
        .client_config()
        .set(
            "group.id",
            format!("{}-park-record", settings.consumer_group),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(from))?;
    consumer.assign(&list)?;
    let not_read = ParkError::NotRead {
        partition,
        offset,
        within: READ_WITHIN,
    };
    let message = tokio::time::timeout(READ_WITHIN, consumer.recv())
        .await
        .map_err(|_| not_read)??;
    if message.offset() != offset {
        return Err(ParkError::NotNext {
            next: message.offset(),
            offset,
        });
    }
    Ok(Record::on_topic(
        Source::InventoryTopic,
        topic,
        partition,
        offset,
        message.key(),
        message.payload(),
    ))
}
