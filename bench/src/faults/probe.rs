//! The recovery probe: after a repair (or from a failover's injection on), one order placed and
//! followed until it is decided (the time to recover; the time until its checkout was first
//! accepted is kept too), and the probing shopper's cart checked against that decision.

use super::{
    seen::Seen,
    traffic::{checkout, fill_cart, send, Fixture, Shopper},
};
use crate::{poll, shop::Shop};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shop_domain::OrderStatus;
use std::{
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};
use uuid::Uuid;

/// What the probe saw.
#[derive(Debug, Default)]
pub struct Probed {
    /// From `since` until its checkout was first answered 202 (the shop takes orders again);
    /// `None` if not within the bound.
    pub accepted_seconds: Option<f64>,
    /// From `since` until its order was decided (the time to recover); `None` if not within the
    /// bound.
    pub recover_seconds: Option<f64>,
    /// Whether its cart held what it should once the order was decided (`None`: never decided).
    pub cart_ok: Option<bool>,
}

/// Orders placed from now on, each followed until it is decided, until one is or `bound` has
/// passed since `since` (the repair, or a failover's injection).
pub async fn probe(fixture: &Fixture, since: Instant, bound: Duration) -> Probed {
    let never = AtomicBool::new(false);
    let seen = Seen::default();
    let mut probed = Probed::default();
    let Some(&cold) = fixture.cold.first() else {
        return probed;
    };
    let (shop, shopper) = (&fixture.shop, &*fixture.probe);
    while since.elapsed() < bound {
        if !fill_cart(shop, shopper, &[(cold, 1)]).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let Some(order) = checkout(shop, shopper, &seen, &never).await else {
            continue;
        };
        probed
            .accepted_seconds
            .get_or_insert(since.elapsed().as_secs_f64());
        let within = bound.saturating_sub(since.elapsed());
        let Some(status) = decided(shop, shopper, order, within).await else {
            continue;
        };
        probed.recover_seconds = Some(since.elapsed().as_secs_f64());
        probed.cart_ok = Some(
            match send(shop, shopper, Method::GET, "/cart", None, None).await {
                Some((StatusCode::OK, cart)) => {
                    cart_as_expected(status, &[(cold, 1)], &cart_lines(&cart))
                }
                _ => false,
            },
        );
        return probed;
    }
    probed
}

/// `order`'s decision, asked for until it is there or `within` has passed.
async fn decided(
    shop: &Shop,
    shopper: &Shopper,
    order: Uuid,
    within: Duration,
) -> Option<OrderStatus> {
    let path = &format!("/orders/{order}");
    let decided = poll::until(within, Duration::from_millis(50), || async move {
        let status = match send(shop, shopper, Method::GET, path, None, None).await {
            Some((StatusCode::OK, body)) => decision(&body),
            _ => None,
        };
        Ok::<_, ()>(status.ok_or(()))
    })
    .await;
    decided.ok()?.ok()
}

/// The order's status in an order's JSON, if it is decided: CONFIRMED or REJECTED.
fn decision(order: &Value) -> Option<OrderStatus> {
    OrderStatus::parse(order["status"].as_str()?)
        .filter(|s| matches!(s, OrderStatus::Confirmed | OrderStatus::Rejected))
}

/// Whether a shopper's cart holds what it should once the order that took `ordered` from it is
/// decided, the shopper having added nothing since: nothing after CONFIRMED, the order's lines
/// again after REJECTED.
fn cart_as_expected(status: OrderStatus, ordered: &[(i64, i64)], cart: &[(i64, i64)]) -> bool {
    let mut cart = cart.to_vec();
    let mut ordered = ordered.to_vec();
    cart.sort_unstable();
    ordered.sort_unstable();
    match status {
        OrderStatus::Confirmed => cart.is_empty(),
        OrderStatus::Rejected => cart == ordered,
        _ => false,
    }
}

/// A cart's `(product, quantity)` lines.
fn cart_lines(cart: &Value) -> Vec<(i64, i64)> {
    cart["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| Some((i["product_id"].as_i64()?, i["quantity"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cart_that_kept_confirmed_lines_or_lost_rejected_ones_is_caught() {
        let ordered = [(7, 1), (3, 2)];
        assert!(cart_as_expected(OrderStatus::Confirmed, &ordered, &[]));
        assert!(!cart_as_expected(
            OrderStatus::Confirmed,
            &ordered,
            &[(7, 1)]
        ));
        assert!(cart_as_expected(
            OrderStatus::Rejected,
            &ordered,
            &[(3, 2), (7, 1)]
        ));
        assert!(!cart_as_expected(
            OrderStatus::Rejected,
            &ordered,
            &[(3, 2)]
        ));
        assert!(!cart_as_expected(OrderStatus::Pending, &ordered, &ordered));
        let cart = serde_json::json!({"items": [{"product_id": 7, "quantity": 1}]});
        assert_eq!(cart_lines(&cart), [(7, 1)]);
        let decided = serde_json::json!({"status": "REJECTED"});
        assert_eq!(decision(&decided), Some(OrderStatus::Rejected));
        assert_eq!(decision(&serde_json::json!({"status": "PENDING"})), None);
    }
}
