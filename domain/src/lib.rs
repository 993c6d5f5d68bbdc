//! Domain types shared by the shop's services.
//!
//! Parse, don't validate: every type here can only be built through a constructor that checks its
//! invariant, so a value that exists is a valid value. Nothing in this crate knows about HTTP, SQL,
//! Redis or Kafka clients; `messages` defines the JSON that travels on Kafka topics. The decoders
//! of outside input that live here (cursors, idempotency keys, contact details, messages) are
//! fuzzed by the `fuzz/` crate at the top of the repository.

mod contact;
mod cursor;
mod error;
mod idempotency;
mod ids;
pub mod messages;
mod money;
pub mod order;
mod quantity;

pub use contact::{Email, PhoneNumber};
pub use cursor::{Cursor, InvalidCursor};
pub use error::{Result, ValidationError};
pub use idempotency::{IdempotencyKey, InvalidIdempotencyKey};
pub use ids::{OrderId, ProductId, UserId};
pub use money::Money;
pub use order::{LineReason, LineStatus, OrderStatus};
pub use quantity::{
    Quantity, ShopperLimit, Stock, Units, MAX_LINE_QUANTITY, MAX_RESTOCK, MAX_STOCK,
};
