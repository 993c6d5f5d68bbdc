//! Checking a code: every try is counted before the code is compared, atomically, against the
//! client address (`SIGN_IN_VERIFIES_PER_IP`), the code (`SIGN_IN_MAX_ATTEMPTS`, whose last wrong
//! try kills it) and the address tried (past `SIGN_IN_MAX_ATTEMPTS` wrong codes, a doubling
//! wait); a right code is consumed in one step and clears the address's count.

use crate::{
    client::Client,
    error::ApiError,
    limits::{self, Budget},
    metrics,
    state::AppState,
};
use axum::http::StatusCode;
use shop_infra::sign_in::{self, Holder};
use std::{
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Takes a try if the address's wait is over for this client address, counting it as wrong
/// until it proves right: against the address (`w`; past `SIGN_IN_MAX_ATTEMPTS`, a doubling wait
/// in `until`), the client address (`s:<address>`) and the code (whose last try kills it).
/// Returns `{1, tries of the code, stored hash or ""}`, or `{0, milliseconds to wait, ""}`.
///
/// KEYS: code, the address's guesses, code's tries. ARGV: now (ms), client address, tries per code,
/// base delay (ms), longest delay (ms), guess window (s), code TTL (s).
static ATTEMPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local now, base = tonumber(ARGV[1]), tonumber(ARGV[4])
local source = 's:' .. ARGV[2]
local state = redis.call('HMGET', KEYS[2], 'w', 'until', source)
local wrong, mine = tonumber(state[1]) or 0, tonumber(state[3]) or 0
local ready = tonumber(state[2]) or 0
if ready > 0 then ready = ready + math.min(mine, 10) * base / 10 end
if now < ready then return {0, math.ceil(ready - now), ''} end
wrong = wrong + 1
redis.call('HSET', KEYS[2], 'w', wrong, source, mine + 1)
local free = tonumber(ARGV[3])
if wrong >= free and base > 0 then
  local delay = math.min(base * 2 ^ math.min(wrong - free, 30), tonumber(ARGV[5]))
  redis.call('HSET', KEYS[2], 'until', string.format('%.0f', now + delay))
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
local tries = redis.call('INCR', KEYS[3])
if tries == 1 then redis.call('EXPIRE', KEYS[3], ARGV[7]) end
if tries > free then
  redis.call('DEL', KEYS[1])
  return {1, tries, ''}
end
return {1, tries, redis.call('GET', KEYS[1]) or ''}
",
    )
});

/// Consumes the code if it is still the one compared, and forgets the account's wrong codes
/// and the code's tries: 1 for the one caller that did.
static CONSUME: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 1
end
return 0
",
    )
});

/// Kills the code compared, unless a new one replaced it meanwhile.
static KILL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

pub(crate) fn wrong_code() -> ApiError {
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        "invalid_code",
        "the code is wrong, used or expired; ask for a new one",
    )
}

/// Takes a try from the client's budget of `SIGN_IN_VERIFIES_PER_IP`; 429 past it.
async fn limit_tries(state: &AppState, client: &Client) -> Result<(), ApiError> {
    let ip = client.counted_as();
    let budget = Budget {
        scope: "verify-ip",
        id: ip.as_bytes(),
        limit: state.settings.sign_in_verifies_per_ip,
        window: state.settings.sign_in_verify_window,
    };
    if let Some(retry_after_secs) = limits::take(state, &[budget]).await? {
        metrics::sign_in("verify_limited");
        return Err(ApiError::TooMany {
            code: "too_many_attempts",
            message: "too many codes tried from this address; retry after the number of seconds in Retry-After",
            retry_after_secs,
        });
    }
    Ok(())
}

/// 422 unless `code` has the shape of one; then takes a try from the client's budget (429 past
/// it). Every code entered passes here first.
pub(crate) async fn admit(state: &AppState, client: &Client, code: &str) -> Result<(), ApiError> {
    if !sign_in::well_formed(code) {
        return Err(ApiError::unprocessable(
            "invalid_code_format",
            format!("a code is {} digits", sign_in::CODE_DIGITS),
        ));
    }
    limit_tries(state, client).await
}

/// Checks `code` against the one stored for `holder`, within the limits per code and per
/// address (`guesses` names whose wrong codes make the waits: `a<address digest>`, for a phone
/// being proven too), and consumes it: returns what it carried (a registration's phone number).
/// 401 `invalid_code` unless it is the code stored; 429 `too_many_attempts` while a wait lasts.
pub(crate) async fn redeem(
    state: &AppState,
    client: &Client,
    holder: &Holder,
    guesses: &str,
    code: &str,
) -> Result<Vec<u8>, ApiError> {
    let id = holder.id();
    let keys = [
        state.keys.code(&id),
        state.keys.sign_in_guesses(guesses),
        state.keys.code_tries(&id),
    ];
    let settings = &state.settings;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut conn = state.redis.clone();
    let (admitted, tries_or_wait, stored): (i64, i64, Vec<u8>) = ATTEMPT
        .key(&keys)
        .arg(u64::try_from(now_ms).unwrap_or(u64::MAX))
        .arg(client.counted_as())
        .arg(settings.sign_in_max_attempts)
        .arg(millis(settings.sign_in_delay_base))
        .arg(millis(settings.sign_in_delay_max))
        .arg(settings.sign_in_guess_window.as_secs().max(1))
        .arg(settings.sign_in_code_ttl.as_secs().max(1))
        .invoke_async(&mut conn)
        .await?;
    if admitted == 0 {
        metrics::sign_in("delayed");
        return Err(ApiError::TooMany {
            code: "too_many_attempts",
            message: "too many wrong codes for this address just now; retry after the number of seconds in Retry-After",
            retry_after_secs: u64::try_from(tries_or_wait).unwrap_or(1).div_ceil(1000),
        });
    }
    let (hash, carried) = sign_in::split(&stored);
    if !settings.sign_in_code_key.matches(holder, code, hash) {
        if tries_or_wait == i64::from(settings.sign_in_max_attempts) {
            let _: i64 = KILL
                .key(&keys[0])
                .arg(&stored)
                .invoke_async(&mut conn)
                .await?;
        }
        metrics::sign_in("wrong_code");
        return Err(wrong_code());
    }
    let carried = carried.to_vec();
    let consumed: i64 = CONSUME
        .key(&keys)
        .arg(stored)
        .invoke_async(&mut conn)
        .await?;
    if consumed != 1 {
        metrics::sign_in("wrong_code");
        return Err(wrong_code());
    }
    Ok(carried)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
