//! Messages the pipeline cannot read or route are parked, never skipped silently and never
//! allowed to stop a partition or the relay: a row in `dead_letters`, a message on the dead-letter
//! topic (through the outbox), `checkout_worker_dead_letters_total`, and an alert. When the
//! message asked to reserve an order line that can still be identified, that line is decided
//! SHORT with the reason, so the order ends REJECTED (its other reserved lines are released as
//! for any rejection) instead of staying PENDING for ever.

use crate::batch::{count_and_finalize, outbox_err, Finalized};
use shop_domain::{
    messages::{InventoryCommand, SCHEMA_VERSION},
    OrderId, ProductId,
};
use shop_infra::outbox::{self, Outbox};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Where a parked message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The inventory commands topic, read by a lane.
    InventoryTopic,
    /// An outbox row the relay could not route.
    Outbox,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InventoryTopic => "inventory-topic",
            Self::Outbox => "outbox",
        }
    }
}

/// A message parked instead of applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub source: Source,
    /// `<partition>/<offset>` on the topic, or the outbox row's id.
    pub position: String,
    pub key: Option<String>,
    pub payload: String,
    pub reason: String,
    /// The order the message names, if that much could be read.
    pub order: Option<OrderId>,
    /// The product whose reservation for `order` it asked for: that line is decided SHORT.
    pub reserve_of: Option<ProductId>,
}

impl DeadLetter {
    /// The command in `payload`, or the dead letter it becomes when it is not one this worker may
    /// apply: it must decode, and its version must not be newer than this worker's.
    pub fn check(
        source: Source,
        position: String,
        key: Option<&str>,
        payload: &[u8],
    ) -> Result<InventoryCommand, Box<Self>> {
        let reason = match serde_json::from_slice::<InventoryCommand>(payload) {
            Ok(command) if command.v <= SCHEMA_VERSION => return Ok(command),
            Ok(command) => format!(
                "message version {} is newer than this worker's ({SCHEMA_VERSION})",
                command.v
            ),
            Err(error) => format!("not an inventory command: {error}"),
        };
        Err(Box::new(Self::named(
            source, position, key, payload, reason,
        )))
    }

    /// A parked message, naming whatever order line its JSON still shows.
    pub fn named(
        source: Source,
        position: String,
        key: Option<&str>,
        payload: &[u8],
        reason: String,
    ) -> Self {
        let json: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let order = json["order_id"]
            .as_str()
            .and_then(|o| o.parse::<Uuid>().ok())
            .map(OrderId::from_uuid);
        let reserve_of = json["product_id"]
            .as_i64()
            .and_then(|p| ProductId::new(p).ok())
            .filter(|_| json["kind"] == "reserve" && order.is_some());
        Self {
            source,
            position,
            key: key.map(str::to_owned),
            payload: String::from_utf8_lossy(payload).into_owned(),
            reason,
            order,
            reserve_of,
        }
    }
}

/// What parking did.
#[derive(Debug, Default)]
pub struct Parked {
    /// Letters not parked before (a redelivered one is parked once).
    pub parked: u64,
    /// Orders whose last line this decided.
    pub finalized: Vec<Finalized>,
}

/// Parks `letters` inside the caller's transaction and decides the lines they name.
pub async fn park(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    letters: &[DeadLetter],
) -> Result<Parked, sqlx::Error> {
    if letters.is_empty() {
        return Ok(Parked::default());
    }
    let new: Vec<String> = sqlx::query_scalar(
        "INSERT INTO dead_letters (source, position, message_key, payload, reason, order_id)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::UUID[])
         ON CONFLICT ON CONSTRAINT dead_letters_source_position_key DO NOTHING
         RETURNING position",
    )
    .bind(letters.iter().map(|l| l.source.as_str()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.position.clone()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.key.clone()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.payload.clone()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.reason.clone()).collect::<Vec<_>>())
    .bind(
        letters
            .iter()
            .map(|l| l.order.as_ref().map(OrderId::as_uuid))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await?;
    let fresh: Vec<&DeadLetter> = letters
        .iter()
        .filter(|l| new.contains(&l.position))
        .collect();
    let mut announcements = Outbox::default();
    for letter in &fresh {
        let key = letter
            .order
            .map_or_else(|| "unknown".to_owned(), |o| o.to_string());
        let body = serde_json::json!({
            "source": letter.source.as_str(),
            "position": letter.position,
            "key": letter.key,
            "payload": letter.payload,
            "reason": letter.reason,
        });
        announcements
            .push(outbox::DEAD_LETTERS, key, &body)
            .map_err(outbox_err)?;
    }
    announcements.insert(tx).await.map_err(outbox_err)?;
    let finalized = decide_named_lines(tx, &fresh).await?;
    Ok(Parked {
        parked: fresh.len() as u64,
        finalized,
    })
}

/// The still undecided lines the letters asked to reserve become SHORT with the letter's reason
/// (recorded in the ledger as a reserve not applied, so a readable copy arriving later changes
/// nothing), and their orders are counted and finalised.
async fn decide_named_lines(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    letters: &[&DeadLetter],
) -> Result<Vec<Finalized>, sqlx::Error> {
    let lines: Vec<(Uuid, i64, String)> = letters
        .iter()
        .filter_map(|l| {
            let reason = format!(
                "the reservation could not be read and was parked: {}",
                l.reason
            );
            Some((l.order?.as_uuid(), l.reserve_of?.get(), reason))
        })
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let decided: Vec<Uuid> = sqlx::query_scalar(
        "WITH v AS (SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[]) AS v(o, p, r)),
         recorded AS (
             INSERT INTO inventory_ledger (order_id, product_id, kind, quantity, applied)
             SELECT oi.order_id, oi.product_id, 'reserve', oi.quantity, false
             FROM order_items oi JOIN v ON oi.order_id = v.o AND oi.product_id = v.p
             WHERE oi.status = 'PENDING'
             ON CONFLICT ON CONSTRAINT inventory_ledger_pkey DO NOTHING
             RETURNING order_id, product_id
         )
         UPDATE order_items oi SET status = 'SHORT', reason = v.r, available_at_decision = 0
         FROM recorded JOIN v ON v.o = recorded.order_id AND v.p = recorded.product_id
         WHERE oi.order_id = recorded.order_id AND oi.product_id = recorded.product_id
         RETURNING oi.order_id",
    )
    .bind(lines.iter().map(|l| l.0).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.1).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.2.clone()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let mut counts: BTreeMap<Uuid, (i32, i32)> = BTreeMap::new();
    for order in decided {
        let entry = counts.entry(order).or_default();
        entry.0 += 1;
        entry.1 += 1;
    }
    count_and_finalize(tx, &counts).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_domain::{messages::CommandKind, Quantity};

    fn check(payload: &[u8]) -> Result<InventoryCommand, Box<DeadLetter>> {
        DeadLetter::check(Source::InventoryTopic, "0/1".into(), Some("7"), payload)
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
        assert_eq!(check(&json), Ok(command));

        let mut newer = serde_json::to_value(command).expect("json");
        newer["v"] = (SCHEMA_VERSION + 1).into();
        let parked = check(newer.to_string().as_bytes()).expect_err("newer version");
        assert!(parked.reason.contains("newer"), "{}", parked.reason);
        assert_eq!(
            (parked.order, parked.reserve_of),
            (Some(order), Some(product))
        );

        let mut broken = serde_json::to_value(command).expect("json");
        broken["quantity"] = "lots".into();
        let parked = check(broken.to_string().as_bytes()).expect_err("unreadable");
        assert_eq!(
            (parked.order, parked.reserve_of),
            (Some(order), Some(product))
        );

        let parked = check(b"\xff garbage").expect_err("not JSON");
        assert_eq!((parked.order, parked.reserve_of), (None, None));
        assert_eq!(parked.key.as_deref(), Some("7"));
    }
}
