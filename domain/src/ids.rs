use crate::error::{Result, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name(i64);

        impl $name {
            pub fn new(raw: i64) -> Result<Self> {
                if raw > 0 {
                    Ok(Self(raw))
                } else {
                    Err(ValidationError::Field { field: $field, reason: "must be a positive integer" })
                }
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = ValidationError;
            fn try_from(raw: i64) -> Result<Self> {
                Self::new(raw)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

positive_id!(
    /// A product's identifier; also the Kafka key of its inventory commands.
    ProductId,
    "product_id"
);
positive_id!(
    /// A user's identifier.
    UserId,
    "user_id"
);

/// An order's identifier: a UUIDv7, so ids are unguessable and still sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert!(ProductId::new(0).is_err());
        assert!(ProductId::new(-5).is_err());
        assert_eq!(ProductId::new(7).map(ProductId::get), Ok(7));
        assert!(serde_json::from_str::<UserId>("0").is_err());
        assert_eq!(
            serde_json::from_str::<UserId>("42").ok(),
            UserId::new(42).ok()
        );
    }

    proptest::proptest! {
        #[test]
        fn ids_accept_exactly_the_positive_integers(raw in proptest::prelude::any::<i64>()) {
            proptest::prop_assert_eq!(ProductId::new(raw).is_ok(), raw > 0);
            let from_json = serde_json::from_str::<UserId>(&raw.to_string());
            proptest::prop_assert_eq!(from_json.is_ok(), raw > 0);
        }
    }

    #[test]
    fn order_ids_sort_by_creation() {
        let first = OrderId::generate();
        let second = OrderId::generate();
        assert!(first.as_uuid() < second.as_uuid());
    }
}
