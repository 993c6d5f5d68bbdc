//! What a drop run is: its sizes ([`Plan`]) and each shopper's part in it ([`Role`]), and the
//! units its shoppers could buy between them ([`demand`]).

use crate::error::BenchError;
use serde::Serialize;
use std::time::Duration;

/// Shoppers that check out about [`EARLY_BY`] before the sale starts (and again in their slot).
pub const EARLY: usize = 5;
/// How long before the start the early shoppers check out.
pub const EARLY_BY: Duration = Duration::from_secs(1);
/// One shopper in this many checks out a second time right after their first answer.
pub const SECOND_EVERY: usize = 10;
/// The window after the start over which the shoppers' first checkouts are spread evenly.
pub const SPREAD: Duration = Duration::from_secs(1);
/// The most units a seller may list or a shopper's limit may be (the API's bound).
const MOST_UNITS: i64 = 1_000_000_000;

/// How big a drop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub shoppers: usize,
    /// Accepted orders followed over Server-Sent Events until decided.
    pub watchers: usize,
    /// The drop's stock.
    pub units: i64,
    /// The drop's `max_per_shopper`.
    pub limit: i64,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            shoppers: 20_000,
            watchers: 500,
            units: 1000,
            limit: 2,
        }
    }

    /// Well under a minute per strategy: keeps the scenario working, measures nothing.
    pub fn smoke() -> Self {
        Self {
            shoppers: 400,
            watchers: 20,
            units: 50,
            limit: 2,
        }
    }

    /// Refuses a plan the shop or the scenario cannot run.
    pub fn check(&self) -> Result<(), BenchError> {
        let problem = if self.shoppers == 0 {
            "--shoppers must be at least 1"
        } else if self.watchers > self.shoppers {
            "--watchers must not exceed --shoppers"
        } else if !(1..=MOST_UNITS).contains(&self.units) {
            "--units must be 1 to 1,000,000,000"
        } else if !(1..=MOST_UNITS).contains(&self.limit) {
            "--limit must be 1 to 1,000,000,000"
        } else {
            return Ok(());
        };
        Err(BenchError::Setup(problem.to_owned()))
    }

    /// Each shopper's part, in the order of their slots: quantities 1 and 2 alternating in runs
    /// that shift every [`SECOND_EVERY`], so the shoppers who check out twice want either;
    /// the early shoppers and the watched ones spread evenly over the slots.
    pub fn roles(&self) -> Vec<Role> {
        let n = self.shoppers;
        (0..n)
            .map(|i| Role {
                quantity: 1 + ((i + i / SECOND_EVERY) % 2) as i64,
                twice: i % SECOND_EVERY == SECOND_EVERY / 2,
                early: evenly(i, EARLY.min(n), n),
                watched: evenly(i, self.watchers, n),
            })
            .collect()
    }

    /// When shopper `i`'s first checkout is due, after the start: slots spread evenly over
    /// [`SPREAD`].
    pub fn slot(&self, i: usize) -> Duration {
        SPREAD.mul_f64(i as f64 / self.shoppers.max(1) as f64)
    }
}

/// One shopper's part in the drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// Units of the drop in the cart (and in each of its checkouts).
    pub quantity: i64,
    /// Checks out again, the same quantity, right after the first answer.
    pub twice: bool,
    /// Also checks out [`EARLY_BY`] before the start (and must be refused `not_on_sale_yet`).
    pub early: bool,
    /// Its first accepted order is followed over Server-Sent Events.
    pub watched: bool,
}

/// The units the shoppers could buy between them within `limit` each, stock aside: each order
/// is all or nothing, and a shopper's orders are all of its quantity, so a shopper buys
/// `quantity` once per checkout while that stays within the limit, whichever is served first.
pub fn demand(roles: &[Role], limit: i64) -> i64 {
    roles
        .iter()
        .map(|r| {
            let checkouts = 1 + i64::from(r.twice);
            r.quantity * checkouts.min(limit / r.quantity)
        })
        .sum()
}

/// Whether `i` is one of `count` indices spread evenly over `0..n` (exactly `count` of them are,
/// for `count` ≤ `n`).
fn evenly(i: usize, count: usize, n: usize) -> bool {
    let (i, count, n) = (i as u128, count as u128, n as u128);
    count > 0 && (i * count) % n >= n - count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_mix_quantities_and_spread_the_early_watched_and_second_checkouts() {
        let plan = Plan {
            shoppers: 1000,
            watchers: 37,
            ..Plan::full()
        };
        let roles = plan.roles();
        let count = |f: fn(&Role) -> bool| roles.iter().filter(|r| f(r)).count();
        assert_eq!(count(|r| r.twice), 100);
        assert_eq!(count(|r| r.early), EARLY);
        assert_eq!(count(|r| r.watched), 37);
        assert_eq!(count(|r| r.quantity == 1), 500);
        assert_eq!(count(|r| r.twice && r.quantity == 2), 50);
        let small = Plan {
            shoppers: 3,
            watchers: 3,
            ..Plan::smoke()
        };
        assert!(small.roles().iter().all(|r| r.early && r.watched));
    }

    #[test]
    fn demand_counts_a_second_order_only_within_the_limit() {
        let role = |quantity, twice| Role {
            quantity,
            twice,
            early: false,
            watched: false,
        };
        let roles = [role(1, false), role(2, false), role(1, true), role(2, true)];
        assert_eq!(demand(&roles, 2), 1 + 2 + 2 + 2);
        assert_eq!(demand(&roles, 4), 1 + 2 + 2 + 4);
        // A limit of 1: one unit each from the shoppers who want 1, none from those who want 2.
        assert_eq!(demand(&roles, 1), 2);
    }

    #[test]
    fn slots_spread_over_the_second_and_bad_plans_are_refused() {
        let plan = Plan::smoke();
        assert_eq!(plan.slot(0), Duration::ZERO);
        assert_eq!(plan.slot(200), Duration::from_millis(500));
        assert!(plan.slot(399) < SPREAD);
        assert!(plan.check().is_ok() && Plan::full().check().is_ok());
        for bad in [
            Plan {
                shoppers: 0,
                ..plan
            },
            Plan {
                watchers: 401,
                ..plan
            },
            Plan { units: 0, ..plan },
            Plan { limit: 0, ..plan },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
