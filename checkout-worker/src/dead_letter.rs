//! Messages the pipeline cannot read or route are parked, never skipped silently and never
//! allowed to stop a partition or the relay: a row in `dead_letters`, a message on the dead-letter
//! topic (through the outbox), `checkout_worker_dead_letters_total`, and an alert. When the
//! message asked to reserve an order line that can still be identified, that line is decided
//! SHORT with the reason, so the order ends REJECTED (its other reserved lines are released as
//! for any rejection) instead of staying PENDING for ever.
//!
//! This sits below the batch (which parks the records it cannot apply), the relay and
//! `park-record`: it writes through `shop_infra::orders::lane` and finalises through
//! [`crate::finalize`], and imports nothing of theirs. What a lane read, [`Received`], lives in
//! [`crate::received`].

pub use crate::received::Received;

use crate::finalize::{self, LineCounts};
use shop_domain::{messages::InventoryCommand, OrderId, ProductId};
use shop_infra::{
    dead_letters::{self, Letter, Record},
    orders::{
        lane::{self, LineKey},
        settle::{outbox_error, Settled},
    },
};
use uuid::Uuid;

/// A record parked instead of applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub letter: Letter,
    /// The product whose reservation for the letter's order it asked for: that line is decided
    /// SHORT, so its order does not wait for ever.
    pub reserve_of: Option<ProductId>,
}

impl DeadLetter {
    /// A record that could not be read or routed, naming whatever order line its JSON still
    /// shows.
    pub fn unreadable(record: Record, reason: &str) -> Self {
        let json: serde_json::Value = serde_json::from_slice(&record.payload).unwrap_or_default();
        let order = json["order_id"]
            .as_str()
            .and_then(|o| o.parse::<Uuid>().ok())
            .map(OrderId::from_uuid);
        let reserve_of = json["product_id"]
            .as_i64()
            .and_then(|p| ProductId::new(p).ok())
            .filter(|_| json["kind"] == "reserve" && order.is_some());
        Self {
            letter: Letter::new(record, reason, order.as_ref().map(OrderId::as_uuid)),
            reserve_of,
        }
    }

    /// A command that reads well but names nothing it may change (an unknown product, an order
    /// line that does not exist or holds another quantity): parked, and no line is decided by it.
    pub fn refused(record: Record, command: &InventoryCommand, reason: &str) -> Self {
        Self {
            letter: Letter::new(record, reason, Some(command.order_id.as_uuid())),
            reserve_of: None,
        }
    }
}

/// What parking did.
#[derive(Debug, Default)]
pub struct Parked {
    /// Letters not parked before (a redelivered one is parked once).
    pub parked: usize,
    /// Orders whose last line this decided.
    pub finalized: Vec<Settled>,
}

/// Parks `letters` inside the caller's transaction and decides the lines they name.
pub async fn park(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    letters: &[DeadLetter],
) -> Result<Parked, sqlx::Error> {
    if letters.is_empty() {
        return Ok(Parked::default());
    }
    let plain: Vec<Letter> = letters.iter().map(|l| l.letter.clone()).collect();
    let fresh: Vec<&DeadLetter> = dead_letters::park(tx, &plain)
        .await
        .map_err(outbox_error)?
        .into_iter()
        .filter_map(|new| letters.iter().find(|l| l.letter == *new))
        .collect();
    let finalized = decide_named_lines(tx, &fresh).await?;
    Ok(Parked {
        parked: fresh.len(),
        finalized,
    })
}

/// The still undecided lines the letters asked to reserve become SHORT with the letter's reason
/// (recorded in the ledger as a reserve not applied, so a readable copy arriving later changes
/// nothing), and their orders are counted and finalised.
async fn decide_named_lines(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    letters: &[&DeadLetter],
) -> Result<Vec<Settled>, sqlx::Error> {
    let lines: Vec<(LineKey, String)> = letters
        .iter()
        .filter_map(|l| {
            let reason = format!("the reservation was parked: {}", l.letter.reason);
            let order = OrderId::from_uuid(l.letter.order?);
            Some(((order, l.reserve_of?), reason))
        })
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let decided = lane::short_parked_reserves(tx, &lines).await?;
    let mut counts = LineCounts::new();
    for order in decided {
        let entry = counts.entry(order.as_uuid()).or_default();
        entry.0 += 1;
        entry.1 += 1;
    }
    finalize::count_and_finalize(tx, &counts).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_domain::{
        messages::{CommandKind, SCHEMA_VERSION},
        Quantity,
    };
    use shop_infra::dead_letters::Source;

    fn read(payload: &[u8]) -> Received {
        Received::read(Record::on_topic(
            Source::InventoryTopic,
            "t",
            0,
            1,
            Some(b"7"),
            Some(payload),
        ))
    }

    fn parked(payload: &[u8]) -> DeadLetter {
        let received = read(payload);
        let reason = received.read.expect_err("parked");
        DeadLetter::unreadable(received.record, &reason)
    }

    #[test]
    fn commands_of_this_version_pass_and_newer_or_unreadable_ones_are_parked() {
        let order = OrderId::generate();
        let product = ProductId::new(7).expect("id");
        let command = InventoryCommand::new(
            CommandKind::Reserve,
            order,
            product,
            Quantity::new(2).expect("quantity"),
        );
        let json = serde_json::to_vec(&command).expect("json");
        assert_eq!(read(&json).read, Ok(command));

        let mut newer = serde_json::to_value(command).expect("json");
        newer["v"] = (SCHEMA_VERSION + 1).into();
        let letter = parked(newer.to_string().as_bytes());
        assert!(
            letter.letter.reason.contains("newer"),
            "{}",
            letter.letter.reason
        );
        assert_eq!(
            (letter.letter.order, letter.reserve_of),
            (Some(order.as_uuid()), Some(product))
        );

        let mut broken = serde_json::to_value(command).expect("json");
        broken["quantity"] = "lots".into();
        let letter = parked(broken.to_string().as_bytes());
        assert_eq!(
            (letter.letter.order, letter.reserve_of),
            (Some(order.as_uuid()), Some(product))
        );

        let letter = parked(b"\xff garbage");
        assert_eq!((letter.letter.order, letter.reserve_of), (None, None));
        assert_eq!(letter.letter.record.key.as_deref(), Some(&b"7"[..]));
        assert_eq!(letter.letter.record.payload, b"\xff garbage");
    }

    #[test]
    fn anything_at_all_is_parked_with_its_bytes_and_a_printable_reason() {
        let samples: [&[u8]; 7] = [
            b"",
            b"\x00not json{",
            b"{\"v\":1,\"kind\":\"\\u0000\"}",
            b"{\"v\":1,\"kind\":\"reserve\"",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            b"\xc3\x28\xa0\xa1",
            b"\"just a string\"",
        ];
        for payload in samples {
            let letter = parked(payload);
            assert_eq!(letter.letter.record.payload, payload);
            assert!(
                !letter.letter.reason.chars().any(char::is_control),
                "{:?}",
                letter.letter.reason
            );
        }
    }
}
