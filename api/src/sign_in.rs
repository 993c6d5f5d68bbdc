//! Sign-in by one-time code, the codes of registration and of phone numbers, and the shopper's
//! sessions.
//!
//! `POST /sessions` asks for a code by email or phone number and always answers 202, whether
//! an account has that address or not: the send limits are counted by address (so they say
//! nothing either), and the account is looked up and the code queued after the answer, in a task
//! of its own. Only a proven phone number signs in; an unproven one is answered as an unknown
//! address. `POST /users/register` (`users`) queues a registration code the same way. The
//! notifier makes each code, stores its keyed hash and sends it (`shop_infra::sign_in`).
//! `POST /sessions/verify` checks a sign-in code, or a registration's (which makes the account),
//! and `POST /users/me/phone/verify` a phone code, all within three limits, none of which a
//! stranger can use to keep the owner out for more than `SIGN_IN_DELAY_MAX_MS`:
//! - per client address: `SIGN_IN_VERIFIES_PER_IP` tries per window, for any accounts;
//! - per code: `SIGN_IN_MAX_ATTEMPTS` tries; a wrong one that uses the last kills the code, and
//!   the owner asks for a new one;
//! - per address tried (an email or a phone number, whether an account has it or not, answered
//!   alike; not per account, which would tell that an email and a phone belong together): from
//!   the `SIGN_IN_MAX_ATTEMPTS`th wrong code in the window on, each makes every next try wait, from
//!   `SIGN_IN_DELAY_BASE_MS` doubling up to `SIGN_IN_DELAY_MAX_MS`, whoever sends it. When
//!   the wait ends, a client address that typed fewer wrong codes goes first: each of its own
//!   adds a tenth of the base delay to its wait (at most the base delay), so a stranger
//!   hammering the address cannot take the turn of an owner who arrives when told to.
//!
//! Every try is counted before the code is compared, atomically, so concurrent guesses cannot
//! pass a limit; a right code is consumed in one step (used twice, it works once) and clears the
//! address's count.
//!
//! The first code that proves an account's email (accounts made before registration asked for
//! proof have proved nothing) ends every session issued before it and detaches the account's
//! unproven phone number: whoever registered someone else's address loses every way in.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Json, Path},
    limits::{self, Budget, Client},
    metrics,
    sessions::{self, CurrentUser, SessionInfo},
    startup::AppState,
    users::{self, session_for, SessionResponse, User, USER_COLUMNS},
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, post},
    Router,
};
use serde::{Deserialize, Serialize};
use shop_domain::{Email, PhoneNumber};
use shop_infra::{
    notifications::{self, Channel, NewNotification},
    sign_in::{self, Holder},
};
use std::{
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/sessions",
            post(request_code)
                .get(list_sessions)
                .delete(end_all_sessions),
        )
        .route("/sessions/verify", post(verify_code))
        .route("/sessions/current", delete(sign_out))
        .route("/sessions/{id}", delete(end_session))
}

/// Who asks: exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: Option<String>,
    /// E.164, as at registration. Only a proven number signs in (`POST /users/me/phone`); for
    /// another, nothing is sent, and the answer is the same.
    #[schema(example = "+4915112345678")]
    phone_number: Option<String>,
}

/// A code and the address it was sent to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeAnswer {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(example = "+4915112345678")]
    phone_number: Option<String>,
    /// The six digits from the message: a sign-in code, or a registration's (by `email`).
    #[schema(example = "042117", pattern = r"^[0-9]{6}$")]
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// How long a code works once it arrives.
    expires_in_secs: u64,
}

impl CodeSent {
    /// The answer of every request that sends a code: 202, and how long the code will work.
    pub(crate) fn accepted(state: &AppState) -> (StatusCode, Json<Self>) {
        let expires_in_secs = state.settings.sign_in_code_ttl.as_secs();
        (StatusCode::ACCEPTED, Json(Self { expires_in_secs }))
    }
}

/// An address a code is sent to.
pub(crate) enum Address {
    Email(Email),
    Phone(PhoneNumber),
}

impl Address {
    fn parse(email: Option<&str>, phone: Option<&str>) -> Result<Self, ApiError> {
        match (email, phone) {
            (Some(email), None) => Ok(Self::Email(Email::parse(email)?)),
            (None, Some(phone)) => Ok(Self::Phone(PhoneNumber::parse(phone)?)),
            _ => Err(ApiError::unprocessable(
                "one_address_required",
                "send either `email` or `phone_number`, not both",
            )),
        }
    }

    fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Phone(_) => Channel::Sms,
        }
    }

    /// A digest of the normalised address: names its counters (and a registration's code)
    /// without putting it in Redis.
    fn digest(&self) -> String {
        match self {
            Self::Email(email) => sign_in::email_digest(email.as_str()),
            Self::Phone(phone) => sign_in::phone_digest(phone.as_str()),
        }
    }

    /// The active account that signs in with this address: the one with this email, or the one
    /// that proved this phone number (an unproven claim signs nobody in).
    async fn active_user(&self, state: &AppState) -> Result<Option<User>, ApiError> {
        let (condition, value) = match self {
            Self::Email(email) => ("email = $1", email.as_str()),
            Self::Phone(phone) => (
                "phone_number = $1 AND phone_verified_at IS NOT NULL",
                phone.as_str(),
            ),
        };
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {condition} AND status = 'active'"
        ))
        .bind(value)
        .fetch_optional(&state.db)
        .await?)
    }
}

/// Takes a code request (a sign-in's, a registration's or a phone's) from the address's and the
/// client's budgets; 429 past either (a refused request spends neither).
pub(crate) async fn limit_sends(
    state: &AppState,
    address: &Address,
    client: &Client,
) -> Result<(), ApiError> {
    let settings = &state.settings;
    let (digest, ip) = (address.digest(), client.counted_as());
    let budgets = [
        Budget {
            scope: "sign-in-address",
            id: digest.as_bytes(),
            limit: settings.sign_in_sends_per_account,
            window: settings.sign_in_send_window,
        },
        Budget {
            scope: "sign-in-ip",
            id: ip.as_bytes(),
            limit: settings.sign_in_sends_per_ip,
            window: settings.sign_in_send_ip_window,
        },
    ];
    if let Some(retry_after_secs) = limits::take(state, &budgets).await? {
        metrics::sign_in("send_limited");
        return Err(ApiError::TooMany {
            code: "too_many_code_requests",
            message: "too many codes asked for; retry after the number of seconds in Retry-After",
            retry_after_secs,
        });
    }
    Ok(())
}

/// `POST /sessions`: sends a sign-in code to the account with this email address (by mail) or
/// proven phone number (by text message). The same 202 whether or not such an account exists.
#[utoipa::path(post, path = "/sessions", tag = "users", request_body = CodeRequest, responses(
    (status = 202, description = "If an active account has this email address, or has proven this phone number, a code is on its way (the same answer either way)", body = CodeSent),
    (status = 422, description = "`invalid_email`, `invalid_phone_number` or `one_address_required`", body = ErrorBody),
    (status = 429, description = "`too_many_code_requests`: this address was sent as many codes as it may be in a short window (a minute by default), or this client asked for as many as it may (5 in 15 minutes); retry after `Retry-After`", body = ErrorBody),
))]
pub(crate) async fn request_code(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<CodeRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let address = Address::parse(body.email.as_deref(), body.phone_number.as_deref())?;
    limit_sends(&state, &address, &client).await?;
    let answer = CodeSent::accepted(&state);
    // After the answer: its timing must not tell whether the account exists.
    queue_after_answer(state, Requested::SignIn(address));
    Ok(answer)
}

/// A code asked for, queued after the answer.
pub(crate) enum Requested {
    /// A sign-in code for the active account at this address, if there is one.
    SignIn(Address),
    /// A registration's code, mailed to `email` whether or not it has an account (the notifier
    /// decides what the code does); the account it makes will claim `phone`.
    Registration { email: Email, phone: PhoneNumber },
}

impl Requested {
    /// Queues its message; false when there is none to send (no active account at a sign-in's
    /// address).
    async fn queue(&self, state: &AppState) -> Result<bool, ApiError> {
        let row = match self {
            Self::SignIn(address) => {
                let Some(user) = address.active_user(state).await? else {
                    return Ok(false);
                };
                NewNotification::sign_in_code(user.id, address.channel())
            }
            Self::Registration { email, phone } => NewNotification::registration_code(email, phone),
        };
        let mut conn = state.db.acquire().await?;
        notifications::enqueue(&mut conn, &[row]).await?;
        Ok(true)
    }

    /// The `shop_api_sign_in_total` outcome of queueing it.
    fn outcome(&self, queued: bool) -> &'static str {
        match (self, queued) {
            (Self::Registration { .. }, _) => "registration_queued",
            (Self::SignIn(_), true) => "code_queued",
            (Self::SignIn(_), false) => "code_unknown_address",
        }
    }
}

/// Queues `requested` in a task of its own, so the answer is sent first.
pub(crate) fn queue_after_answer(state: AppState, requested: Requested) {
    tokio::spawn(async move { queue_until_done(&state, &requested).await });
}

/// How long an accepted request keeps trying to queue its code through failures (a PostgreSQL
/// restart or failover); past that, the shopper is better served by asking again.
const QUEUE_FOR: Duration = Duration::from_secs(30);
/// The longest wait between two tries.
const QUEUE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// [`Requested::queue`], tried again with a doubling wait until it succeeds or [`QUEUE_FOR`]
/// passes.
async fn queue_until_done(state: &AppState, requested: &Requested) {
    let deadline = tokio::time::Instant::now() + QUEUE_FOR;
    let mut wait = Duration::from_millis(100);
    loop {
        match requested.queue(state).await {
            Ok(queued) => return metrics::sign_in(requested.outcome(queued)),
            Err(error) if tokio::time::Instant::now() + wait < deadline => {
                metrics::sign_in("code_retry");
                tracing::warn!(%error, retry_in_ms = wait.as_millis(), "cannot queue a code yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(QUEUE_BACKOFF_MAX);
            }
            Err(error) => {
                metrics::sign_in("code_error");
                return tracing::error!(%error, "gave up queueing a code");
            }
        }
    }
}

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

/// `POST /sessions/verify`: a session for whoever has the code sent to this address. A
/// registration's code (by `email`, when no account has it) makes the account first.
#[utoipa::path(post, path = "/sessions/verify", tag = "users", request_body = CodeAnswer, responses(
    (status = 201, description = "Signed in; with a registration's code, to the account it made (or, if the address has one already, to that account)", body = SessionResponse),
    (status = 401, description = "`invalid_code`: wrong, used, expired, killed by too many wrong tries (ask for a new one), or no such account", body = ErrorBody),
    (status = 422, description = "`invalid_code_format`, `invalid_email`, `invalid_phone_number` or `one_address_required`", body = ErrorBody),
    (status = 429, description = "`too_many_attempts`: after wrong codes the address takes no try until `Retry-After` (at most `SIGN_IN_DELAY_MAX_MS`, two minutes by default, plus up to `SIGN_IN_DELAY_BASE_MS` for a client that typed wrong codes itself), or this client tried too many codes in a short window; the code sent stays valid", body = ErrorBody),
))]
pub(crate) async fn verify_code(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<CodeAnswer>,
) -> Result<(StatusCode, Json<SessionResponse>), ApiError> {
    let address = Address::parse(body.email.as_deref(), body.phone_number.as_deref())?;
    admit(&state, &client, &body.code).await?;
    let user = address.active_user(&state).await?;
    // Wrong codes count against the address tried, account or not: counted per account, the
    // email and the phone of one account would share a wait, and a stranger could learn that
    // they belong together.
    let guesses = format!("a{}", address.digest());
    let holder = match (&user, &address) {
        (Some(user), Address::Email(_)) => Holder::Account(user.id),
        (Some(user), Address::Phone(_)) => Holder::AccountByText(user.id),
        // No account has the email: a registration's code makes one.
        (None, Address::Email(_)) => Holder::Registration(address.digest()),
        // No account proved the number: the try counts all the same, against a code that never
        // exists (no account has id 0).
        (None, Address::Phone(_)) => Holder::Account(0),
    };
    let carried = redeem(&state, &client, &holder, &guesses, &body.code).await?;
    let (user, outcome) = match (user, &address) {
        (Some(user), _) => (users::signed_in(&state, user).await?, "verified"),
        (None, Address::Email(email)) => {
            let Some(user) = users::create_proven(&state, email, &carried).await? else {
                // The address has a suspended account: no session, answered as a wrong code.
                metrics::sign_in("wrong_code");
                return Err(wrong_code());
            };
            (user, "registered")
        }
        (None, Address::Phone(_)) => return Err(wrong_code()),
    };
    metrics::sign_in(outcome);
    Ok((
        StatusCode::CREATED,
        session_for(&state, user, &client).await?,
    ))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `GET /sessions`: the shopper's live sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "users", security(("session" = [])), responses(
    (status = 200, description = "The live sessions", body = [SessionInfo]),
    (status = 401, description = "No valid session token", body = ErrorBody),
))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    Ok(Json(sessions::list(&state, user.id, &user.session).await?))
}

/// `DELETE /sessions`: ends every session of the shopper, this one included ("sign out
/// everywhere"), in one step: a session signed in at the same moment is either ended or made
/// after it (and listed, so a later sign-out ends it).
#[utoipa::path(delete, path = "/sessions", tag = "users", security(("session" = [])), responses(
    (status = 204, description = "Every session ended, at once: a sign-in at the same moment is ended too or comes after"),
    (status = 401, description = "No valid session token", body = ErrorBody),
))]
pub(crate) async fn end_all_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    sessions::revoke_all(&state, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /sessions/{id}`: ends one of the shopper's sessions.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "users", security(("session" = [])),
    params(("id" = String, Path, description = "A session id from `GET /sessions`")),
    responses(
    (status = 204, description = "Ended"),
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 404, description = "The shopper has no such session", body = ErrorBody),
))]
pub(crate) async fn end_session(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let known = id.len() <= 16 && sessions::revoke(&state, user.id, &id).await?;
    if known {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("session"))
    }
}

/// `DELETE /sessions/current`: ends the session of the token presented.
#[utoipa::path(delete, path = "/sessions/current", tag = "users", security(("session" = [])), responses(
    (status = 204, description = "Signed out; the token no longer works"),
    (status = 401, description = "No valid session token", body = ErrorBody),
))]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    sessions::revoke(&state, user.id, &user.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_address_is_taken() {
        assert!(Address::parse(Some("a@example.com"), None).is_ok());
        assert!(Address::parse(None, Some("+4915112345678")).is_ok());
        assert!(Address::parse(None, None).is_err());
        assert!(Address::parse(Some("a@example.com"), Some("+4915112345678")).is_err());
    }

    #[test]
    fn addresses_are_counted_normalised_and_by_kind() -> Result<(), ApiError> {
        let lower = Address::parse(Some("a@example.com"), None)?.digest();
        let upper = Address::parse(Some("A@Example.com"), None)?.digest();
        assert_eq!(lower, upper);
        assert_ne!(
            lower,
            Address::parse(None, Some("+4915112345678"))?.digest()
        );
        Ok(())
    }
}
