//! Domain types shared by the shop's services.
//!
//! Parse, don't validate: every type here can only be built through a constructor that checks its
//! invariant, so a value that exists is a valid value. Nothing in this crate knows about HTTP, SQL,
//! Redis or Kafka clients; `messages` defines the JSON that travels on Kafka topics. The decoders
//! of outside input that live here (cursors, idempotency keys, contact details, messages) are
//! fuzzed by the `fuzz/` crate at the top of the repository.

mod contact;
mod cursor;
mod idempotency;
mod ids;
pub mod messages;
mod money;
pub mod order;
mod quantity;

pub use contact::{Email, PhoneNumber};
pub use cursor::{Cursor, InvalidCursor};
pub use idempotency::{IdempotencyKey, InvalidIdempotencyKey};
pub use ids::{OrderId, ProductId, UserId};
pub use money::Money;
pub use order::{LineStatus, OrderStatus};
pub use quantity::{Quantity, Units, MAX_LINE_QUANTITY, MAX_RESTOCK, MAX_STOCK};

/// Why a value was refused. `code` is stable and machine-readable; `Display` is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("email address is not valid: {0}")]
    Email(&'static str),
    #[error("phone number must be in E.164 form, like +14155550100: {0}")]
    Phone(&'static str),
    #[error("quantity must be between 1 and {max}")]
    Quantity { max: u32 },
    #[error("amount must be a whole number of minor units between 0 and {max}")]
    Money { max: i64 },
    #[error("{field} is not valid: {reason}")]
    Field {
        field: &'static str,
        reason: &'static str,
    },
}

impl ValidationError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Email(_) => "invalid_email",
            Self::Phone(_) => "invalid_phone_number",
            Self::Quantity { .. } => "invalid_quantity",
            Self::Money { .. } => "invalid_amount",
            Self::Field { .. } => "invalid_field",
        }
    }
}

pub type Result<T, E = ValidationError> = std::result::Result<T, E>;
