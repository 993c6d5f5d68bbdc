//! `POST /orders/checkout`: the cart becomes an order.
//!
//! Every strategy shares what happens before stock is taken (the request, the Idempotency-Key
//! claim in [`crate::idempotency`], the cart snapshot with its products' stock, the early refusal
//! of short lines in [`stock`]) and how an order and its lines are written (`shop_infra::orders::place`).
//! `CHECKOUT_STRATEGY` ([`Strategy`]) picks how stock is taken, each strategy behind the one
//! interface [`order::TakeStock`]:
//! - `queue` (the default, [`queue`]): the order is recorded PENDING with its reserve commands in
//!   the outbox (batched by [`intake`]), answered 202, and decided by the checkout worker that
//!   owns each product's partition;
//! - `optimistic`, `redis-lock`, `row-lock` ([`locking`]): the order is decided in the request
//!   and answered 201 CONFIRMED, or 409 with the short lines.
//!
//! A product's `sale_starts_at` is enforced by PostgreSQL's clock, for every strategy, in the one
//! statement that writes the order (`place::insert_all`: `now()`), never by this process's clock,
//! so an API replica whose clock runs ahead cannot open a sale early; the early refusal
//! ([`stock`]) looks at stock only, and can only refuse. A product's `max_per_shopper`
//! is counted by the product's lane (queue) or in the order's transaction (the others).

pub(crate) mod intake;
mod locking;
pub(crate) mod order;
mod queue;
pub(crate) mod stock;
pub mod strategy;

/// The strategy's name, where settings and tests have always found it.
pub use strategy::Strategy;

use crate::{
    checkout::order::{Placed, PlacedBody, TakeStock},
    error::{ApiError, ErrorBody},
    extract::RawBody,
    idempotency::{self, Claim},
    metrics,
    sessions::CurrentUser,
    state::AppState,
};
use axum::{
    body::Bytes, extract::State, http::HeaderMap, response::Response, routing::post, Router,
};
use serde::Deserialize;
use shop_domain::{IdempotencyKey, Money, OrderId, UserId};
use shop_infra::orders::place::{self, NewOrder};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/orders/checkout", post(checkout))
}

const MAX_ADDRESS_LEN: usize = 1000;

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct CheckoutRequest {
    /// 1 to 1000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    delivery_address: Option<String>,
}

/// The body is optional: no body means no delivery address.
fn checkout_request(body: &Bytes) -> Result<CheckoutRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CheckoutRequest::default());
    }
    // `null` is no body too.
    let request: Option<CheckoutRequest> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable("invalid_body", e.to_string())
        } else {
            ApiError::bad_request("malformed_json", e.to_string())
        }
    })?;
    let request = request.unwrap_or_default();
    if let Some(address) = &request.delivery_address {
        if address.trim().is_empty()
            || address.chars().count() > MAX_ADDRESS_LEN
            || address.contains('\0')
        {
            return Err(ApiError::unprocessable(
                "invalid_delivery_address",
                "delivery_address must be 1 to 1000 characters, not all blank, without NUL",
            ));
        }
    }
    Ok(request)
}

/// `POST /orders/checkout`: the cart becomes an order. With the default `queue` strategy the
/// answer is 202 with the order PENDING: poll `status_url` or follow `events_url`.
#[utoipa::path(post, path = "/orders/checkout", tag = "orders", security(("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
        description = "1 to 255 visible ASCII characters; the same key again answers with the same order")),
    request_body(content = Option<CheckoutRequest>, description = "Optional; an empty body means no delivery address"),
    responses(
    (status = 202, description = "Accepted: the pipeline decides the order (queue strategy)", body = PlacedBody,
        headers(("Location" = String, description = "The order's URL"),
                ("Idempotent-Replayed" = String, description = "`true` when an earlier request with this key placed the order"))),
    (status = 201, description = "Decided in the request and CONFIRMED (synchronous strategies)", body = PlacedBody,
        headers(("Location" = String, description = "The order's URL"),
                ("Idempotent-Replayed" = String, description = "`true` when an earlier request with this key placed the order"))),
    (status = 400, description = "`invalid_idempotency_key` or `malformed_json`", body = ErrorBody),
    crate::error::responses::NoSession,
    (status = 409, description = "`out_of_stock` (with `short_lines`), `not_on_sale_yet` (with `product_id` and `sale_starts_at`: a product in the cart is not on sale yet by the database's clock), `limit_exceeded` (synchronous strategies, with `short_lines`: more than a product's `max_per_shopper`; the queue strategy accepts such an order and rejects its line with `reason_code` `limit_exceeded`), `contention`, `cart_changed` (another checkout took the cart's lines), or `checkout_in_progress` (a request with this Idempotency-Key is still being decided); a refusal is answered again to every retry with its Idempotency-Key", body = ErrorBody),
    (status = 422, description = "`empty_cart`, `invalid_delivery_address` or `invalid_body`", body = ErrorBody),
))]
pub(crate) async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let strategy = state.settings.checkout_strategy;
    let result = place(&state, strategy, user.id, &headers, &body).await;
    metrics::checkout(strategy, Placed::outcome(strategy, &result));
    Ok(result?.into_response(strategy))
}

async fn place(
    state: &AppState,
    strategy: Strategy,
    user: UserId,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Placed, ApiError> {
    let key = idempotency::key(headers)?;
    let request = checkout_request(body)?;
    let id = OrderId::generate();
    let Some(key) = key else {
        return decide(state, strategy, user, id, request, None).await;
    };
    match idempotency::claim(state, user, &key, id).await? {
        Claim::Mine => {}
        Claim::Placed(placed) => return Ok(placed.into()),
        Claim::Refused(refusal) => return Err(refusal),
        Claim::InProgress => {
            return Err(ApiError::conflict(
                "checkout_in_progress",
                "a checkout with this Idempotency-Key is still being decided; retry shortly",
            ))
        }
    }
    let result = decide(state, strategy, user, id, request, Some(&key)).await;
    if let Err(error) = &result {
        idempotency::settle(state, user, &key, id, error).await;
    }
    result
}

/// Takes the cart's lines into an order `id`, or refuses.
async fn decide(
    state: &AppState,
    strategy: Strategy,
    user: UserId,
    id: OrderId,
    request: CheckoutRequest,
    key: Option<&IdempotencyKey>,
) -> Result<Placed, ApiError> {
    let cart = place::cart_lines(&state.db, user).await?;
    if cart.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_cart",
            "the cart is empty; add products before checking out",
        ));
    }
    let lines = stock::refuse_short(&cart)?;
    let order = NewOrder {
        id,
        user,
        total: Money::sum(lines.iter().map(|l| l.price.times(l.quantity))),
        delivery_address: request.delivery_address,
        idempotency_key: key.map(|k| k.as_str().to_owned()),
        lines,
    };
    match strategy {
        Strategy::Queue => queue::Queue.place(state, &order).await,
        Strategy::Optimistic => locking::Optimistic.place(state, &order).await,
        Strategy::RedisLock => locking::RedisLock.place(state, &order).await,
        Strategy::RowLock => locking::RowLock.place(state, &order).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    proptest! {
        #[test]
        fn any_checkout_body_is_parsed_or_refused_with_a_client_error(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match checkout_request(&Bytes::from(body)) {
                Ok(request) => if let Some(address) = request.delivery_address {
                    prop_assert!((1..=1000).contains(&address.chars().count()));
                },
                Err(error) => prop_assert!(error.into_response().status().is_client_error()),
            }
        }

        #[test]
        fn json_addresses_are_accepted_exactly_when_1_to_1000_characters(address in "\\PC{0,1100}") {
            let body = serde_json::json!({ "delivery_address": address }).to_string();
            let valid = !address.trim().is_empty() && address.chars().count() <= 1000 && !address.contains('\0');
            prop_assert_eq!(checkout_request(&Bytes::from(body)).is_ok(), valid);
        }
    }
}
