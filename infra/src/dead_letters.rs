//! The `dead_letters` table: records the shop read but could not use, kept with their bytes
//! exactly as they arrived (a payload may hold anything a producer sent: NUL, invalid UTF-8,
//! nothing at all), where they were read, and why they were parked. Every row is also announced
//! on the dead-letter topic through the outbox, in the same transaction.
//!
//! The checkout worker's lanes and relay park here (and decide the order lines a parked command
//! names); the notifier parks the order events it cannot use. Both run in the worker process, so
//! both count in `checkout_worker_dead_letters_total`.

use crate::outbox::{self, Outbox, OutboxError};
use base64::Engine;
use serde::Serialize;
use uuid::Uuid;

/// Where a parked record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The inventory commands topic, read by a lane.
    InventoryTopic,
    /// The order events topic, read by the notifier.
    OrderEventsTopic,
    /// An outbox row the relay could not route.
    Outbox,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InventoryTopic => "inventory-topic",
            Self::OrderEventsTopic => "order-events-topic",
            Self::Outbox => "outbox",
        }
    }
}

/// The longest reason kept; a longer one is cut (serde's messages quote what they read).
pub const MAX_REASON_CHARS: usize = 1000;
/// The most payload bytes the dead-letter topic's announcement carries (the table keeps all):
/// a record near the broker's size limit must not make an announcement the broker refuses.
pub const MAX_ANNOUNCED_BYTES: usize = 64 * 1024;

/// A record as it was read: from a topic (topic, partition, offset) or from the outbox (row id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub source: Source,
    /// `<partition>/<offset>` on a topic, or the outbox row's id (`<id>/<index>` inside a
    /// bundle): with `source`, what makes a redelivered record parked once.
    pub position: String,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Record {
    /// A record read from `topic` at `partition`/`offset`.
    pub fn on_topic(
        source: Source,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> Self {
        Self {
            source,
            position: format!("{partition}/{offset}"),
            topic: Some(topic.to_owned()),
            partition: Some(partition),
            offset: Some(offset),
            key: key.map(<[u8]>::to_vec),
            payload: payload.unwrap_or_default().to_vec(),
        }
    }
}

impl Record {
    /// An outbox row (or a message of a bundle row) at `position`.
    pub fn in_outbox(position: String, key: &str, payload: &str) -> Self {
        Self {
            source: Source::Outbox,
            position,
            topic: None,
            partition: None,
            offset: None,
            key: Some(key.as_bytes().to_vec()),
            payload: payload.as_bytes().to_vec(),
        }
    }
}

/// A record parked instead of applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub record: Record,
    /// Printable text (see [`printable`]).
    pub reason: String,
    /// The order the record names, if that much could be read.
    pub order: Option<Uuid>,
}

impl Letter {
    pub fn new(record: Record, reason: &str, order: Option<Uuid>) -> Self {
        Self {
            record,
            reason: printable(reason),
            order,
        }
    }
}

/// `text` as PostgreSQL's text, a log line and a mail can all take it: control characters
/// (NUL, line breaks, escapes) become U+FFFD, and it is cut at [`MAX_REASON_CHARS`].
pub fn printable(text: &str) -> String {
    text.chars()
        .take(MAX_REASON_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// What the dead-letter topic carries for one letter: where it was, why, and its bytes in
/// base64 (cut at [`MAX_ANNOUNCED_BYTES`]; `payload_bytes` says how many there were).
#[derive(Debug, Serialize)]
struct Announcement<'a> {
    source: &'static str,
    position: &'a str,
    topic: Option<&'a str>,
    partition: Option<i32>,
    offset: Option<i64>,
    key_base64: Option<String>,
    payload_base64: String,
    payload_bytes: usize,
    reason: &'a str,
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parks `letters` inside the caller's transaction: a row each (a letter parked before, at the
/// same source and position, is left as it was) and its announcement. Returns the letters that
/// were new.
pub async fn park<'l>(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    letters: &'l [Letter],
) -> Result<Vec<&'l Letter>, OutboxError> {
    if letters.is_empty() {
        return Ok(Vec::new());
    }
    let records = letters.iter().map(|l| &l.record);
    let new: Vec<(String, Option<String>, String)> = sqlx::query_as(
        r#"INSERT INTO dead_letters (source, position, topic, "partition", "offset", message_key, payload, reason, order_id)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::INT[], $5::BIGINT[], $6::BYTEA[], $7::BYTEA[], $8::TEXT[], $9::UUID[])
         ON CONFLICT ON CONSTRAINT dead_letters_source_topic_position_key DO NOTHING
         RETURNING source, topic, position"#,
    )
    .bind(records.clone().map(|r| r.source.as_str()).collect::<Vec<_>>())
    .bind(records.clone().map(|r| r.position.as_str()).collect::<Vec<_>>())
    .bind(records.clone().map(|r| r.topic.as_deref()).collect::<Vec<_>>())
    .bind(records.clone().map(|r| r.partition).collect::<Vec<_>>())
    .bind(records.clone().map(|r| r.offset).collect::<Vec<_>>())
    .bind(records.clone().map(|r| r.key.as_deref()).collect::<Vec<_>>())
    .bind(records.map(|r| r.payload.as_slice()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.order).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let fresh: Vec<&Letter> = letters
        .iter()
        .filter(|l| {
            let r = &l.record;
            new.iter().any(|(source, topic, position)| {
                source == r.source.as_str() && *topic == r.topic && *position == r.position
            })
        })
        .collect();
    let mut announcements = Outbox::default();
    for letter in &fresh {
        let record = &letter.record;
        let key = letter
            .order
            .map_or_else(|| "unknown".to_owned(), |o| o.to_string());
        let shown = &record.payload[..record.payload.len().min(MAX_ANNOUNCED_BYTES)];
        announcements.push(
            outbox::DEAD_LETTERS,
            key,
            &Announcement {
                source: record.source.as_str(),
                position: &record.position,
                topic: record.topic.as_deref(),
                partition: record.partition,
                offset: record.offset,
                key_base64: record.key.as_deref().map(base64),
                payload_base64: base64(shown),
                payload_bytes: record.payload.len(),
                reason: &letter.reason,
            },
        )?;
    }
    announcements.insert(tx).await?;
    Ok(fresh)
}

/// Records parked, by `source`.
pub const METRIC: &str = "checkout_worker_dead_letters_total";

/// Counts `parked` letters from `source` in [`METRIC`].
pub fn count(source: Source, parked: usize) {
    metrics::counter!(METRIC, "source" => source.as_str()).increment(parked as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_printable_and_bounded() {
        assert_eq!(
            printable("bad \0 byte\r\nSubject: x"),
            "bad \u{fffd} byte\u{fffd}\u{fffd}Subject: x"
        );
        assert_eq!(
            printable(&"é".repeat(5000)).chars().count(),
            MAX_REASON_CHARS
        );
    }

    #[test]
    fn a_record_keeps_its_bytes_and_where_it_was_read() {
        let record = Record::on_topic(
            Source::InventoryTopic,
            "t",
            3,
            17,
            Some(b"\xff\x00"),
            Some(b"\x00not json{"),
        );
        assert_eq!(record.position, "3/17");
        assert_eq!(record.key.as_deref(), Some(&b"\xff\x00"[..]));
        assert_eq!(record.payload, b"\x00not json{");
        let empty = Record::on_topic(Source::OrderEventsTopic, "t", 0, 0, None, None);
        assert!(empty.payload.is_empty() && empty.key.is_none());
    }
}
