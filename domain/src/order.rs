//! An order's life: the statuses of an order and of its lines, the moves between them, and how
//! an order's status follows from its lines. Pure; the statements that store these live in
//! `shop_infra::orders`, the only place outside the migrations that spells a status in SQL.
//!
//! ```text
//!   order:  PENDING ──every line decided, none short──▶ CONFIRMED ──cancel──▶ CANCELLED
//!              │    ──every line decided, one short───▶ REJECTED
//!              └────────────────cancel────────────────────────────────────▶ CANCELLED
//!
//!   line:   PENDING ──reserve took its units──▶ RESERVED ──release──▶ RELEASED
//!              │    ──refused─────────────────▶ SHORT (its `LineReason`: too little stock,
//!              │                                 over the shopper's limit, or unprocessable)
//!              └────reserve after its release─▶ CANCELLED
//! ```

use serde::{Deserialize, Serialize};

/// Where an order stands. PENDING until every line is decided; then CONFIRMED or REJECTED. Its
/// buyer may cancel it while it is PENDING or CONFIRMED; CANCELLED and REJECTED are for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Confirmed,
        Self::Rejected,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Not PENDING any more: decided, or cancelled before that.
    pub fn is_decided(self) -> bool {
        self != Self::Pending
    }

    /// Whether its buyer may still cancel it.
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }

    /// Whether an order may move from `self` to `next`. Nothing leaves REJECTED or CANCELLED;
    /// CONFIRMED only becomes CANCELLED.
    pub fn can_become(self, next: Self) -> bool {
        match (self, next) {
            (Self::Pending, Self::Confirmed | Self::Rejected) => true,
            (from, Self::Cancelled) => from.is_cancellable(),
            _ => false,
        }
    }

    /// The status a PENDING order takes once every line is decided: REJECTED if any line was
    /// short, CONFIRMED otherwise. The one place this rule is written.
    pub fn settled(short_lines: u32) -> Self {
        if short_lines > 0 {
            Self::Rejected
        } else {
            Self::Confirmed
        }
    }
}

/// A status (or line reason) name that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status or reason {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for OrderStatus {
    type Error = UnknownStatus;
    fn try_from(raw: String) -> Result<Self, UnknownStatus> {
        Self::parse(&raw).ok_or(UnknownStatus(raw))
    }
}

/// Where one line of an order stands (`order_items.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineStatus {
    /// Its reserve has not been applied yet.
    Pending,
    /// Its reserve took the units.
    Reserved,
    /// Its reserve was refused and took nothing; its [`LineReason`] says why (too little stock,
    /// or more than the shopper may hold of the product).
    Short,
    /// Its reserved units went back to stock (the order was rejected or cancelled).
    Released,
    /// Its reserve came after its release (the order was cancelled meanwhile) and took nothing.
    Cancelled,
}

impl LineStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Reserved,
        Self::Short,
        Self::Released,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Reserved => "RESERVED",
            Self::Short => "SHORT",
            Self::Released => "RELEASED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether its reserve has been decided (its order's `pending_lines` no longer counts it).
    pub fn is_decided(self) -> bool {
        self != Self::Pending
    }

    /// Whether the line holds units of stock now.
    pub fn holds_stock(self) -> bool {
        self == Self::Reserved
    }

    /// Whether a line may move from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (
                Self::Pending,
                Self::Reserved | Self::Short | Self::Cancelled
            ) | (Self::Reserved, Self::Released)
        )
    }
}

impl TryFrom<String> for LineStatus {
    type Error = UnknownStatus;
    fn try_from(raw: String) -> Result<Self, UnknownStatus> {
        Self::parse(&raw).ok_or(UnknownStatus(raw))
    }
}

/// Why a line's reserve was refused (`order_items.reason_code`, a SHORT line's only): what the
/// order's JSON shows as the line's `reason_code`, beside the `reason` written for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineReason {
    /// The product had fewer units than the line asked for.
    InsufficientStock,
    /// The shopper would hold more units of the product than its `max_per_shopper`, counting
    /// their earlier orders.
    LimitExceeded,
    /// The reserve could not be read or applied, and was parked as a dead letter.
    Unprocessable,
}

impl LineReason {
    pub const ALL: [Self; 3] = [
        Self::InsufficientStock,
        Self::LimitExceeded,
        Self::Unprocessable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InsufficientStock => "insufficient_stock",
            Self::LimitExceeded => "limit_exceeded",
            Self::Unprocessable => "unprocessable",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl TryFrom<String> for LineReason {
    type Error = UnknownStatus;
    fn try_from(raw: String) -> Result<Self, UnknownStatus> {
        Self::parse(&raw).ok_or(UnknownStatus(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_round_trip_and_refuse_other_spellings() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                OrderStatus::try_from(status.as_str().to_owned()),
                Ok(status)
            );
        }
        for status in LineStatus::ALL {
            assert_eq!(LineStatus::parse(status.as_str()), Some(status));
        }
        for reason in LineReason::ALL {
            assert_eq!(LineReason::parse(reason.as_str()), Some(reason));
            let json = serde_json::to_value(reason).expect("a reason serialises");
            assert_eq!(json, reason.as_str(), "the wire form is the stored one");
        }
        assert_eq!(LineReason::parse("LIMIT_EXCEEDED"), None);
        assert_eq!(OrderStatus::parse("pending"), None);
        assert_eq!(
            LineStatus::try_from("reserved".to_owned()),
            Err(UnknownStatus("reserved".into()))
        );
    }

    #[test]
    fn an_order_settles_by_its_short_lines() {
        assert_eq!(OrderStatus::settled(0), OrderStatus::Confirmed);
        assert_eq!(OrderStatus::settled(1), OrderStatus::Rejected);
        assert!(OrderStatus::Pending.can_become(OrderStatus::settled(0)));
        assert!(OrderStatus::Pending.can_become(OrderStatus::settled(7)));
    }

    #[test]
    fn only_cancel_leaves_confirmed() {
        assert!(OrderStatus::Confirmed.can_become(OrderStatus::Cancelled));
        assert!(!OrderStatus::Confirmed.can_become(OrderStatus::Rejected));
        assert!(!OrderStatus::Confirmed.can_become(OrderStatus::Pending));
        assert!(OrderStatus::Pending.can_become(OrderStatus::Cancelled));
        assert!(!OrderStatus::Rejected.is_cancellable());
    }

    fn order_status() -> impl Strategy<Value = OrderStatus> {
        proptest::sample::select(OrderStatus::ALL.to_vec())
    }

    fn line_status() -> impl Strategy<Value = LineStatus> {
        proptest::sample::select(LineStatus::ALL.to_vec())
    }

    proptest! {
        /// Whatever moves are tried, in any order, an order only takes allowed steps; once
        /// REJECTED or CANCELLED it stays so, and nothing goes back to PENDING.
        #[test]
        fn no_order_leaves_a_terminal_status(moves in proptest::collection::vec(order_status(), 0..20)) {
            let mut status = OrderStatus::Pending;
            for next in moves {
                let terminal = matches!(status, OrderStatus::Rejected | OrderStatus::Cancelled);
                if status.can_become(next) {
                    prop_assert!(!terminal, "{status:?} -> {next:?}");
                    prop_assert_ne!(next, OrderStatus::Pending);
                    prop_assert_ne!(status, next);
                    status = next;
                }
            }
        }

        /// A line is decided at most once and gives back only what it took.
        #[test]
        fn a_line_moves_forward_only(moves in proptest::collection::vec(line_status(), 0..20)) {
            let mut status = LineStatus::Pending;
            let mut steps = 0;
            for next in moves {
                if status.can_become(next) {
                    prop_assert!(next.is_decided());
                    prop_assert!(next != LineStatus::Released || status.holds_stock());
                    status = next;
                    steps += 1;
                }
            }
            prop_assert!(steps <= 2);
        }
    }
}
