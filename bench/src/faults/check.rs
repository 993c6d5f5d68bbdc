//! The checker, pure: from what was observed after a phase ([`Observed`]: PostgreSQL, Redis, the
//! order events topic and what the shoppers were answered) to the invariants' counts
//! ([`Checked`]): orders lost, orders or commands duplicated, units oversold, shoppers over a
//! product's limit. `inspect.rs`
//! gathers the observations.

use shop_domain::OrderStatus;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The invariants, over everything the run has done so far (counts are cumulative).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    pub lost: u64,
    pub duplicated: u64,
    pub oversold: i64,
    pub over_limit: u64,
    pub redelivered: u64,
    pub stale_cache: u64,
    pub confirmed: i64,
    pub rejected: i64,
    pub cancelled: i64,
}

impl Checked {
    /// What this check adds to `earlier`. A count that went down (an earlier violation healed,
    /// say an order decided late) adds nothing rather than wrapping round.
    pub fn since(&self, earlier: &Checked) -> Checked {
        Checked {
            lost: self.lost.saturating_sub(earlier.lost),
            duplicated: self.duplicated.saturating_sub(earlier.duplicated),
            oversold: (self.oversold - earlier.oversold).max(0),
            over_limit: self.over_limit.saturating_sub(earlier.over_limit),
            redelivered: self.redelivered.saturating_sub(earlier.redelivered),
            stale_cache: self.stale_cache,
            confirmed: (self.confirmed - earlier.confirmed).max(0),
            rejected: (self.rejected - earlier.rejected).max(0),
            cancelled: (self.cancelled - earlier.cancelled).max(0),
        }
    }
}

/// Everything the checker looks at.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Every order's status in PostgreSQL.
    pub statuses: HashMap<Uuid, OrderStatus>,
    /// Orders the shoppers' checkouts were answered 202 with.
    pub acked: Vec<Uuid>,
    /// Orders whose cancel was answered 200.
    pub cancelled: Vec<Uuid>,
    /// Idempotency keys answered with two different orders.
    pub duplicated_keys: u64,
    /// Lines that break all or nothing (`audit::torn_lines`).
    pub torn_lines: i64,
    /// Every product's stock figures.
    pub stock: Vec<StockRow>,
    /// Shoppers holding more of a product on CONFIRMED orders than its `max_per_shopper`, read
    /// from the orders (`(shopper, product)` pairs).
    pub over_limit: u64,
    /// The lanes' shopper counts that are over a limit or disagree with the ledger
    /// (`audit::shopper_counts_broken`).
    pub counts_broken: u64,
    /// What the order events topic holds, per order.
    pub events: HashMap<Uuid, OrderEvents>,
    /// Deliveries of an event already delivered.
    pub redelivered: u64,
    /// Hot-stock entries in Redis that disagree with PostgreSQL at the same version.
    pub stale_cache: u64,
    /// Whether the pipeline settled within the bound.
    pub settled: bool,
}

/// One product's stock figures.
#[derive(Debug, Clone, Copy)]
pub struct StockRow {
    /// Initial stock plus restocks.
    pub initial: i64,
    pub available: i64,
    /// Units on CONFIRMED orders.
    pub sold: i64,
    /// Applied reserves minus releases in the ledger.
    pub ledger: i64,
}

/// What the order events topic holds for one order.
#[derive(Debug, Default, Clone)]
pub struct OrderEvents {
    /// Distinct `event_id`s of `OrderCreated`.
    pub created: HashSet<String>,
    /// Distinct `(type, event_id)` of `OrderConfirmed` and `OrderRejected`.
    pub terminal: HashSet<(String, String)>,
    /// Distinct `event_id`s of `OrderCancelled`.
    pub cancelled: HashSet<String>,
}

/// The invariants' counts over `observed`: lost orders, cancels and events; duplicated keys,
/// commands and events; oversold units and torn orders; shoppers over a limit, by the orders or
/// by the lanes' counts.
pub fn judge(observed: &Observed) -> Checked {
    let statuses = &observed.statuses;
    let orders_lost = judge_orders(&observed.acked, statuses, observed.settled)
        + judge_cancels(&observed.cancelled, statuses);
    let (stock_oversold, stock_duplicated) = judge_stock(&observed.stock);
    let (events_lost, events_duplicated) = judge_events(statuses, &observed.events);
    let count = |status| statuses.values().filter(|s| **s == status).count() as i64;
    Checked {
        lost: orders_lost + events_lost,
        duplicated: observed.duplicated_keys + stock_duplicated + events_duplicated,
        oversold: observed.torn_lines + stock_oversold,
        over_limit: observed.over_limit + observed.counts_broken,
        redelivered: observed.redelivered,
        stale_cache: observed.stale_cache,
        confirmed: count(OrderStatus::Confirmed),
        rejected: count(OrderStatus::Rejected),
        cancelled: count(OrderStatus::Cancelled),
    }
}

/// Lost orders: answered 202 but missing, still PENDING, or (when the system never settled) an
/// outbox that never drained or releases never applied.
fn judge_orders(acked: &[Uuid], statuses: &HashMap<Uuid, OrderStatus>, settled: bool) -> u64 {
    let missing = acked.iter().filter(|id| !statuses.contains_key(id)).count() as u64;
    let pending = statuses
        .values()
        .filter(|s| **s == OrderStatus::Pending)
        .count() as u64;
    missing + pending + u64::from(!settled && pending == 0)
}

/// Lost cancels: answered 200, yet the order is not CANCELLED.
fn judge_cancels(cancelled: &[Uuid], statuses: &HashMap<Uuid, OrderStatus>) -> u64 {
    cancelled
        .iter()
        .filter(|id| statuses.get(id) != Some(&OrderStatus::Cancelled))
        .count() as u64
}

/// Oversold units (stock below zero, or initial ≠ available + sold) and duplicated products
/// (the ledger disagrees with the stock that left: a command applied twice or skipped).
fn judge_stock(rows: &[StockRow]) -> (i64, u64) {
    let mut oversold = 0;
    let mut duplicated = 0;
    for row in rows {
        oversold += (-row.available).max(0);
        oversold += (row.initial - row.available - row.sold).abs();
        duplicated += u64::from(row.ledger != row.initial - row.available);
    }
    (oversold, duplicated)
}

/// Lost and duplicated events: every order has one `OrderCreated`; a decided order has one
/// terminal event, of the type its status in PostgreSQL says (a confirmed order with an
/// `OrderRejected`, or two terminal events with different ids, is duplicated); a decided order
/// without one is lost. A cancelled order has one `OrderCancelled` and at most an
/// `OrderConfirmed` before it; any other order has none.
fn judge_events(
    statuses: &HashMap<Uuid, OrderStatus>,
    events: &HashMap<Uuid, OrderEvents>,
) -> (u64, u64) {
    let (mut lost, mut duplicated) = (0, 0);
    let none = OrderEvents::default();
    for (id, status) in statuses {
        let seen = events.get(id).unwrap_or(&none);
        match seen.created.len() {
            0 => lost += 1,
            1 => {}
            _ => duplicated += 1,
        }
        let expected = match status {
            OrderStatus::Cancelled => {
                match seen.cancelled.len() {
                    0 => lost += 1,
                    1 => {}
                    _ => duplicated += 1,
                }
                let decided_before = seen.terminal.len() > 1
                    || seen
                        .terminal
                        .iter()
                        .any(|(kind, _)| kind != "OrderConfirmed");
                duplicated += u64::from(decided_before);
                continue;
            }
            OrderStatus::Confirmed => "OrderConfirmed",
            OrderStatus::Rejected => "OrderRejected",
            OrderStatus::Pending => {
                duplicated += u64::from(!seen.cancelled.is_empty());
                duplicated += u64::from(!seen.terminal.is_empty());
                continue;
            }
        };
        duplicated += u64::from(!seen.cancelled.is_empty());
        let ids: HashSet<&String> = seen.terminal.iter().map(|(_, id)| id).collect();
        if seen.terminal.is_empty() {
            lost += 1;
        } else if ids.len() > 1 || seen.terminal.iter().any(|(kind, _)| kind != expected) {
            duplicated += 1;
        }
    }
    (lost, duplicated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::{Cancelled, Confirmed, Pending, Rejected};

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn events(created: &[&str], terminal: &[(&str, &str)]) -> OrderEvents {
        OrderEvents {
            created: created.iter().map(|s| (*s).to_owned()).collect(),
            terminal: terminal
                .iter()
                .map(|(k, i)| ((*k).to_owned(), (*i).to_owned()))
                .collect(),
            cancelled: HashSet::new(),
        }
    }

    fn cancelled(terminal: &[(&str, &str)], cancels: &[&str]) -> OrderEvents {
        OrderEvents {
            cancelled: cancels.iter().map(|s| (*s).to_owned()).collect(),
            ..events(&["c"], terminal)
        }
    }

    const FINE: StockRow = StockRow {
        initial: 10,
        available: 4,
        sold: 6,
        ledger: 6,
    };

    /// A settled phase with one confirmed order, its events, and its product's stock right.
    fn clean() -> Observed {
        Observed {
            statuses: HashMap::from([(id(1), Confirmed)]),
            acked: vec![id(1)],
            stock: vec![FINE],
            events: HashMap::from([(id(1), events(&["c"], &[("OrderConfirmed", "d")]))]),
            settled: true,
            ..Observed::default()
        }
    }

    #[test]
    fn a_clean_phase_fires_nothing() {
        let checked = judge(&clean());
        assert_eq!(
            checked,
            Checked {
                confirmed: 1,
                ..Checked::default()
            }
        );
    }

    #[test]
    fn an_accepted_order_that_is_missing_fires_lost() {
        let mut observed = clean();
        observed.acked.push(id(2));
        assert_eq!(judge(&observed).lost, 1);
    }

    #[test]
    fn a_command_applied_twice_or_a_key_with_two_orders_fires_duplicated() {
        let mut observed = clean();
        observed.stock = vec![StockRow { ledger: 7, ..FINE }];
        assert_eq!(judge(&observed).duplicated, 1);
        let mut observed = clean();
        observed.duplicated_keys = 1;
        assert_eq!(judge(&observed).duplicated, 1);
    }

    #[test]
    fn stock_below_zero_or_a_torn_order_fires_oversold() {
        let mut observed = clean();
        observed.stock = vec![StockRow {
            available: -1,
            sold: 11,
            ledger: 11,
            ..FINE
        }];
        assert_eq!(judge(&observed).oversold, 1);
        let mut observed = clean();
        observed.torn_lines = 2;
        assert_eq!(judge(&observed).oversold, 2);
    }

    #[test]
    fn a_shopper_over_a_limit_or_a_broken_count_fires_over_limit() {
        assert_eq!(judge(&clean()).over_limit, 0);
        let mut observed = clean();
        observed.over_limit = 1;
        assert_eq!(judge(&observed).over_limit, 1);
        let mut observed = clean();
        observed.counts_broken = 2;
        assert_eq!(judge(&observed).over_limit, 2);
    }

    #[test]
    fn a_cancelled_order_has_one_cancel_event_and_no_rejection() {
        let statuses = HashMap::from([(id(1), Cancelled)]);
        for fine in [
            cancelled(&[], &["x"]),
            cancelled(&[("OrderConfirmed", "d")], &["x"]),
        ] {
            let seen = HashMap::from([(id(1), fine)]);
            assert_eq!(judge_events(&statuses, &seen), (0, 0));
        }
        let missing = HashMap::from([(id(1), cancelled(&[("OrderConfirmed", "d")], &[]))]);
        assert_eq!(judge_events(&statuses, &missing), (1, 0));
        let twice = HashMap::from([(id(1), cancelled(&[], &["x", "y"]))]);
        assert_eq!(judge_events(&statuses, &twice), (0, 1));
        let rejected_too = HashMap::from([(id(1), cancelled(&[("OrderRejected", "d")], &["x"]))]);
        assert_eq!(judge_events(&statuses, &rejected_too), (0, 1));
        // A confirmed order with a cancel event contradicts PostgreSQL.
        let confirmed = HashMap::from([(id(1), Confirmed)]);
        let stray = HashMap::from([(id(1), cancelled(&[("OrderConfirmed", "d")], &["x"]))]);
        assert_eq!(judge_events(&confirmed, &stray), (0, 1));
    }

    #[test]
    fn a_cancel_answered_200_must_leave_the_order_cancelled() {
        let statuses = HashMap::from([(id(1), Cancelled), (id(2), Confirmed)]);
        assert_eq!(judge_cancels(&[id(1)], &statuses), 0);
        assert_eq!(judge_cancels(&[id(1), id(2), id(3)], &statuses), 2);
    }

    #[test]
    fn a_terminal_event_that_contradicts_the_order_is_duplicated() {
        let statuses = HashMap::from([(id(1), Confirmed)]);
        let right = HashMap::from([(id(1), events(&["c"], &[("OrderConfirmed", "d")]))]);
        assert_eq!(judge_events(&statuses, &right), (0, 0));
        let wrong = HashMap::from([(id(1), events(&["c"], &[("OrderRejected", "d")]))]);
        assert_eq!(judge_events(&statuses, &wrong), (0, 1));
        let both = HashMap::from([(
            id(1),
            events(&["c"], &[("OrderConfirmed", "d"), ("OrderRejected", "d")]),
        )]);
        assert_eq!(judge_events(&statuses, &both), (0, 1));
        let two_ids = HashMap::from([(
            id(1),
            events(&["c"], &[("OrderConfirmed", "d"), ("OrderConfirmed", "e")]),
        )]);
        assert_eq!(judge_events(&statuses, &two_ids), (0, 1));
    }

    #[test]
    fn missing_created_or_terminal_events_are_lost() {
        let statuses = HashMap::from([(id(1), Rejected), (id(2), Confirmed)]);
        let seen = HashMap::from([
            (id(1), events(&[], &[("OrderRejected", "d")])),
            (id(2), events(&["c", "c2"], &[])),
        ]);
        // 1 has no OrderCreated (lost); 2 has no terminal event (lost) and two OrderCreated ids.
        assert_eq!(judge_events(&statuses, &seen), (2, 1));
    }

    #[test]
    fn orders_missing_pending_or_unsettled_are_lost() {
        let statuses = HashMap::from([(id(1), Confirmed)]);
        assert_eq!(judge_orders(&[id(1)], &statuses, true), 0);
        assert_eq!(judge_orders(&[id(1), id(2)], &statuses, true), 1, "missing");
        let pending = HashMap::from([(id(1), Pending)]);
        assert_eq!(judge_orders(&[id(1)], &pending, false), 1, "pending");
        assert_eq!(judge_orders(&[id(1)], &statuses, false), 1, "never settled");
    }

    #[test]
    fn stock_below_zero_unconserved_or_off_the_ledger_is_caught() {
        assert_eq!(judge_stock(&[FINE]), (0, 0));
        let negative = StockRow {
            available: -1,
            sold: 11,
            ledger: 11,
            ..FINE
        };
        assert_eq!(judge_stock(&[negative]), (1, 0));
        let unconserved = StockRow { sold: 5, ..FINE };
        assert_eq!(judge_stock(&[unconserved]), (1, 0));
        let applied_twice = StockRow { ledger: 7, ..FINE };
        assert_eq!(judge_stock(&[applied_twice]), (0, 1));
    }

    #[test]
    fn a_count_that_heals_adds_nothing_instead_of_wrapping() {
        let earlier = Checked {
            lost: 3,
            oversold: 2,
            confirmed: 10,
            ..Checked::default()
        };
        let now = Checked {
            lost: 1,
            oversold: 2,
            confirmed: 15,
            ..Checked::default()
        };
        let phase = now.since(&earlier);
        assert_eq!((phase.lost, phase.oversold, phase.confirmed), (0, 0, 5));
    }
}
