//! The suite's errors: every module returns [`BenchError`]; `main` reports it.

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot set up the system: {0}")]
    Setup(String),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("{0} orders, outbox rows or releases still unsettled after the deadline")]
    Unsettled(i64),
    #[error("HTTP request failed")]
    Http(#[from] reqwest::Error),
    #[error("PostgreSQL")]
    Database(#[from] sqlx::Error),
    #[error("Redis")]
    Redis(#[from] redis::RedisError),
    #[error("I/O")]
    Io(#[from] std::io::Error),
}
