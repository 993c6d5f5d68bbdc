//! Every setting of the checkout worker, read from the environment in this one place. The
//! settings every service shares ([`Shared`]) are read once, here, for the whole process: the
//! worker's own and its notifier's come from the same reading.

use inventory_partitioner::KafkaSettings;
use notifier::config::NotifierSettings;
use shop_infra::{
    env::{var, ConfigError},
    settings::Shared,
};
use std::{net::SocketAddr, time::Duration};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `DATABASE_URL` ([`Shared::database_url`]).
    pub database_url: String,
    /// `WORKER_DATABASE_MAX_CONNECTIONS`: one per partition task, plus the relay.
    pub database_max_connections: u32,
    /// `REDIS_URL` ([`Shared::redis_url`]).
    pub redis_url: String,
    /// `REDIS_KEY_PREFIX` ([`Shared::redis_key_prefix`]): must match the API's.
    pub redis_key_prefix: String,
    /// `KAFKA_BROKERS`, `INVENTORY_TOPIC`, `INVENTORY_PARTITIONS`, `ORDER_EVENTS_TOPIC`,
    /// `ORDER_EVENTS_PARTITIONS`, `DEAD_LETTER_TOPIC`, `TOPIC_REPLICATION_FACTOR`,
    /// `TOPIC_MIN_INSYNC_REPLICAS` ([`KafkaSettings::from_env`]).
    pub kafka: KafkaSettings,
    /// `CONSUMER_GROUP`: workers in one group split the partitions between them.
    pub consumer_group: String,
    /// `MEMBER_LEASE_MS`: a worker that has not renewed its membership for this long is
    /// presumed dead and its partitions move to the others. Renewed every third of it.
    pub member_lease: Duration,
    /// `WORKER_IDLE_TX_TIMEOUT_MS`: PostgreSQL ends a worker session that sits this long inside a
    /// transaction (a paused or cut-off worker), releasing its locks for the partition's next
    /// owner.
    pub idle_tx_timeout: Duration,
    /// `WORKER_STATEMENT_TIMEOUT_MS`: longest statement and longest lock wait of the worker's
    /// sessions; a batch as a whole gets twice this before it is abandoned and retried.
    pub statement_timeout: Duration,
    /// `WORKER_MAX_BATCH`: most commands applied in one transaction.
    pub max_batch: usize,
    /// `WORKER_BATCH_ATTEMPTS`: how often a batch that fails for a reason retrying cannot cure
    /// (not an outage, a lock wait or a deadlock) is tried before its lane applies its records
    /// one at a time; a record that fails that often alone stops its partition, loudly, until
    /// it applies or an operator parks it (`checkout-worker park-record`).
    pub batch_attempts: u32,
    /// `CONSUMER_FETCH_WAIT_MS`: longest a fetch from the broker waits for data. Short keeps
    /// orders fast on brokers that hold a fetch for its whole wait; longer costs the broker less
    /// while idle.
    pub fetch_wait_ms: u32,
    /// `RELAY_BATCH`: most outbox rows moved to Kafka per round.
    pub relay_batch: i64,
    /// `RELAY_CLAIM_MS`: how long outbox rows a relay took stay its own; a relay that has not
    /// sent and deleted them by then (paused, cut off) leaves them to the others.
    pub relay_claim: Duration,
    /// `RELAY_IDLE_POLL_MS`: how long the relay first waits when the outbox is empty; the wait
    /// doubles with every empty round up to `RELAY_IDLE_POLL_MAX_MS`, and starts again at once
    /// when there are rows, or when a writer announces rows (`NOTIFY outbox_written`: the API's
    /// checkouts, or a batch of this process).
    pub relay_idle_poll: Duration,
    /// `RELAY_IDLE_POLL_MAX_MS`: the longest wait of an idle relay.
    pub relay_idle_poll_max: Duration,
    /// `CONSUMER_IDLE_PAUSE_MS`: a partition with no command for this long stops being fetched
    /// until a relay announces commands for it (or, as a safety net, a look every twenty times
    /// this finds that its log grew); `0` keeps every partition fetched all the time.
    pub idle_pause: Duration,
    /// `WORKER_METRICS_ADDR`: `/metrics` and `/healthz` of the worker.
    pub metrics_addr: SocketAddr,
    /// `WORKER_NOTIFIER`: whether this process also runs the notifier (on by default; every
    /// worker that runs it shares the sending).
    pub notifier_enabled: bool,
    /// The notifier role's settings (`SMTP_URL`, `SMS_GATEWAY_URL`, …; `SIGN_IN_CODE_KEY` and
    /// `SIGN_IN_CODE_TTL_SECS` from the same [`Shared`] as the fields above).
    pub notifier: NotifierSettings,
}

impl WorkerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let shared = Shared::from_env()?;
        Ok(Self {
            database_url: shared.database_url.clone(),
            database_max_connections: var("WORKER_DATABASE_MAX_CONNECTIONS", "16")?,
            redis_url: shared.redis_url.clone(),
            redis_key_prefix: shared.redis_key_prefix.clone(),
            kafka: KafkaSettings::from_env()?,
            consumer_group: var("CONSUMER_GROUP", "shop-checkout-worker")?,
            member_lease: Duration::from_millis(var("MEMBER_LEASE_MS", "6000")?),
            fetch_wait_ms: var("CONSUMER_FETCH_WAIT_MS", "5")?,
            idle_tx_timeout: Duration::from_millis(var("WORKER_IDLE_TX_TIMEOUT_MS", "2000")?),
            statement_timeout: Duration::from_millis(var("WORKER_STATEMENT_TIMEOUT_MS", "5000")?),
            max_batch: var("WORKER_MAX_BATCH", "500")?,
            batch_attempts: var("WORKER_BATCH_ATTEMPTS", "8")?,
            relay_batch: var("RELAY_BATCH", "1000")?,
            relay_claim: Duration::from_millis(var("RELAY_CLAIM_MS", "3000")?),
            relay_idle_poll: Duration::from_millis(var("RELAY_IDLE_POLL_MS", "10")?),
            relay_idle_poll_max: Duration::from_millis(var("RELAY_IDLE_POLL_MAX_MS", "1000")?),
            idle_pause: Duration::from_millis(var("CONSUMER_IDLE_PAUSE_MS", "1000")?),
            metrics_addr: var("WORKER_METRICS_ADDR", "127.0.0.1:9101")?,
            notifier_enabled: var("WORKER_NOTIFIER", "true")?,
            notifier: NotifierSettings::from_env(&shared)?,
        })
    }
}
