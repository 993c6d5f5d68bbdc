//! A PENDING order's place in line (`shop_infra::place`): read from Redis for `GET /orders/{id}`
//! ([`read`]), and followed by an SSE stream as `place` events ([`PlaceWatch`]).

use crate::state::AppState;
use serde::Serialize;
use shop_domain::OrderId;
use shop_infra::place::{Place, Places};
use uuid::Uuid;

/// The place of order `order`, whose lines are of `products`; `None` when Redis did not answer
/// (the caller shows the place as unknown, and answers all the same).
pub(crate) async fn read(state: &AppState, order: Uuid, products: &[i64]) -> Option<Place> {
    let places = Places::new(state.redis.clone(), state.keys.clone());
    match places.read(OrderId::from_uuid(order), products).await {
        Ok(place) => Some(place),
        Err(error) => {
            shop_infra::metrics::client_error("redis", "place");
            tracing::warn!(%error, "cannot read an order's place in line");
            None
        }
    }
}

/// The data of an SSE `place` event:
/// `{"order_id":…,"ahead":12,"lines":[{"product_id":42,"remaining":300}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PlaceEvent {
    order_id: Uuid,
    ahead: Option<i64>,
    lines: Vec<LineRemaining>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct LineRemaining {
    product_id: i64,
    remaining: Option<i64>,
}

/// One SSE stream's view of an order's place: what it sent last, and the lowest `ahead` it sent,
/// which the next one never exceeds.
pub(crate) struct PlaceWatch {
    products: Vec<i64>,
    lowest: Option<i64>,
    sent: PlaceEvent,
}

impl PlaceWatch {
    /// Watches order `order`, whose lines are of `products`. Nothing is known yet: an event
    /// that knows nothing more is never sent.
    pub(crate) fn new(order: Uuid, products: Vec<i64>) -> Self {
        let lines = products
            .iter()
            .map(|&product_id| LineRemaining {
                product_id,
                remaining: None,
            })
            .collect();
        Self {
            products,
            lowest: None,
            sent: PlaceEvent {
                order_id: order,
                ahead: None,
                lines,
            },
        }
    }

    /// Reads the place; the event to send when it changed since the last one sent.
    pub(crate) async fn check(&mut self, state: &AppState) -> Option<PlaceEvent> {
        let place = read(state, self.sent.order_id, &self.products).await?;
        self.next(place)
    }

    /// The event for `place`, `ahead` clamped to the lowest sent; `None` when it is the one sent
    /// last.
    fn next(&mut self, place: Place) -> Option<PlaceEvent> {
        let ahead = never_more(self.lowest, place.ahead);
        self.lowest = ahead.or(self.lowest);
        let lines = self
            .products
            .iter()
            .zip(place.remaining)
            .map(|(&product_id, remaining)| LineRemaining {
                product_id,
                remaining,
            })
            .collect();
        let event = PlaceEvent {
            order_id: self.sent.order_id,
            ahead,
            lines,
        };
        if event == self.sent {
            return None;
        }
        self.sent = event.clone();
        Some(event)
    }
}

/// `fresh`, but never more than `lowest` (the lowest value a stream sent): a place in line
/// only moves forward for its watcher, even when the lanes' published progress lags. Unknown
/// stays unknown.
fn never_more(lowest: Option<i64>, fresh: Option<i64>) -> Option<i64> {
    match (lowest, fresh) {
        (Some(lowest), Some(fresh)) => Some(lowest.min(fresh)),
        (_, fresh) => fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(ahead: Option<i64>, remaining: &[Option<i64>]) -> Place {
        Place {
            ahead,
            remaining: remaining.to_vec(),
        }
    }

    #[test]
    fn ahead_never_grows_for_one_stream() {
        assert_eq!(never_more(None, Some(12)), Some(12));
        assert_eq!(never_more(Some(12), Some(9)), Some(9));
        assert_eq!(never_more(Some(9), Some(15)), Some(9));
        assert_eq!(never_more(Some(9), None), None, "unknown stays unknown");
    }

    #[test]
    fn only_changes_are_sent_and_ahead_is_clamped() {
        let order = Uuid::nil();
        let mut watch = PlaceWatch::new(order, vec![42, 7]);
        assert_eq!(
            watch.next(place(None, &[None, None])),
            None,
            "nothing known"
        );
        let first = watch
            .next(place(Some(12), &[Some(300), None]))
            .expect("sent");
        assert_eq!(
            serde_json::to_value(&first).expect("json"),
            serde_json::json!({
                "order_id": order,
                "ahead": 12,
                "lines": [
                    {"product_id": 42, "remaining": 300},
                    {"product_id": 7, "remaining": null},
                ],
            })
        );
        assert_eq!(
            watch.next(place(Some(12), &[Some(300), None])),
            None,
            "the same"
        );
        assert_eq!(
            watch.next(place(Some(14), &[Some(300), None])),
            None,
            "clamped to 12"
        );
        let moved = watch
            .next(place(Some(14), &[Some(280), Some(5)]))
            .expect("sent");
        assert_eq!(moved.ahead, Some(12), "{moved:?}");
        let closer = watch
            .next(place(Some(3), &[Some(280), Some(5)]))
            .expect("sent");
        assert_eq!(closer.ahead, Some(3));
        let lost = watch
            .next(place(None, &[Some(280), Some(5)]))
            .expect("sent");
        assert_eq!(lost.ahead, None);
        let back = watch
            .next(place(Some(8), &[Some(280), Some(5)]))
            .expect("sent");
        assert_eq!(back.ahead, Some(3), "the lowest sent still bounds it");
    }
}
