//! Limits on what one client may ask of the API, checked before any handler runs:
//! - headers adding up to more than `MAX_HEADER_BYTES`: 431;
//! - more than `RATE_LIMIT_PER_IP` requests in one second from one client address, or
//!   `RATE_LIMIT_PER_SESSION` with one session token: 429 with `Retry-After`.
//!
//! The counters live in Redis (fixed one-second windows, one round trip per request), so every
//! replica counts against the same budget. If Redis cannot be reached the request is let
//! through: the limiter must not take the catalog down with it. Health, readiness and metrics
//! are never limited.

use crate::{
    error::{error_body, ApiError},
    sessions,
    startup::AppState,
};
use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    net::{IpAddr, SocketAddr},
    time::{SystemTime, UNIX_EPOCH},
};

const UNLIMITED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let settings = &state.settings;
    if header_bytes(request.headers()) > settings.max_header_bytes {
        return error_body(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            &format!(
                "request headers may add up to at most {} bytes",
                settings.max_header_bytes
            ),
        );
    }
    if UNLIMITED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // Windows are whole seconds of the clock.
    let window = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut counted = Vec::with_capacity(2);
    if settings.rate_limit_per_ip > 0 {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        let ip = client_ip(request.headers(), peer, settings.trust_forwarded_for);
        let id = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        counted.push((
            state.keys.rate("ip", window, id.as_bytes()),
            settings.rate_limit_per_ip,
        ));
    }
    if settings.rate_limit_per_session > 0 {
        if let Some(token) = sessions::bearer(request.headers()) {
            counted.push((
                state.keys.rate("session", window, &sessions::digest(token)),
                settings.rate_limit_per_session,
            ));
        }
    }
    if counted.is_empty() {
        return next.run(request).await;
    }
    match count(&state, &counted, 2).await {
        Ok(true) => {
            metrics::counter!(crate::metrics::RATE_LIMITED).increment(1);
            rate_limited()
        }
        Ok(false) => next.run(request).await,
        Err(error) => {
            shop_infra::metrics::client_error("redis", "rate_limit");
            tracing::warn!(%error, "rate limiter unavailable; letting the request through");
            next.run(request).await
        }
    }
}

/// Counts a request in each `(window key, limit)`, whose keys expire after `ttl_secs`; true when
/// any of them is over its limit. One round trip.
pub(crate) async fn count(
    state: &AppState,
    counted: &[(Vec<u8>, u32)],
    ttl_secs: u64,
) -> redis::RedisResult<bool> {
    let mut pipe = redis::pipe();
    for (key, _) in counted {
        pipe.cmd("INCR")
            .arg(key)
            .cmd("EXPIRE")
            .arg(key)
            .arg(ttl_secs)
            .ignore();
    }
    let mut conn = state.redis.clone();
    let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
    Ok(counts
        .iter()
        .zip(counted)
        .any(|(seen, (_, limit))| *seen > u64::from(*limit)))
}

fn rate_limited() -> Response {
    // Retry-After is in whole seconds, and the current one-second window ends within one.
    ApiError::TooMany {
        code: "rate_limited",
        message: "too many requests; retry after the number of seconds in Retry-After",
        retry_after_secs: 1,
    }
    .into_response()
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// The client of a request as handlers see it: its address ([`client_ip`]) and user agent.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        Ok(Self {
            address: client_ip(&parts.headers, peer, state.settings.trust_forwarded_for),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(200).collect()),
        })
    }
}

/// The client's address: the peer, or behind a trusted proxy the last `X-Forwarded-For` entry
/// (the one that proxy appended; earlier ones are the client's to forge).
fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|last| last.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|peer| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let peer = "10.0.0.7:5000".parse().ok();
        let plain = forwarded(&["203.0.113.9"]);
        assert_eq!(client_ip(&plain, peer, false), "10.0.0.7".parse().ok());
        let proxied = forwarded(&["1.1.1.1, 203.0.113.9", "198.51.100.4"]);
        assert_eq!(client_ip(&proxied, peer, true), "198.51.100.4".parse().ok());
        let garbage = forwarded(&["not an address"]);
        assert_eq!(client_ip(&garbage, peer, true), "10.0.0.7".parse().ok());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let response = rate_limited();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn header_bytes_add_names_and_values() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("12345"));
        headers.insert("x-bb", HeaderValue::from_static("1"));
        assert_eq!(header_bytes(&headers), 3 + 5 + 4 + 1);
    }
}
