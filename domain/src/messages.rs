//! Kafka message schemas: versioned JSON, readable by any Kafka client.
//!
//! | topic (default name)            | key          | partition                              | value              |
//! |---------------------------------|--------------|----------------------------------------|--------------------|
//! | `shop.inventory-commands`       | product id   | `inventory_partitioner::partition_for` | [`InventoryCommand`] |
//! | `shop.order-events`             | order id     | the client's default partitioner       | [`OrderEvent`]     |
//!
//! Inventory commands carry their queue position in the field [`QUEUED_FIELD`] of their JSON.
//!
//! Every message carries `v` (its schema version). Consumers must ignore fields they do not know;
//! a change that is not backward compatible bumps `v`.

pub use crate::order::{OrderStatus, UnknownStatus};
use crate::{
    error::ValidationError,
    ids::{OrderId, ProductId, UserId},
    quantity::{Quantity, Stock, Units},
};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u16 = 1;

/// The field of an inventory command's JSON that carries its queue position: the id of the
/// outbox row it was written in, which the relay adds (the API writes the command before the
/// row has an id). The messages of one bundle share their row's id. A record without it (relayed
/// before positions were carried) has no position. Not a Kafka header: tansu 0.6.0 keeps headers
/// in a table it scans whole for every record it serves or deletes, which stalled the pipeline.
pub const QUEUED_FIELD: &str = "queued";

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
    /// Make the product's stock exactly `quantity`, 0 included (a seller's count, `PATCH
    /// /products/{id}`; `order_id` is the set's id). Records do not reach a lane in the order
    /// they were queued (several relays, retries in flight), so the lane orders a set by its
    /// queue position ([`QUEUED_FIELD`]): releases and restocks queued before
    /// it that arrive after it change no stock (the seller's count includes them), the commands
    /// queued after it that arrived first keep their effect on top of the count, and an older
    /// set arriving after a newer one changes nothing. A reserve always takes its units from the
    /// stock it finds. Added without a new `v`: a worker from before it cannot read the kind and
    /// parks the command as a dead letter (the stock stays as it was).
    Set,
}

impl CommandKind {
    /// The name used on the wire and in `inventory_ledger.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Restock => "restock",
            Self::Set => "set",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Reserve, Self::Release, Self::Restock, Self::Set]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }

    /// Whether a command of this kind is about an order's line (a reserve or a release), or
    /// only about its product (a seller's restock or set).
    pub fn names_a_line(self) -> bool {
        matches!(self, Self::Reserve | Self::Release)
    }
}

/// A command's `quantity`: the units a reserve, release or restock moves ([`Units`], 1 ..=
/// `MAX_RESTOCK`), or a set's count of the stock ([`Stock`], 0 ..= `MAX_STOCK`). The command's kind
/// says which: a decoded command holds the one its kind asks for, and the constructors of
/// [`InventoryCommand`] take the right type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "u32")]
pub struct CommandQuantity(u32);

impl CommandQuantity {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl From<Quantity> for CommandQuantity {
    fn from(q: Quantity) -> Self {
        Self(q.get())
    }
}

impl From<Units> for CommandQuantity {
    fn from(u: Units) -> Self {
        Self(u.get())
    }
}

impl From<Stock> for CommandQuantity {
    fn from(s: Stock) -> Self {
        Self(s.get())
    }
}

impl From<CommandQuantity> for u32 {
    fn from(q: CommandQuantity) -> u32 {
        q.0
    }
}

/// Lossless: a command's quantity never exceeds `MAX_STOCK`, below `i32::MAX`.
impl From<CommandQuantity> for i32 {
    fn from(q: CommandQuantity) -> i32 {
        q.0 as i32
    }
}

/// A command for the worker that owns the product's partition. Applying the same command twice
/// has the effect of applying it once: the worker records `(order_id, product_id, kind)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireCommand")]
pub struct InventoryCommand {
    pub v: u16,
    pub kind: CommandKind,
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub quantity: CommandQuantity,
}

/// An [`InventoryCommand`] as read, before its quantity is held to its kind's range.
#[derive(Deserialize)]
struct WireCommand {
    v: u16,
    kind: CommandKind,
    order_id: OrderId,
    product_id: ProductId,
    quantity: i64,
}

impl TryFrom<WireCommand> for InventoryCommand {
    type Error = ValidationError;

    fn try_from(wire: WireCommand) -> Result<Self, ValidationError> {
        let quantity = match wire.kind {
            CommandKind::Set => Stock::new(wire.quantity)?.into(),
            _ => Units::new(wire.quantity)?.into(),
        };
        Ok(Self {
            v: wire.v,
            kind: wire.kind,
            order_id: wire.order_id,
            product_id: wire.product_id,
            quantity,
        })
    }
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
            quantity: quantity.into(),
        }
    }

    /// A seller's count of the product's whole stock, `id` naming it (so a repeated request is
    /// applied once).
    pub fn set(id: OrderId, product_id: ProductId, stock: Stock) -> Self {
        Self {
            v: SCHEMA_VERSION,
            kind: CommandKind::Set,
            order_id: id,
            product_id,
            quantity: stock.into(),
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
    fn a_set_carries_a_whole_stock_zero_included() -> Result<(), Box<dyn std::error::Error>> {
        let id = OrderId::from_uuid("0192f0c4-0000-7000-8000-000000000002".parse()?);
        let set = InventoryCommand::set(id, ProductId::new(42)?, Stock::new(0)?);
        let json = serde_json::to_string(&set)?;
        assert_eq!(
            json,
            r#"{"v":1,"kind":"set","order_id":"0192f0c4-0000-7000-8000-000000000002","product_id":42,"quantity":0}"#
        );
        assert_eq!(serde_json::from_str::<InventoryCommand>(&json)?, set);
        // Up to the most a stock may hold, past what one restock may add; never below zero.
        let most = json.replace(":0}", ":1000000000}");
        assert_eq!(
            serde_json::from_str::<InventoryCommand>(&most)?
                .quantity
                .get(),
            1_000_000_000
        );
        for refused in [":1000000001}", ":-1}"] {
            let bad = json.replace(":0}", refused);
            assert!(
                serde_json::from_str::<InventoryCommand>(&bad).is_err(),
                "{bad}"
            );
        }
        // The other kinds keep their range: a restock of a billion units is refused.
        let restock = most.replace("\"set\"", "\"restock\"");
        assert!(serde_json::from_str::<InventoryCommand>(&restock).is_err());
        Ok(())
    }

    #[test]
    fn command_kinds_round_trip() {
        for kind in [
            CommandKind::Reserve,
            CommandKind::Release,
            CommandKind::Restock,
            CommandKind::Set,
        ] {
            assert_eq!(CommandKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.as_str())),
                "the wire name is the ledger's"
            );
        }
        assert_eq!(CommandKind::parse("Reserve"), None);
        assert!(CommandKind::Release.names_a_line() && !CommandKind::Set.names_a_line());
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
