//! Sign-in by one-time code, the codes of registration and of phone numbers, and the shopper's
//! sessions: the `/sessions` routes. Where codes go and the send limits are in [`address`],
//! checking a code in [`code`], listing and ending sessions in [`manage`].
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

pub(crate) mod address;
pub(crate) mod code;
pub(crate) mod manage;

use crate::{
    accounts::{self, session_for, SessionResponse},
    client::Client,
    error::{ApiError, ErrorBody},
    extract::Json,
    metrics,
    sign_in::address::{Address, CodeSent, Requested},
    state::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, post},
    Router,
};
use serde::Deserialize;
use shop_infra::sign_in::Holder;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/sessions",
            post(request_code)
                .get(manage::list_sessions)
                .delete(manage::end_all_sessions),
        )
        .route("/sessions/verify", post(verify_code))
        .route("/sessions/current", delete(manage::sign_out))
        .route("/sessions/{id}", delete(manage::end_session))
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
    address::limit_sends(&state, &address, &client).await?;
    let answer = CodeSent::accepted(&state);
    // After the answer: its timing must not tell whether the account exists.
    address::queue_after_answer(state, Requested::SignIn(address));
    Ok(answer)
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
    code::admit(&state, &client, &body.code).await?;
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
    let carried = code::redeem(&state, &client, &holder, &guesses, &body.code).await?;
    let (user, outcome) = match (user, &address) {
        (Some(user), _) => (accounts::signed_in(&state, user).await?, "verified"),
        (None, Address::Email(email)) => {
            let Some(user) = accounts::create_proven(&state, email, &carried).await? else {
                // The address has a suspended account: no session, answered as a wrong code.
                metrics::sign_in("wrong_code");
                return Err(code::wrong_code());
            };
            (user, "registered")
        }
        (None, Address::Phone(_)) => return Err(code::wrong_code()),
    };
    metrics::sign_in(outcome);
    Ok((
        StatusCode::CREATED,
        session_for(&state, user, &client).await?,
    ))
}
