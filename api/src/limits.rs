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
    client::client_ip,
    error::{error_body, ApiError},
    sessions,
    state::AppState,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    net::SocketAddr,
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
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

/// A budget of `limit` requests per fixed window of the clock, `window` long, counted in Redis
/// under `scope` and `id` (0: no limit).
pub(crate) struct Budget<'a> {
    pub scope: &'static str,
    pub id: &'a [u8],
    pub limit: u32,
    pub window: Duration,
}

/// Takes one request from every budget if each has one left, else none: a refused request
/// spends nothing, so a client refused by its own limit cannot use up another's (a stranger's
/// code requests refused for his address do not count against the address he names).
static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local spent = {}
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i * 2 - 1]) then
    spent[#spent + 1] = i
  end
end
if #spent > 0 then return spent end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[i * 2]) end
end
return spent
",
    )
});

/// [`TAKE`]s one request from each of `budgets`, in one round trip: `None` when taken, else the
/// seconds until the last spent budget's window ends (at least one).
pub(crate) async fn take(
    state: &AppState,
    budgets: &[Budget<'_>],
) -> redis::RedisResult<Option<u64>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let budgets: Vec<&Budget> = budgets.iter().filter(|b| b.limit > 0).collect();
    if budgets.is_empty() {
        return Ok(None);
    }
    let mut invocation = TAKE.prepare_invoke();
    for budget in &budgets {
        let window = budget.window.as_secs().max(1);
        invocation
            .key(state.keys.rate(budget.scope, now / window, budget.id))
            .arg(budget.limit)
            .arg(window);
    }
    let spent: Vec<usize> = invocation.invoke_async(&mut state.redis.clone()).await?;
    Ok(spent
        .iter()
        .filter_map(|i| budgets.get(i.checked_sub(1)?))
        .map(|budget| {
            let window = budget.window.as_secs().max(1);
            window - now % window
        })
        .max())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderValue};

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
