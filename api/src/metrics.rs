//! Every metric the API exports, declared here, and the middleware that records HTTP traffic.
//! Routes are labelled by their matched pattern (`/products/{id}`), never the raw path.

use crate::{
    checkout::{Placed, Strategy},
    error::ApiError,
};
use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use shop_domain::messages::OrderStatus;
use std::time::Instant;

pub const HTTP_REQUESTS: &str = "shop_api_http_requests_total";
pub const HTTP_DURATION: &str = "shop_api_http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "shop_api_http_requests_in_flight";
/// Label `result`: `local` (this process's copy), `hit` (Redis), `miss` or `error`.
pub const CACHE_LOOKUPS: &str = "shop_api_cache_lookups_total";
/// Checkouts the queue strategy wrote per statement.
pub const INTAKE_BATCH: &str = "shop_api_checkout_intake_batch_size";
/// Checkout requests by `strategy` and `outcome`: `accepted` (PENDING, handed to the pipeline),
/// `confirmed` (decided in the request), `replayed` (Idempotency-Key seen before),
/// `out_of_stock`, `contention` (a synchronous strategy gave up), or `error` (any other).
pub const CHECKOUTS: &str = "shop_api_checkouts_total";
/// Sign-in by code, by `outcome`: `code_queued`, `code_unknown_address` (answered the same),
/// `code_retry` (queueing failed, tried again), `code_error` (gave up after 30 s),
/// `send_limited`, `verified`, `wrong_code`, `locked_out`.
pub const SIGN_INS: &str = "shop_api_sign_in_total";
/// Orders cancelled, by `from`: the status they had, `PENDING` or `CONFIRMED`.
pub const CANCELS: &str = "shop_api_orders_cancelled_total";
/// Restock requests by `status` once answered: `APPLIED`, `REFUSED`, or `PENDING` (the lane took
/// longer than the request waits).
pub const RESTOCKS: &str = "shop_api_restocks_total";
/// Requests refused with 429 by the rate limiter.
pub const RATE_LIMITED: &str = "shop_api_rate_limited_total";

pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let in_flight = metrics::gauge!(HTTP_IN_FLIGHT);
    in_flight.increment(1.0);
    let started = Instant::now();
    let response = next.run(request).await;
    in_flight.decrement(1.0);
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

pub fn cancelled(from: OrderStatus) {
    metrics::counter!(CANCELS, "from" => from.as_str()).increment(1);
}

pub fn restocked(status: &'static str) {
    metrics::counter!(RESTOCKS, "status" => status).increment(1);
}

pub fn cache_lookup(result: &'static str) {
    metrics::counter!(CACHE_LOOKUPS, "result" => result).increment(1);
}

/// How many checkouts the queue strategy's intake wrote in one statement.
pub fn intake_batch(size: usize) {
    metrics::histogram!(INTAKE_BATCH).record(size as f64);
}

pub fn checkout(strategy: Strategy, result: &Result<Placed, ApiError>) {
    let outcome = match result {
        Ok(placed) if placed.replayed => "replayed",
        Ok(_) if strategy == Strategy::Queue => "accepted",
        Ok(_) => "confirmed",
        Err(ApiError::OutOfStock(_)) => "out_of_stock",
        Err(ApiError::Client {
            code: "contention", ..
        }) => "contention",
        Err(_) => "error",
    };
    metrics::counter!(CHECKOUTS, "strategy" => strategy.as_str(), "outcome" => outcome)
        .increment(1);
}

pub fn sign_in(outcome: &'static str) {
    metrics::counter!(SIGN_INS, "outcome" => outcome).increment(1);
}
