//! Sign-in by one-time code, and the shopper's sessions.
//!
//! `POST /sessions` asks for a code by email or phone number and always answers 202, whether
//! an account has that address or not: the send limits are counted by address (so they say
//! nothing either), and the account is looked up and the code queued after the answer, in a task
//! of its own. The notifier makes the code, stores its keyed hash and sends it
//! (`shop_infra::sign_in`). `POST /sessions/verify` checks it: every try counts against the
//! account (or, for an address no account has, against the address) before the code is compared,
//! so concurrent guesses cannot pass `SIGN_IN_MAX_ATTEMPTS`; the last allowed wrong try kills the
//! code, and later tries get 429 until the window ends. A right code is consumed atomically:
//! used twice, it works once.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Json, Path},
    limits::{self, Client},
    metrics,
    sessions::{self, CurrentUser, SessionInfo},
    startup::AppState,
    users::{session_for, SessionResponse, User, USER_COLUMNS},
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, post},
    Router,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shop_domain::{Email, PhoneNumber};
use shop_infra::{
    notifications::{self, Channel, NewNotification},
    sign_in,
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
    /// E.164, as at registration.
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
    /// The six digits from the message.
    #[schema(example = "042117", pattern = r"^[0-9]{6}$")]
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// How long a code works once it arrives.
    expires_in_secs: u64,
}

enum Address {
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

    /// A digest of the normalised address: names its counters without putting it in Redis.
    fn digest(&self) -> String {
        let text = match self {
            Self::Email(email) => format!("email:{}", email.as_str()),
            Self::Phone(phone) => format!("phone:{}", phone.as_str()),
        };
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    async fn active_user(&self, state: &AppState) -> Result<Option<User>, ApiError> {
        let (column, value) = match self {
            Self::Email(email) => ("email", email.as_str()),
            Self::Phone(phone) => ("phone_number", phone.as_str()),
        };
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {column} = $1 AND status = 'active'"
        ))
        .bind(value)
        .fetch_optional(&state.db)
        .await?)
    }
}

/// Counts a code request against the address's and the client's limits; 429 past either.
async fn limit_sends(state: &AppState, address: &Address, client: &Client) -> Result<(), ApiError> {
    let settings = &state.settings;
    let window = settings.sign_in_send_window.as_secs().max(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (index, left) = (now / window, window - now % window);
    let ip = client
        .address
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let counted: Vec<_> = [
        (
            state
                .keys
                .rate("sign-in-address", index, address.digest().as_bytes()),
            settings.sign_in_sends_per_account,
        ),
        (
            state.keys.rate("sign-in-ip", index, ip.as_bytes()),
            settings.sign_in_sends_per_ip,
        ),
    ]
    .into_iter()
    .filter(|(_, limit)| *limit > 0)
    .collect();
    if !counted.is_empty() && limits::count(state, &counted, window).await? {
        metrics::sign_in("send_limited");
        return Err(ApiError::TooMany {
            code: "too_many_code_requests",
            message: "too many codes asked for; retry after the number of seconds in Retry-After",
            retry_after_secs: left,
        });
    }
    Ok(())
}

/// `POST /sessions`: sends a sign-in code to the account with this email address (by mail) or
/// phone number (by text message). The same 202 whether or not such an account exists.
#[utoipa::path(post, path = "/sessions", tag = "users", request_body = CodeRequest, responses(
    (status = 202, description = "If an active account has this address, a code is on its way", body = CodeSent),
    (status = 422, description = "`invalid_email`, `invalid_phone_number` or `one_address_required`", body = ErrorBody),
    (status = 429, description = "`too_many_code_requests`, with `Retry-After`", body = ErrorBody),
))]
pub(crate) async fn request_code(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<CodeRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let address = Address::parse(body.email.as_deref(), body.phone_number.as_deref())?;
    limit_sends(&state, &address, &client).await?;
    let expires_in_secs = state.settings.sign_in_code_ttl.as_secs();
    // After the answer: its timing must not tell whether the account exists.
    tokio::spawn(async move { queue_code_until_done(&state, &address).await });
    Ok((StatusCode::ACCEPTED, Json(CodeSent { expires_in_secs })))
}

/// How long an accepted request keeps trying to queue its code through failures (a PostgreSQL
/// restart or failover); past that, the shopper is better served by asking again.
const QUEUE_FOR: Duration = Duration::from_secs(30);
/// The longest wait between two tries.
const QUEUE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// [`queue_code`], tried again with a doubling wait until it succeeds or [`QUEUE_FOR`] passes.
async fn queue_code_until_done(state: &AppState, address: &Address) {
    let deadline = tokio::time::Instant::now() + QUEUE_FOR;
    let mut wait = Duration::from_millis(100);
    loop {
        match queue_code(state, address).await {
            Ok(true) => return metrics::sign_in("code_queued"),
            Ok(false) => return metrics::sign_in("code_unknown_address"),
            Err(error) if tokio::time::Instant::now() + wait < deadline => {
                metrics::sign_in("code_retry");
                tracing::warn!(%error, retry_in_ms = wait.as_millis(), "cannot queue a sign-in code yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(QUEUE_BACKOFF_MAX);
            }
            Err(error) => {
                metrics::sign_in("code_error");
                return tracing::error!(%error, "gave up queueing a sign-in code");
            }
        }
    }
}

/// Queues a code for the active account at `address`, if there is one.
async fn queue_code(state: &AppState, address: &Address) -> Result<bool, ApiError> {
    let Some(user) = address.active_user(state).await? else {
        return Ok(false);
    };
    let mut conn = state.db.acquire().await?;
    notifications::enqueue(
        &mut conn,
        &[NewNotification::sign_in_code(user.id, address.channel())],
    )
    .await?;
    Ok(true)
}

/// Counts a try and reads the stored code's hash: `{tries so far, seconds left in the window,
/// hash or ""}`; tries past the limit kill the code.
static ATTEMPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
local ttl = redis.call('TTL', KEYS[2])
if n > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return {n, ttl, ''}
end
return {n, ttl, redis.call('GET', KEYS[1]) or ''}
",
    )
});

/// Consumes the code if it is still the one compared: 1 for the one caller that did.
static CONSUME: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
",
    )
});

fn wrong_code() -> ApiError {
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        "invalid_code",
        "the code is wrong, used or expired; ask for a new one",
    )
}

/// `POST /sessions/verify`: a session for whoever has the code sent to this address.
#[utoipa::path(post, path = "/sessions/verify", tag = "users", request_body = CodeAnswer, responses(
    (status = 201, description = "Signed in", body = SessionResponse),
    (status = 401, description = "`invalid_code`: wrong, used, expired, or no such account", body = ErrorBody),
    (status = 422, description = "`invalid_code_format`, `invalid_email`, `invalid_phone_number` or `one_address_required`", body = ErrorBody),
    (status = 429, description = "`too_many_attempts`: the code is dead; retry after `Retry-After`", body = ErrorBody),
))]
pub(crate) async fn verify_code(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<CodeAnswer>,
) -> Result<(StatusCode, Json<SessionResponse>), ApiError> {
    let address = Address::parse(body.email.as_deref(), body.phone_number.as_deref())?;
    if !sign_in::well_formed(&body.code) {
        return Err(ApiError::unprocessable(
            "invalid_code_format",
            format!("a code is {} digits", sign_in::CODE_DIGITS),
        ));
    }
    let user = address.active_user(&state).await?;
    let (code_key, failures_key) = match &user {
        Some(user) => (
            state.keys.sign_in_code(user.id),
            state.keys.sign_in_failures(&format!("u{}", user.id)),
        ),
        // No account: count the tries all the same, against a code that never exists.
        None => (
            state.keys.sign_in_code(0),
            state
                .keys
                .sign_in_failures(&format!("a{}", address.digest())),
        ),
    };
    let settings = &state.settings;
    let mut conn = state.redis.clone();
    let (tries, left, stored): (u64, i64, Vec<u8>) = ATTEMPT
        .key(&code_key)
        .key(&failures_key)
        .arg(settings.sign_in_max_attempts)
        .arg(settings.sign_in_lockout.as_secs().max(1))
        .invoke_async(&mut conn)
        .await?;
    if tries > u64::from(settings.sign_in_max_attempts) {
        metrics::sign_in("locked_out");
        return Err(ApiError::TooMany {
            code: "too_many_attempts",
            message: "too many wrong codes: this code no longer works; ask for a new one after the number of seconds in Retry-After",
            retry_after_secs: u64::try_from(left).unwrap_or(1),
        });
    }
    let user = match user {
        Some(user)
            if settings
                .sign_in_code_key
                .matches(user.id, &body.code, &stored) =>
        {
            user
        }
        _ => {
            if tries == u64::from(settings.sign_in_max_attempts) {
                let _: i64 = redis::cmd("DEL")
                    .arg(&code_key)
                    .query_async(&mut conn)
                    .await?;
            }
            metrics::sign_in("wrong_code");
            return Err(wrong_code());
        }
    };
    let consumed: i64 = CONSUME
        .key(&code_key)
        .key(&failures_key)
        .arg(stored)
        .invoke_async(&mut conn)
        .await?;
    if consumed != 1 {
        metrics::sign_in("wrong_code");
        return Err(wrong_code());
    }
    let user: User = sqlx::query_as(&format!(
        "UPDATE users SET last_login_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(user.id)
    .fetch_one(&state.db)
    .await?;
    metrics::sign_in("verified");
    Ok((
        StatusCode::CREATED,
        session_for(&state, user, &client).await?,
    ))
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
/// everywhere").
#[utoipa::path(delete, path = "/sessions", tag = "users", security(("session" = [])), responses(
    (status = 204, description = "Every session ended"),
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
