//! How checkout takes stock (`CHECKOUT_STRATEGY`): the name of each strategy. Settings read it,
//! metrics label by it, and [`super`] drives the strategy it names.

use std::{fmt, str::FromStr};

/// How checkout takes stock (`CHECKOUT_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The Kafka pipeline: asynchronous, 202.
    Queue,
    /// Read the version, update `WHERE version = $v`, retry with jitter.
    Optimistic,
    /// A Redis lock per product (in id order), the stock change still guarded in PostgreSQL.
    RedisLock,
    /// `SELECT … FOR NO KEY UPDATE` in product-id order.
    RowLock,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Queue,
        Strategy::Optimistic,
        Strategy::RedisLock,
        Strategy::RowLock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Optimistic => "optimistic",
            Self::RedisLock => "redis-lock",
            Self::RowLock => "row-lock",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| "expected queue, optimistic, redis-lock or row-lock".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_from_their_names_only() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
        }
        assert!("Queue".parse::<Strategy>().is_err());
        assert!("".parse::<Strategy>().is_err());
    }
}
