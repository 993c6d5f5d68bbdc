//! Every metric the API exports, declared here, and the middleware that records HTTP traffic.
//! Every label takes one of a known set of values, so no client can add series: routes are
//! labelled by their matched pattern (`/products/{id}`, or `unmatched`), never the raw path, and
//! methods outside the standard nine by `other`.

use crate::checkout::strategy::Strategy;
use axum::{
    extract::{MatchedPath, Request},
    http::Method,
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
/// `out_of_stock`, `not_on_sale_yet`, `limit_exceeded` (a synchronous strategy; the pipeline
/// rejects such an order later), `contention` (a synchronous strategy gave up), or `error` (any
/// other).
pub const CHECKOUTS: &str = "shop_api_checkouts_total";
/// Sign-in, registration and phone codes, by `outcome`: `code_queued`, `code_unknown_address`
/// (answered the same), `registration_queued`, `phone_code_queued`, `code_retry` (queueing
/// failed, tried again), `code_error` (gave up after 30 s), `send_limited`, `verify_limited`,
/// `delayed`, `wrong_code`, `verified` (signed in), `registered` (an account made),
/// `phone_verified`.
pub const SIGN_INS: &str = "shop_api_sign_in_total";
/// Orders cancelled, by `from`: the status they had, `PENDING` or `CONFIRMED`.
pub const CANCELS: &str = "shop_api_orders_cancelled_total";
/// Restock requests by `status` once answered: `APPLIED`, `REFUSED`, or `PENDING` (the lane took
/// longer than the request waits).
pub const RESTOCKS: &str = "shop_api_restocks_total";
/// Requests refused with 429 by the rate limiter.
pub const RATE_LIMITED: &str = "shop_api_rate_limited_total";
/// Client connections open now.
pub const CONNECTIONS_OPEN: &str = "shop_api_connections_open";
/// Connections closed as soon as they were accepted, by `reason`: `per_ip_cap` (that client
/// address had `MAX_CONNECTIONS_PER_IP` open already).
pub const CONNECTIONS_REFUSED: &str = "shop_api_connections_refused_total";
/// Connections closed because their first request's headers had not arrived within
/// `HEADER_READ_TIMEOUT_SECS` (later requests' timeouts, HTTP/1's, are hyper's and not counted).
pub const CONNECTIONS_TIMED_OUT: &str = "shop_api_connections_timed_out_total";

/// The `method` label: the method when it is one of the nine of RFC 9110 and RFC 5789, else
/// `other`, so that invented methods do not each add a series.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

pub async fn track_http(request: Request, next: Next) -> Response {
    // Requests no route matched (404s of the fallback) share one label.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method()).to_owned();
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

/// A checkout request and its `outcome` (one of those [`CHECKOUTS`] names).
pub fn checkout(strategy: Strategy, outcome: &'static str) {
    metrics::counter!(CHECKOUTS, "strategy" => strategy.as_str(), "outcome" => outcome)
        .increment(1);
}

pub fn sign_in(outcome: &'static str) {
    metrics::counter!(SIGN_INS, "outcome" => outcome).increment(1);
}

pub fn connection_opened() {
    metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
}

pub fn connection_closed() {
    metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
}

pub fn connection_refused(reason: &'static str) {
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

pub fn connection_timed_out() {
    metrics::counter!(CONNECTIONS_TIMED_OUT).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_others_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        for invented in ["FOOBAR", "get", "PROPFIND"] {
            let method = Method::from_bytes(invented.as_bytes()).expect("a valid token");
            assert_eq!(method_label(&method), "other", "{invented}");
        }
    }
}
