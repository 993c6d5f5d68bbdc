use crate::{
    error::{Result, ValidationError},
    quantity::Quantity,
};
use serde::{Deserialize, Serialize};

/// An amount of money in integer minor units (cents). Never negative, never a float.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

impl Money {
    /// The largest single amount accepted: 100 million in major units.
    pub const MAX: i64 = 10_000_000_000;

    pub fn new(minor_units: i64) -> Result<Self> {
        if (0..=Self::MAX).contains(&minor_units) {
            Ok(Self(minor_units))
        } else {
            Err(ValidationError::Money { max: Self::MAX })
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }

    /// `self × quantity`. Cannot overflow: both factors are bounded far below `i64::MAX`.
    pub fn times(self, quantity: Quantity) -> Money {
        Money(self.0 * i64::from(quantity.get()))
    }

    /// A sum of line totals. Saturates instead of overflowing (unreachable with bounded carts).
    pub fn sum(amounts: impl IntoIterator<Item = Money>) -> Money {
        Money(
            amounts
                .into_iter()
                .fold(0i64, |acc, m| acc.saturating_add(m.0)),
        )
    }
}

impl TryFrom<i64> for Money {
    type Error = ValidationError;
    fn try_from(raw: i64) -> Result<Self> {
        Self::new(raw)
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_negative_and_huge_amounts() {
        assert!(Money::new(-1).is_err());
        assert!(Money::new(Money::MAX + 1).is_err());
        assert_eq!(Money::new(0).map(Money::minor_units), Ok(0));
    }

    #[test]
    fn line_totals_and_sums() -> Result<()> {
        let price = Money::new(1999)?;
        let line = price.times(Quantity::new(3)?);
        assert_eq!(line.minor_units(), 5997);
        assert_eq!(Money::sum([line, Money::new(3)?]).minor_units(), 6000);
        assert_eq!(Money::sum([]).minor_units(), 0);
        Ok(())
    }
}
