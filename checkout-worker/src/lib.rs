//! The checkout worker: applies inventory commands one partition at a time, finalises orders,
//! keeps the hot inventory view ([`announce`]), and relays the outbox to Kafka ([`relay`]). It
//! also runs the notifier (crate `notifier`): sign-in codes and order mails. `Worker::build` then
//! `Worker::run` until cancelled.
//!
//! | module          | job                                                                      |
//! |-----------------|--------------------------------------------------------------------------|
//! | [`consumer`]    | the receive loop: a lane per owned partition, records handed to lanes    |
//! | [`membership`]  | group membership, partition claims and positions; the heartbeat task     |
//! | [`fetch`]       | which partitions the Kafka consumer fetches, and from where               |
//! | [`idle`]        | which idle partitions to stop fetching, and when to fetch them again     |
//! | [`wake`]        | wake-ups from PostgreSQL: relayed commands, outbox rows written          |
//! | [`lane`]        | one partition's lane: batches, retries, a stopped partition              |
//! | [`lanes`]       | what those parts share                                                   |
//! | [`batch`]       | one batch in one transaction: [`batch::decide`] (pure) and its writes     |
//! | [`finalize`]    | orders whose last line was decided: the status, what follows it          |
//! | [`dead_letter`] | records parked instead of applied, and the order lines they decide       |
//! | [`received`]    | a record a lane read                                                     |
//! | [`relay`]       | the outbox to Kafka                                                      |
//! | [`announce`]    | the hot inventory view and status announcements after a batch            |
//! | [`park_record`] | the operator's way past a record that stopped its partition              |
//! | [`tail`]        | `checkout-worker tail-events`                                            |
//! | [`kafka`], [`pool`], [`http`], [`health`], [`metrics`], [`config`], [`error`] | plumbing  |

pub mod announce;
pub mod batch;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod error;
pub mod fetch;
pub mod finalize;
pub mod health;
pub mod http;
pub mod idle;
pub mod kafka;
pub mod lane;
pub mod lanes;
pub mod membership;
pub mod metrics;
pub mod park_record;
pub mod pool;
pub mod received;
pub mod relay;
pub mod tail;
pub mod wake;

pub use error::Error;
pub use pool::connect;

use announce::Announcer;
use config::WorkerSettings;
use health::Health;
use kafka::InventoryConsumer;
use lanes::Lanes;
use rdkafka::producer::FutureProducer;
use shop_infra::{connect_redis, place::Places, Cache, Keys};
use sqlx::PgPool;
use std::{
    net::SocketAddr,
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub struct Worker {
    settings: WorkerSettings,
    pool: PgPool,
    announcer: Announcer,
    producer: FutureProducer,
    consumer: Arc<InventoryConsumer>,
    metrics_listener: TcpListener,
}

impl Worker {
    /// Connects to PostgreSQL (applying migrations), Redis and Kafka, and creates the topics.
    pub async fn build(settings: WorkerSettings) -> Result<Self, Error> {
        let pool = connect(&settings).await?;
        shop_infra::schema::migrate(&pool).await?;
        let redis = connect_redis(&settings.redis_url).await?;
        let announcer = Announcer {
            // Stock entries the worker writes expire after a day; every batch that touches a
            // product and every start rewrite them.
            cache: Cache::new(redis.clone(), Duration::from_secs(86_400)),
            keys: Keys::new(&settings.redis_key_prefix),
            redis,
        };
        settings.kafka.ensure_topics().await?;
        let producer = relay::producer(&settings)?;
        let consumer = kafka::inventory_consumer(&settings)?;
        let metrics_listener = TcpListener::bind(settings.metrics_addr).await?;
        shop_infra::metrics::handle();
        Ok(Self {
            settings,
            pool,
            announcer,
            producer,
            consumer: Arc::new(consumer),
            metrics_listener,
        })
    }

    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    /// Runs the relay and the partition lanes until `stop` is cancelled; then finishes the
    /// batches in hand, commits offsets and leaves the consumer group.
    pub async fn run(self, stop: CancellationToken) -> Result<(), Error> {
        let Self {
            settings,
            pool,
            announcer,
            producer,
            consumer,
            metrics_listener,
        } = self;
        let health = Health::new(settings.member_lease);
        http::spawn(metrics_listener, health.clone(), pool.clone(), stop.clone());
        let rebuild = (announcer.clone(), pool.clone());
        tokio::spawn(async move {
            match rebuild.0.rebuild_stock(&rebuild.1).await {
                Ok(products) => tracing::info!(products, "hot inventory rebuilt"),
                Err(error) => tracing::warn!(%error, "hot inventory rebuild failed"),
            }
        });
        let relay_wake = Arc::new(relay::Wake::default());
        let relay = tokio::spawn(relay::run(
            pool.clone(),
            producer,
            settings.clone(),
            Places::new(announcer.redis.clone(), announcer.keys.clone()),
            relay_wake.clone(),
            stop.clone(),
        ));
        tokio::spawn(relay::report_backlog(pool.clone(), stop.clone()));
        let notifier = settings
            .notifier_enabled
            .then(|| spawn_notifier(&settings, &pool, &announcer, &stop));
        let membership = membership::Membership {
            pool: pool.clone(),
            group: settings.consumer_group.clone(),
            topic: settings.kafka.inventory_topic.clone(),
            partitions: settings.kafka.inventory_partitions,
            member: uuid::Uuid::new_v4(),
            lease: settings.member_lease,
        };
        let lanes = Arc::new(Lanes {
            membership,
            consumer,
            announcer,
            health,
            max_batch: settings.max_batch.max(1),
            batch_timeout: settings.statement_timeout * 2,
            batch_attempts: settings.batch_attempts.max(1),
            stop,
            reclaim: AtomicBool::new(false),
            idle_pause: settings.idle_pause,
            relay_wake,
        });
        tracing::info!(topic = %lanes.membership.topic, group = %settings.consumer_group, "checkout worker running");
        consumer::run(lanes).await?;
        if relay.await.is_err() {
            tracing::warn!("outbox relay task ended abnormally");
        }
        if let Some(notifier) = notifier {
            match notifier.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "the notifier stopped"),
                Err(_) => tracing::warn!("the notifier task ended abnormally"),
            }
        }
        tracing::info!("checkout worker stopped");
        Ok(())
    }
}

/// Runs the notifier role on a task of its own until `stop`.
fn spawn_notifier(
    settings: &WorkerSettings,
    pool: &PgPool,
    announcer: &Announcer,
    stop: &CancellationToken,
) -> JoinHandle<Result<(), notifier::Error>> {
    tokio::spawn(
        notifier::Notifier {
            pool: pool.clone(),
            redis: announcer.redis.clone(),
            keys: announcer.keys.clone(),
            kafka: settings.kafka.clone(),
            settings: settings.notifier.clone(),
        }
        .run(stop.clone()),
    )
}

/// Builds a worker and runs it until SIGTERM or Ctrl-C: `checkout-worker run`.
pub async fn run_until_signalled(settings: WorkerSettings) -> Result<(), Error> {
    let worker = Worker::build(settings).await?;
    tracing::info!(metrics = %worker.metrics_addr()?, "checkout worker starting");
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shop_infra::shutdown::signal().await;
        on_signal.cancel();
    });
    worker.run(stop).await
}
