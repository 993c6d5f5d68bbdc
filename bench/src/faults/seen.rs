//! [`Seen`]: what the shoppers were answered, shared by their tasks, for the checker to hold the
//! shop to.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};
use uuid::Uuid;

/// What the shoppers saw, shared by their tasks.
#[derive(Default)]
pub struct Seen {
    /// Idempotency key → the order it was answered with.
    orders: Mutex<HashMap<String, Uuid>>,
    /// A key answered with two different orders.
    duplicated: AtomicU64,
    /// Orders whose cancel was answered 200.
    cancelled: Mutex<HashSet<Uuid>>,
}

impl Seen {
    /// Checkouts answered 202, one per key.
    pub fn accepted(&self) -> u64 {
        self.orders.lock().map_or(0, |orders| orders.len() as u64)
    }

    /// `key` was answered 202 with `order`; a key answered with two different orders counts as
    /// duplicated.
    pub fn record(&self, key: &str, order: Uuid) {
        let Ok(mut orders) = self.orders.lock() else {
            return;
        };
        if orders
            .insert(key.to_owned(), order)
            .is_some_and(|earlier| earlier != order)
        {
            self.duplicated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The cancel of `order` was answered 200.
    pub fn record_cancel(&self, order: Uuid) {
        if let Ok(mut cancelled) = self.cancelled.lock() {
            cancelled.insert(order);
        }
    }

    /// Every order a checkout was answered 202 with.
    pub fn acked(&self) -> Vec<Uuid> {
        self.orders
            .lock()
            .map(|orders| orders.values().copied().collect())
            .unwrap_or_default()
    }

    /// Every order whose cancel was answered 200.
    pub fn cancelled(&self) -> Vec<Uuid> {
        self.cancelled
            .lock()
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Keys answered with two different orders.
    pub fn duplicated(&self) -> u64 {
        self.duplicated.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_answered_with_two_orders_is_duplicated() {
        let seen = Seen::default();
        seen.record("k", Uuid::from_u128(1));
        seen.record("k", Uuid::from_u128(1));
        assert_eq!(seen.duplicated(), 0, "a replay");
        seen.record("k", Uuid::from_u128(2));
        assert_eq!(seen.duplicated(), 1);
        assert_eq!(seen.accepted(), 1);
    }
}
