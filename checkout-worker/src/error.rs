//! Why the worker could not start, or stopped: one error type for [`crate::Worker`] and the
//! parts it runs.

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
