use crate::error::{Result, ValidationError};
use serde::{Deserialize, Serialize};

/// The most units of one product a single cart line or order line may hold.
pub const MAX_LINE_QUANTITY: u32 = 100;

/// A number of units on a cart or order line: 1 ..= [`MAX_LINE_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(raw: i64) -> Result<Self> {
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_LINE_QUANTITY).contains(&n) => Ok(Self(n)),
            _ => Err(ValidationError::Quantity {
                max: MAX_LINE_QUANTITY,
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ValidationError;
    fn try_from(raw: i64) -> Result<Self> {
        Self::new(raw)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// Lossless: a quantity never exceeds [`MAX_LINE_QUANTITY`].
impl From<Quantity> for i32 {
    fn from(q: Quantity) -> i32 {
        q.0 as i32
    }
}

/// The most units a product's stock may hold.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// The most units one restock may add.
pub const MAX_RESTOCK: u32 = 1_000_000;

/// A number of units moved by one inventory command: a line's quantity, or a restock of 1 ..=
/// [`MAX_RESTOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Units(u32);

impl Units {
    pub fn new(raw: i64) -> Result<Self> {
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_RESTOCK).contains(&n) => Ok(Self(n)),
            _ => Err(ValidationError::Quantity { max: MAX_RESTOCK }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl From<Quantity> for Units {
    fn from(q: Quantity) -> Units {
        Units(q.0)
    }
}

impl TryFrom<i64> for Units {
    type Error = ValidationError;
    fn try_from(raw: i64) -> Result<Self> {
        Self::new(raw)
    }
}

impl From<Units> for u32 {
    fn from(u: Units) -> u32 {
        u.0
    }
}

/// Lossless: units never exceed [`MAX_RESTOCK`].
impl From<Units> for i32 {
    fn from(u: Units) -> i32 {
        u.0 as i32
    }
}

/// The most units of one product one shopper may hold across their orders (a product's
/// `max_per_shopper`): 1 ..= [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShopperLimit(u32);

impl ShopperLimit {
    pub fn new(raw: i64) -> Result<Self> {
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_STOCK).contains(&i64::from(n)) => Ok(Self(n)),
            _ => Err(ValidationError::Field {
                field: "max_per_shopper",
                reason: "must be a whole number from 1 to 1000000000",
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// How many more units a shopper who holds `held` units may take: none once they hold the
    /// limit, or more (a limit lowered below what they had bought). The one place the rule is
    /// written: a line asking for more than this is refused.
    pub fn allowance(self, held: i64) -> i64 {
        (i64::from(self.0) - held).max(0)
    }
}

/// Lossless: a limit never exceeds [`MAX_STOCK`].
impl From<ShopperLimit> for i32 {
    fn from(l: ShopperLimit) -> i32 {
        l.0 as i32
    }
}

/// A product's whole stock, as its seller counts it: 0 ..= [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Stock(u32);

impl Stock {
    pub fn new(raw: i64) -> Result<Self> {
        match u32::try_from(raw) {
            Ok(n) if i64::from(n) <= MAX_STOCK => Ok(Self(n)),
            _ => Err(ValidationError::Field {
                field: "stock",
                reason: "must be between 0 and 1000000000",
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Stock {
    type Error = ValidationError;
    fn try_from(raw: i64) -> Result<Self> {
        Self::new(raw)
    }
}

impl From<Stock> for u32 {
    fn from(s: Stock) -> u32 {
        s.0
    }
}

/// Lossless: a stock never exceeds [`MAX_STOCK`], below `i32::MAX`.
impl From<Stock> for i32 {
    fn from(s: Stock) -> i32 {
        s.0 as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds_are_inclusive() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-1).is_err());
        assert_eq!(Quantity::new(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::new(100).map(Quantity::get), Ok(100));
        assert!(Quantity::new(101).is_err());
        assert!(Quantity::new(i64::MAX).is_err());
        assert_eq!(Units::new(1_000_000).map(Units::get), Ok(1_000_000));
        assert!(Units::new(1_000_001).is_err() && Units::new(0).is_err());
        assert_eq!(Units::from(Quantity(7)).get(), 7);
        assert_eq!(Stock::new(0).map(Stock::get), Ok(0));
        assert_eq!(Stock::new(MAX_STOCK).map(i32::from), Ok(1_000_000_000));
        assert!(Stock::new(MAX_STOCK + 1).is_err() && Stock::new(-1).is_err());
        assert!(ShopperLimit::new(0).is_err() && ShopperLimit::new(-2).is_err());
        assert_eq!(ShopperLimit::new(1).map(ShopperLimit::get), Ok(1));
        assert_eq!(
            ShopperLimit::new(MAX_STOCK).map(i32::from),
            Ok(1_000_000_000)
        );
        assert!(ShopperLimit::new(MAX_STOCK + 1).is_err());
        let two = ShopperLimit(2);
        assert_eq!(
            (two.allowance(0), two.allowance(2), two.allowance(5)),
            (2, 0, 0)
        );
    }

    proptest! {
        #[test]
        fn accepted_exactly_in_range(raw in any::<i64>()) {
            prop_assert_eq!(Quantity::new(raw).is_ok(), (1..=100).contains(&raw));
        }
    }
}
