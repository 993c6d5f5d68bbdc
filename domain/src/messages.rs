//! Kafka message schemas: versioned JSON, readable by any Kafka client.
//!
//! | topic (default name)            | key          | partition                              | value              |
//! |---------------------------------|--------------|----------------------------------------|--------------------|
//! | `shop.inventory-commands`       | product id   | `inventory_partitioner::partition_for` | [`InventoryCommand`] |
//! | `shop.order-events`             | order id     | the client's default partitioner       | [`OrderEvent`]     |
//!
//! Every message carries `v` (its schema version). Consumers must ignore fields they do not know;
//! a change that is not backward compatible bumps `v`.

pub use crate::order::{OrderStatus, UnknownStatus};
use crate::{
    ids::{OrderId, ProductId, UserId},
    quantity::{Quantity, Units},
};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u16 = 1;

/// Announced on Redis pub/sub (channel `<prefix>order-status`) when an order reaches a status,
/// so every API replica can push it to the clients watching that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusChanged {
    pub order_id: OrderId,
    pub status: OrderStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Take `quantity` units of the product for the order, if that many are available.
    Reserve,
    /// Give back what the order's line holds (its order was rejected or cancelled): the units
    /// of an applied reserve, nothing after a short one. A release that comes before its reserve
    /// is recorded, and that reserve then takes nothing.
    Release,
    /// Add `quantity` units to the product's stock (a seller's restock; `order_id` is the
    /// restock's id).
    Restock,
}

impl CommandKind {
    /// The name used on the wire and in `inventory_ledger.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Restock => "restock",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Reserve, Self::Release, Self::Restock]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// A command for the worker that owns the product's partition. Applying the same command twice
/// has the effect of applying it once: the worker records `(order_id, product_id, kind)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCommand {
    pub v: u16,
    pub kind: CommandKind,
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub quantity: Units,
}

impl InventoryCommand {
    /// A reserve or release of an order's line.
    pub fn new(
        kind: CommandKind,
        order_id: OrderId,
        product_id: ProductId,
        quantity: Quantity,
    ) -> Self {
        Self {
            v: SCHEMA_VERSION,
            kind,
            order_id,
            product_id,
            quantity: quantity.into(),
        }
    }

    /// A seller's restock, `id` naming it (so a repeated request is applied once).
    pub fn restock(id: OrderId, product_id: ProductId, quantity: Units) -> Self {
        Self {
            v: SCHEMA_VERSION,
            kind: CommandKind::Restock,
            order_id: id,
            product_id,
            quantity,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub price_cents: i64,
}

/// A line that could not be reserved: what it asked for, and what there was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShortLine {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub product_id: ProductId,
    pub requested: u32,
    /// The units left in stock; for a line over the product's per-shopper limit, the units the
    /// limit still allowed the shopper.
    pub available: i64,
}

/// What happened to an order. `event_id` is the same for redeliveries of one event, so a
/// consumer that dedupes on it sees each event once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderEvent {
    OrderCreated {
        v: u16,
        event_id: String,
        order_id: OrderId,
        user_id: UserId,
        total_cents: i64,
        lines: Vec<EventLine>,
        at_ms: i64,
    },
    OrderConfirmed {
        v: u16,
        event_id: String,
        order_id: OrderId,
        user_id: UserId,
        at_ms: i64,
    },
    OrderRejected {
        v: u16,
        event_id: String,
        order_id: OrderId,
        user_id: UserId,
        short_lines: Vec<ShortLine>,
        at_ms: i64,
    },
    /// The buyer cancelled the order (PENDING or CONFIRMED before); its lines' units go back to
    /// stock through their products' lanes.
    OrderCancelled {
        v: u16,
        event_id: String,
        order_id: OrderId,
        user_id: UserId,
        at_ms: i64,
    },
}

impl OrderEvent {
    /// The order it is about (its Kafka key).
    pub fn order_id(&self) -> OrderId {
        match self {
            Self::OrderCreated { order_id, .. }
            | Self::OrderConfirmed { order_id, .. }
            | Self::OrderRejected { order_id, .. }
            | Self::OrderCancelled { order_id, .. } => *order_id,
        }
    }

    pub fn created(
        order_id: OrderId,
        user_id: UserId,
        total_cents: i64,
        lines: Vec<EventLine>,
        at_ms: i64,
    ) -> Self {
        Self::OrderCreated {
            v: SCHEMA_VERSION,
            event_id: format!("{order_id}/created"),
            order_id,
            user_id,
            total_cents,
            lines,
            at_ms,
        }
    }

    pub fn confirmed(order_id: OrderId, user_id: UserId, at_ms: i64) -> Self {
        Self::OrderConfirmed {
            v: SCHEMA_VERSION,
            event_id: format!("{order_id}/terminal"),
            order_id,
            user_id,
            at_ms,
        }
    }

    pub fn rejected(
        order_id: OrderId,
        user_id: UserId,
        short_lines: Vec<ShortLine>,
        at_ms: i64,
    ) -> Self {
        Self::OrderRejected {
            v: SCHEMA_VERSION,
            event_id: format!("{order_id}/terminal"),
            order_id,
            user_id,
            short_lines,
            at_ms,
        }
    }

    pub fn cancelled(order_id: OrderId, user_id: UserId, at_ms: i64) -> Self {
        Self::OrderCancelled {
            v: SCHEMA_VERSION,
            event_id: format!("{order_id}/cancelled"),
            order_id,
            user_id,
            at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_a_stable_wire_form() -> Result<(), Box<dyn std::error::Error>> {
        let order = OrderId::from_uuid("0192f0c4-0000-7000-8000-000000000001".parse()?);
        let cmd = InventoryCommand::new(
            CommandKind::Reserve,
            order,
            ProductId::new(42)?,
            Quantity::new(3)?,
        );
        let json = serde_json::to_string(&cmd)?;
        assert_eq!(
            json,
            r#"{"v":1,"kind":"reserve","order_id":"0192f0c4-0000-7000-8000-000000000001","product_id":42,"quantity":3}"#
        );
        assert_eq!(serde_json::from_str::<InventoryCommand>(&json)?, cmd);
        // Unknown fields from a newer producer are ignored; invalid values are refused.
        let newer = json.replace("\"v\":1", "\"v\":1,\"trace\":\"x\"");
        assert_eq!(serde_json::from_str::<InventoryCommand>(&newer)?, cmd);
        assert!(serde_json::from_str::<InventoryCommand>(&json.replace(":3}", ":0}")).is_err());
        Ok(())
    }

    #[test]
    fn command_kinds_round_trip() {
        for kind in [
            CommandKind::Reserve,
            CommandKind::Release,
            CommandKind::Restock,
        ] {
            assert_eq!(CommandKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(CommandKind::parse("Reserve"), None);
    }

    #[test]
    fn terminal_events_share_one_id_per_order() -> Result<(), Box<dyn std::error::Error>> {
        let order = OrderId::generate();
        let user = UserId::new(1)?;
        let confirmed = OrderEvent::confirmed(order, user, 1);
        let json = serde_json::to_value(&confirmed)?;
        assert_eq!(json["type"], "OrderConfirmed");
        assert_eq!(json["event_id"], format!("{order}/terminal"));
        let rejected = serde_json::to_value(OrderEvent::rejected(order, user, vec![], 2))?;
        assert_eq!(rejected["event_id"], json["event_id"]);
        Ok(())
    }
}
