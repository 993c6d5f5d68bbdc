//! Which partition of the inventory topic owns a product, and the topics themselves.
//!
//! ## The topics
//! [`KafkaSettings`] names them (each read from the environment, and defaulted, here):
//! - the inventory commands (`INVENTORY_TOPIC`): `reserve`, `release` and `restock`
//!   (`shop_domain::messages::InventoryCommand`), keyed by product, on the product's partition;
//! - the order events (`ORDER_EVENTS_TOPIC`): `OrderCreated`, `OrderConfirmed`, `OrderRejected`
//!   and `OrderCancelled` (`shop_domain::messages::OrderEvent`), keyed by order;
//! - the dead letters (`DEAD_LETTER_TOPIC`, one partition): records the pipeline parked.
//!
//! Each is created with `TOPIC_REPLICATION_FACTOR` copies of every partition (1 by default, for
//! the one local broker) and, when `TOPIC_MIN_INSYNC_REPLICAS` is set, that topic-level
//! `min.insync.replicas`: the copies a record must be on before the relay's `acks=all` write is
//! acknowledged (3 and 2 on a three-broker cluster: one broker can be lost without losing an
//! acknowledged record or stopping writes).
//!
//! ## The mapping
//! A product's inventory commands are keyed by the product id in decimal (`"42"`), and go to
//! partition `(murmur2(key) & 0x7fffffff) % partitions` — exactly what Apache Kafka's Java
//! client does by default for that key. So the mapping is stable (it depends only on the id and
//! the partition count), and a producer in any language that uses Kafka's default partitioner
//! with the same key agrees with it. Changing the partition count moves products between
//! partitions: drain the topic first (see README, "Re-partitioning").
//!
//! Every producer (the outbox relay) and the worker (which checks that each command arrived on
//! the partition it should) go through [`partition_for`], which takes the product's
//! [`ProductId`] (the key's text is made only to be hashed, as Kafka's client would).

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    types::RDKafkaErrorCode,
};
use shop_domain::ProductId;
use shop_infra::env::{var, ConfigError};
use std::{num::NonZeroU16, str::FromStr, time::Duration};

/// Kafka's murmur2 (as in `org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The message key of a product's inventory commands: the id in decimal, as [`ProductId`]
/// displays it (which is also the key `shop_infra::outbox::Outbox::command` writes).
pub fn product_key(product: ProductId) -> String {
    product.to_string()
}

/// The partition that owns `product` when the inventory topic has `partitions` partitions.
pub fn partition_for(product: ProductId, partitions: i32) -> i32 {
    let hash = murmur2(product_key(product).as_bytes()) & 0x7fff_ffff;
    hash % partitions.max(1)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Kafka admin request failed")]
    Kafka(#[from] KafkaError),
    #[error("cannot create topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("cannot delete topic {topic}: {code}")]
    DeleteTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    /// See [`KafkaSettings::delete_topics_with_prefix`].
    #[error("refused to delete the topics starting with {prefix:?}: {others} other topics live on this broker, and tansu 0.6.0 deletes every topic when it deletes one")]
    OthersWouldGo { prefix: String, others: usize },
    #[error("topic {topic} has {actual} partitions but {expected} are configured; products would move between partitions")]
    PartitionMismatch {
        topic: String,
        expected: i32,
        actual: usize,
    },
    #[error("TOPIC_MIN_INSYNC_REPLICAS {min_insync} exceeds TOPIC_REPLICATION_FACTOR {replication}: no write with acks=all could succeed")]
    MinInsyncAboveReplication {
        min_insync: NonZeroU16,
        replication: NonZeroU16,
    },
}

/// A setting that may be left empty: empty is `None`, anything else must parse as `T`.
#[derive(Debug, PartialEq, Eq)]
struct Optional<T>(Option<T>);

impl<T: FromStr> FromStr for Optional<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            Ok(Self(None))
        } else {
            s.parse().map(|value| Self(Some(value)))
        }
    }
}

/// `KAFKA_BROKERS`'s local default.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// The broker and the topics of the pipeline, from the environment.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `KAFKA_BROKERS`: bootstrap servers.
    pub brokers: String,
    /// `INVENTORY_TOPIC`: reserve, release and restock commands, keyed and partitioned by
    /// product.
    pub inventory_topic: String,
    /// `INVENTORY_PARTITIONS`: partitions of the inventory topic (the unit of parallelism).
    pub inventory_partitions: i32,
    /// `ORDER_EVENTS_TOPIC`: OrderCreated, OrderConfirmed, OrderRejected and OrderCancelled,
    /// keyed by order.
    pub order_events_topic: String,
    /// `ORDER_EVENTS_PARTITIONS`: partitions of the order events topic.
    pub order_events_partitions: i32,
    /// `DEAD_LETTER_TOPIC`: messages the pipeline could not read or route (one partition).
    pub dead_letter_topic: String,
    /// `TOPIC_REPLICATION_FACTOR`: copies of each partition of the topics created here (1, the
    /// default, for one broker; 3 on a three-broker cluster). Existing topics keep theirs.
    pub replication_factor: NonZeroU16,
    /// `TOPIC_MIN_INSYNC_REPLICAS`: the created topics' `min.insync.replicas`. Empty (the
    /// default): the topics take the broker's `min.insync.replicas`.
    pub min_insync_replicas: Option<NonZeroU16>,
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            brokers: var("KAFKA_BROKERS", DEFAULT_BROKERS)?,
            inventory_topic: var("INVENTORY_TOPIC", "shop.inventory-commands")?,
            inventory_partitions: var("INVENTORY_PARTITIONS", "8")?,
            order_events_topic: var("ORDER_EVENTS_TOPIC", "shop.order-events")?,
            order_events_partitions: var("ORDER_EVENTS_PARTITIONS", "4")?,
            dead_letter_topic: var("DEAD_LETTER_TOPIC", "shop.dead-letters")?,
            replication_factor: var("TOPIC_REPLICATION_FACTOR", "1")?,
            min_insync_replicas: var::<Optional<_>>("TOPIC_MIN_INSYNC_REPLICAS", "")?.0,
        })
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }

    /// The `min.insync.replicas` to create the topics with, if one is configured; refuses one
    /// above the replication factor.
    fn min_insync_config(&self) -> Result<Option<String>, Error> {
        match self.min_insync_replicas {
            Some(min_insync) if min_insync > self.replication_factor => {
                Err(Error::MinInsyncAboveReplication {
                    min_insync,
                    replication: self.replication_factor,
                })
            }
            min_insync => Ok(min_insync.map(|n| n.to_string())),
        }
    }

    /// Creates the topics when missing, and checks that an existing inventory topic has the
    /// configured partition count.
    pub async fn ensure_topics(&self) -> Result<(), Error> {
        let min_insync = self.min_insync_config()?;
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let replication = i32::from(self.replication_factor.get());
        let topics = [
            (&self.inventory_topic, self.inventory_partitions),
            (&self.order_events_topic, self.order_events_partitions),
            (&self.dead_letter_topic, 1),
        ]
        .map(|(name, partitions)| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
            match &min_insync {
                Some(min_insync) => topic.set("min.insync.replicas", min_insync),
                None => topic,
            }
        });
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(topic) => tracing::info!(%topic, "topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
            }
        }
        let actual = self.partition_count(&self.inventory_topic).await?;
        if actual != self.inventory_partitions as usize {
            return Err(Error::PartitionMismatch {
                topic: self.inventory_topic.clone(),
                expected: self.inventory_partitions,
                actual,
            });
        }
        Ok(())
    }

    /// Deletes every topic whose name starts with `prefix`, and returns their names; refuses
    /// ([`Error::OthersWouldGo`]) while any other topic lives on the broker. tansu 0.6.0's SQLite
    /// storage deletes a topic with a statement that matches every topic of the cluster
    /// (`sql/topic_delete_by.sql`), and its partitions, records and offsets go with them by
    /// cascade: deleting one test's topics beside a running shop took the shop's commands and
    /// events (the topics that "vanished after a broker restart"; the restart only showed it).
    /// So tests and benchmarks leave their topics behind, and this deletes only on a broker
    /// that holds nothing else.
    pub async fn delete_topics_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error> {
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let consumer: BaseConsumer = self.client_config().create()?;
        let all = tokio_blocking(move || {
            let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
            Ok::<_, KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .map(|t| t.name().to_owned())
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
        let (names, others): (Vec<String>, Vec<String>) =
            all.into_iter().partition(|name| name.starts_with(prefix));
        let others = others.iter().filter(|n| !n.starts_with("__")).count();
        if others > 0 && !names.is_empty() {
            return Err(Error::OthersWouldGo {
                prefix: prefix.to_owned(),
                others,
            });
        }
        self.delete_topics(&names).await?;
        Ok(names)
    }

    /// Deletes `topics`; one already gone is fine.
    async fn delete_topics(&self, topics: &[String]) -> Result<(), Error> {
        if topics.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        for result in admin.delete_topics(&names, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => return Err(Error::DeleteTopic { topic, code }),
            }
        }
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> Result<usize, Error> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let topic = topic.to_owned();
        // librdkafka's metadata call blocks; keep it off the async threads.
        let count = tokio_blocking(move || {
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            Ok::<_, KafkaError>(
                metadata
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len()),
            )
        })
        .await?;
        Ok(count)
    }
}

async fn tokio_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let vectors: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in vectors {
            assert_eq!(
                murmur2(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // As the Java client places "foobar" among 50 partitions.
        assert_eq!((murmur2(b"foobar") & 0x7fff_ffff) % 50, 16);
    }

    #[test]
    fn replication_settings_parse_with_empty_as_unset() {
        let unset: Optional<NonZeroU16> = "".parse().expect("empty is unset");
        assert_eq!(unset, Optional(None));
        let two: Optional<NonZeroU16> = "2".parse().expect("a count");
        assert_eq!(two.0.map(NonZeroU16::get), Some(2));
        for bad in ["0", "-1", "two", " 2"] {
            assert!(bad.parse::<Optional<NonZeroU16>>().is_err(), "{bad:?}");
            assert!(bad.parse::<NonZeroU16>().is_err(), "{bad:?}");
        }
        // Through the environment reader, which names the variable in its error.
        let err = var::<Optional<NonZeroU16>>("INVENTORY_PARTITIONER_TEST_UNSET", "0")
            .expect_err("zero replicas");
        assert!(err.to_string().contains("INVENTORY_PARTITIONER_TEST_UNSET"));
    }

    #[test]
    fn min_insync_is_set_only_when_configured_and_not_above_replication(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut kafka = KafkaSettings::from_env()?;
        let count = |n: u16| NonZeroU16::new(n).ok_or("zero");
        kafka.replication_factor = count(3)?;
        kafka.min_insync_replicas = None;
        assert_eq!(kafka.min_insync_config()?, None);
        kafka.min_insync_replicas = Some(count(2)?);
        assert_eq!(kafka.min_insync_config()?.as_deref(), Some("2"));
        kafka.min_insync_replicas = Some(count(3)?);
        assert_eq!(kafka.min_insync_config()?.as_deref(), Some("3"));
        kafka.min_insync_replicas = Some(count(4)?);
        assert!(matches!(
            kafka.min_insync_config(),
            Err(Error::MinInsyncAboveReplication { .. })
        ));
        Ok(())
    }

    #[test]
    fn partitions_are_stable_in_range_and_spread() -> Result<(), shop_domain::ValidationError> {
        let mut counts = [0u32; 8];
        for id in 1..=8000 {
            let p = partition_for(ProductId::new(id)?, 8);
            assert!((0..8).contains(&p));
            assert_eq!(p, partition_for(ProductId::new(id)?, 8), "stable");
            counts[p as usize] += 1;
        }
        // Roughly even: every partition within 15 % of the mean.
        assert!(
            counts.iter().all(|&c| (850..=1150).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(partition_for(ProductId::new(5)?, 1), 0);
        let product = ProductId::new(42)?;
        assert_eq!(product_key(product), "42");
        assert_eq!(
            product_key(product),
            product.to_string(),
            "the outbox's key"
        );
        Ok(())
    }
}
