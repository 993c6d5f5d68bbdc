//! The transactional outbox: messages written in the same PostgreSQL transaction as the state
//! change they announce, and moved to Kafka by the checkout worker's relay.

use serde::Serialize;

/// Inventory commands: keyed by product id, sent to the product's partition.
pub const INVENTORY: &str = "inventory";
/// Order events: keyed by order id.
pub const ORDER_EVENTS: &str = "order-events";
/// Messages the pipeline parked because it could not read or route them: keyed by the order
/// they name, if any.
pub const DEAD_LETTERS: &str = "dead-letters";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot encode an outbox message")]
    Encode(#[from] serde_json::Error),
    #[error("cannot write the outbox")]
    Database(#[from] sqlx::Error),
}

/// Messages to write in one statement.
#[derive(Debug, Default)]
pub struct Outbox {
    streams: Vec<&'static str>,
    keys: Vec<String>,
    payloads: Vec<String>,
}

impl Outbox {
    pub fn push(
        &mut self,
        stream: &'static str,
        key: String,
        message: &impl Serialize,
    ) -> Result<(), OutboxError> {
        self.payloads.push(serde_json::to_string(message)?);
        self.streams.push(stream);
        self.keys.push(key);
        Ok(())
    }

    /// The messages as three parallel columns (stream, key, payload), for callers that write
    /// them within a larger statement.
    pub fn columns(&self) -> (&[&'static str], &[String], &[String]) {
        (&self.streams, &self.keys, &self.payloads)
    }

    /// Writes the messages within the caller's transaction.
    pub async fn insert(self, tx: &mut sqlx::PgConnection) -> Result<(), OutboxError> {
        if self.streams.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outbox (stream, message_key, payload)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[])",
        )
        .bind(&self.streams)
        .bind(&self.keys)
        .bind(&self.payloads)
        .execute(tx)
        .await?;
        Ok(())
    }
}
