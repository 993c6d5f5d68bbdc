//! The checkout worker: applies inventory commands one partition at a time ([`consumer`],
//! [`batch`]), finalises orders, keeps the hot inventory view ([`announce`]), and relays the
//! outbox to Kafka ([`relay`]). It also runs the notifier (crate `notifier`): sign-in codes and
//! order mails. `Worker::build` then `Worker::run` until cancelled.

pub mod announce;
pub mod batch;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod health;
pub mod idle;
pub mod membership;
pub mod metrics;
pub mod park_record;
pub mod relay;

use announce::Announcer;
use axum::{http::StatusCode, routing::get, Json, Router};
use config::WorkerSettings;
use consumer::{InventoryConsumer, Lanes, WorkerContext};
use health::Health;
use rdkafka::producer::FutureProducer;
use shop_infra::{connect_redis, Cache, Keys};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use std::str::FromStr;
use std::{
    net::SocketAddr,
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PostgreSQL")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("Redis")]
    Redis(#[from] redis::RedisError),
    #[error("Kafka client")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("Kafka topics")]
    Topics(#[from] inventory_partitioner::Error),
    #[error("cannot listen")]
    Io(#[from] std::io::Error),
    #[error("notifier")]
    Notifier(#[from] notifier::Error),
    #[error("PostgreSQL did not answer in time while {0}")]
    TimedOut(&'static str),
}

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
        let mut migrator = sqlx::migrate!("../schema");
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
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
        let consumer: InventoryConsumer = settings
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
            .create_with_context(WorkerContext)?;
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
        let scraped = pool.clone();
        let health = Health::new(settings.member_lease);
        let (checked, lively) = (health.clone(), health.clone());
        let router = Router::new()
            .route(
                "/healthz",
                get(move || async move { answer(checked.check()) }),
            )
            .route("/livez", get(move || async move { answer(lively.alive()) }))
            .route(
                "/metrics",
                get(|| async move { shop_infra::metrics::render(&scraped) }),
            );
        let server_stop = stop.clone();
        tokio::spawn(async move {
            let serve = axum::serve(metrics_listener, router)
                .with_graceful_shutdown(async move { server_stop.cancelled().await });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "metrics server stopped");
            }
        });
        let rebuild = (announcer.clone(), pool.clone());
        tokio::spawn(async move {
            match rebuild.0.rebuild_stock(&rebuild.1).await {
                Ok(products) => tracing::info!(products, "hot inventory rebuilt"),
                Err(error) => tracing::warn!(%error, "hot inventory rebuild failed"),
            }
        });
        let outbox_written = Arc::new(tokio::sync::Notify::new());
        let relay = tokio::spawn(relay::run(
            pool.clone(),
            producer,
            settings.clone(),
            outbox_written.clone(),
            stop.clone(),
        ));
        tokio::spawn(relay::report_backlog(pool.clone(), stop.clone()));
        let notifier = settings.notifier_enabled.then(|| {
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
        });
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
            outbox_written,
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

/// `/healthz`: 200 while the worker renews its lease and its lanes move; `/livez`: 200 while it
/// renews its lease (a restart would not help a partition stopped on a record). 503 with the
/// reason otherwise.
fn answer(health: Result<(), String>) -> (StatusCode, Json<serde_json::Value>) {
    match health {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": { "code": "unhealthy", "message": reason } })),
        ),
    }
}

/// The worker's PostgreSQL pool.
///
/// Batch statements take arrays whose length varies from 1 to `WORKER_MAX_BATCH`, over tables
/// that grow from empty: a generic plan made while `orders` was small kept scanning it whole
/// (10 ms a batch at 30,000 orders, seen in pg_stat_statements), so each execution is planned.
///
/// The bounds make a stalled worker harmless to the others: PostgreSQL ends a session of ours
/// that idles inside a transaction (a paused or cut-off worker), so a partition's next owner waits
/// on its locks for at most `WORKER_IDLE_TX_TIMEOUT_MS`; statements and lock waits are bounded;
/// and the server probes a silent client's connection. Sessions are named
/// `checkout-worker/<pid>` in `pg_stat_activity`.
pub async fn connect(settings: &WorkerSettings) -> Result<PgPool, sqlx::Error> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let options = PgConnectOptions::from_str(&settings.database_url)?
        .application_name(&format!("checkout-worker/{}", std::process::id()))
        .options([
            ("plan_cache_mode", "force_custom_plan".to_owned()),
            (
                "idle_in_transaction_session_timeout",
                ms(settings.idle_tx_timeout),
            ),
            ("statement_timeout", ms(settings.statement_timeout)),
            ("lock_timeout", ms(settings.statement_timeout)),
            ("tcp_keepalives_idle", "5".to_owned()),
            ("tcp_keepalives_interval", "2".to_owned()),
            ("tcp_keepalives_count", "3".to_owned()),
        ]);
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}
