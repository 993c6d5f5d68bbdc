//! Why a domain value was refused.

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
