//! The transactional outbox: messages written in the same PostgreSQL transaction as the state
//! change they announce, and moved to Kafka by the checkout worker's relay.

use serde::{Deserialize, Serialize};
use shop_domain::messages::{InventoryCommand, OrderEvent};

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

/// The PostgreSQL channel on which writers of outbox rows wake the relays (`NOTIFY`), so an idle
/// relay can wait long between polls and still move a new row at once.
pub const WRITTEN_CHANNEL: &str = "outbox_written";

/// Announced by a relay that has just produced order events, so that a notifier that stopped
/// fetching them while idle fetches again.
pub const ORDER_EVENTS_PRODUCED: &str = "order_events_produced";

/// An outbox row's stream when the row holds several messages: its payload is a JSON array of
/// [`Message`]s. A transaction's messages go out as one row, so the relay claims and deletes one
/// row per order (or per batch of decided orders) instead of one per message.
pub const BUNDLE: &str = "bundle";

/// One message of a [`BUNDLE`] row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub stream: String,
    pub key: String,
    pub payload: String,
}

/// Messages to write in one statement, as one outbox row.
#[derive(Debug, Default)]
pub struct Outbox {
    messages: Vec<Message>,
}

/// The outbox rows to write, as three parallel columns (stream, key, payload): empty, or one row.
#[derive(Debug, Default)]
pub struct Columns {
    pub streams: Vec<String>,
    pub keys: Vec<String>,
    pub payloads: Vec<String>,
}

impl Outbox {
    /// An inventory command, keyed by its product in decimal (the same text as
    /// `inventory_partitioner::product_key`; the relay routes it to the product's lane).
    pub fn command(&mut self, command: &InventoryCommand) -> Result<(), OutboxError> {
        self.push(INVENTORY, command.product_id.to_string(), command)
    }

    /// An order event, keyed by its order.
    pub fn event(&mut self, event: &OrderEvent) -> Result<(), OutboxError> {
        self.push(ORDER_EVENTS, event.order_id().to_string(), event)
    }

    /// A message of `stream` keyed by `key`: what [`Outbox::command`] and [`Outbox::event`] do
    /// with the key and stream right for the message, and what `dead_letters` does for its
    /// announcements. Other crates write only typed commands and events.
    pub(crate) fn push(
        &mut self,
        stream: &'static str,
        key: String,
        message: &impl Serialize,
    ) -> Result<(), OutboxError> {
        self.messages.push(Message {
            stream: stream.to_owned(),
            key,
            payload: serde_json::to_string(message)?,
        });
        Ok(())
    }

    /// The row that carries the messages: none for none, a single message as itself, several
    /// as one [`BUNDLE`] (keyed by the first message's key, for people reading the table).
    pub fn columns(&self) -> Result<Columns, OutboxError> {
        let mut columns = Columns::default();
        match self.messages.as_slice() {
            [] => {}
            [one] => {
                columns.streams.push(one.stream.clone());
                columns.keys.push(one.key.clone());
                columns.payloads.push(one.payload.clone());
            }
            [first, ..] => {
                columns.streams.push(BUNDLE.to_owned());
                columns.keys.push(first.key.clone());
                columns
                    .payloads
                    .push(serde_json::to_string(&self.messages)?);
            }
        }
        Ok(columns)
    }

    /// Writes the messages within the caller's transaction.
    pub async fn insert(self, tx: &mut sqlx::PgConnection) -> Result<(), OutboxError> {
        let columns = self.columns()?;
        if columns.streams.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outbox (stream, message_key, payload)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[])",
        )
        .bind(&columns.streams)
        .bind(&columns.keys)
        .bind(&columns.payloads)
        .execute(tx)
        .await?;
        Ok(())
    }

    /// [`Outbox::insert`], and wakes the relays (`NOTIFY` on [`WRITTEN_CHANNEL`], sent when the
    /// transaction commits) so the messages leave at once rather than at a relay's next look.
    pub async fn insert_and_wake(self, tx: &mut sqlx::PgConnection) -> Result<(), OutboxError> {
        self.insert(&mut *tx).await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WRITTEN_CHANNEL)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// The messages an outbox row holds: itself, or a [`BUNDLE`]'s.
pub fn unbundle(stream: &str, key: &str, payload: &str) -> Result<Vec<Message>, serde_json::Error> {
    if stream == BUNDLE {
        serde_json::from_str(payload)
    } else {
        Ok(vec![Message {
            stream: stream.to_owned(),
            key: key.to_owned(),
            payload: payload.to_owned(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_messages_make_one_bundle_row_and_come_back_out() {
        let mut outbox = Outbox::default();
        assert!(outbox.columns().expect("columns").streams.is_empty());
        outbox
            .push(INVENTORY, "7".into(), &serde_json::json!({"a": 1}))
            .expect("push");
        let one = outbox.columns().expect("columns");
        assert_eq!(
            (one.streams[0].as_str(), one.keys[0].as_str()),
            (INVENTORY, "7")
        );
        assert_eq!(
            unbundle(&one.streams[0], &one.keys[0], &one.payloads[0]).expect("single"),
            outbox.messages
        );
        outbox
            .push(ORDER_EVENTS, "o-1".into(), &"created")
            .expect("push");
        let bundle = outbox.columns().expect("columns");
        assert_eq!(bundle.streams, [BUNDLE]);
        let messages = unbundle(BUNDLE, &bundle.keys[0], &bundle.payloads[0]).expect("bundle");
        assert_eq!(messages, outbox.messages);
        assert_eq!(messages[1].payload, "\"created\"");
        assert!(unbundle(BUNDLE, "k", "not json").is_err());
    }
}
