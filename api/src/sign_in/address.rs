//! Where a code goes and who may ask for one: the address a code is sent to (an email or a
//! proven phone number), the send limits per address and per client, and queueing the code after
//! the answer (so its timing tells nothing of whether an account exists).

use crate::{
    accounts::{User, USER_COLUMNS},
    client::Client,
    error::ApiError,
    extract::Json,
    limits::{self, Budget},
    metrics,
    state::AppState,
};
use axum::http::StatusCode;
use serde::Serialize;
use shop_domain::{Email, PhoneNumber};
use shop_infra::{
    notifications::{self, Channel, NewNotification},
    sign_in,
};
use std::time::Duration;
use utoipa::ToSchema;

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
    pub(crate) fn parse(email: Option<&str>, phone: Option<&str>) -> Result<Self, ApiError> {
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
    pub(crate) fn digest(&self) -> String {
        match self {
            Self::Email(email) => sign_in::email_digest(email.as_str()),
            Self::Phone(phone) => sign_in::phone_digest(phone.as_str()),
        }
    }

    /// The active account that signs in with this address: the one with this email, or the one
    /// that proved this phone number (an unproven claim signs nobody in).
    pub(crate) async fn active_user(&self, state: &AppState) -> Result<Option<User>, ApiError> {
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
