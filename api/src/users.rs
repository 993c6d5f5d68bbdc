//! Accounts: registration, which proves the email address before the account exists, and the
//! phone number, which stays a claim until a code texted to it proves it.
//!
//! `POST /users/register` answers 202 whether or not the address has an account, and mails a
//! code (queued after the answer, as sign-in's are); the code, at `POST /sessions/verify`, makes
//! the account with its email proven, or signs in to the account the address has. Nobody can
//! therefore register someone else's address, nor learn from registering whether it shops here.
//! `POST /users/me/phone` texts a code to a number the account claims, and
//! `POST /users/me/phone/verify` proves it: only a proven number signs in, and proving one drops
//! every other account's claim of it (numbers are recycled: the newest proof wins).
//!
//! These are the handlers; the account as stored, and its statements, are in [`crate::accounts`];
//! sending and checking codes in [`crate::sign_in`].

use crate::{
    accounts::{self, User},
    client::Client,
    error::{ApiError, ErrorBody},
    extract::Json,
    sessions::CurrentUser,
    sign_in::{
        address::{self, Address, CodeSent, Requested},
        code,
    },
    state::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Router,
};
use serde::Deserialize;
use shop_domain::{Email, PhoneNumber};
use shop_infra::{
    notifications::{self, NewNotification},
    sign_in::Holder,
};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/register", post(register))
        .route("/users/me", get(me))
        .route("/users/me/phone", post(claim_phone))
        .route("/users/me/phone/verify", post(verify_phone))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Contact {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
    /// E.164: `+`, a country code and the number, digits only.
    /// Spaces, dashes, dots and parentheses are ignored: `+1 (415) 555-0100` is `+14155550100`.
    /// The account claims it unproven: it signs in once a code texted to it is entered.
    #[schema(example = "+4915112345678", pattern = r"^\+[1-9][0-9]{7,14}$")]
    phone_number: String,
}

impl Contact {
    fn parse(&self) -> Result<(Email, PhoneNumber), ApiError> {
        Ok((
            Email::parse(&self.email)?,
            PhoneNumber::parse(&self.phone_number)?,
        ))
    }
}

/// `POST /users/register`: mails a code to the email address; the code, at
/// `POST /sessions/verify`, makes the account. The same 202 whether or not the address (or the
/// phone number) has an account: an address that has one gets a code that signs in to it.
#[utoipa::path(post, path = "/users/register", tag = "users", request_body = Contact, responses(
    (status = 202, description = "A code is on its way to the email address (the same answer whether or not it has an account): enter it at `POST /sessions/verify` with the email. A newer registration of the address replaces the code and the phone number", body = CodeSent),
    (status = 422, description = "`invalid_email` or `invalid_phone_number`", body = ErrorBody),
    (status = 429, description = "`too_many_code_requests`: this address was sent as many codes (sign-in and registration together) as it may be in a short window, or this client asked for as many as it may; retry after `Retry-After`", body = ErrorBody),
))]
pub(crate) async fn register(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<Contact>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let (email, phone) = body.parse()?;
    address::limit_sends(&state, &Address::Email(email.clone()), &client).await?;
    let answer = CodeSent::accepted(&state);
    address::queue_after_answer(state, Requested::Registration { email, phone });
    Ok(answer)
}

/// `GET /users/me`: the signed-in account, with what it proved.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("session" = [])), responses(
    (status = 200, description = "The account", body = User),
    crate::error::responses::NoSession,
))]
pub(crate) async fn me(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<User>, ApiError> {
    Ok(Json(accounts::by_id(&state, user.id).await?))
}

/// A phone number to claim and prove.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PhoneClaim {
    /// E.164, as at registration. Omitted: a new code for the number the account claims. Another
    /// number replaces the claim at once (a proven number included): it signs in once proven.
    #[schema(example = "+4915112345678", pattern = r"^\+[1-9][0-9]{7,14}$")]
    phone_number: Option<String>,
}

/// `POST /users/me/phone`: texts a code to the number the account claims (or claims `phone_number`
/// first). The account's email must be proven: a session on an account nobody proved (a squatter's,
/// made before registration asked for proof) cannot add a way in.
#[utoipa::path(post, path = "/users/me/phone", tag = "users", security(("session" = [])), request_body = PhoneClaim, responses(
    (status = 202, description = "A code is on its way to the number by text message: enter it at `POST /users/me/phone/verify`", body = CodeSent),
    crate::error::responses::NoSession,
    (status = 403, description = "`email_unverified`: prove the email first (sign in with a code mailed to it)", body = ErrorBody),
    (status = 422, description = "`invalid_phone_number`, or `phone_number_required` when the account claims none and the body names none", body = ErrorBody),
    (status = 429, description = "`too_many_code_requests`: this number was sent as many codes as it may be in a short window, or this client asked for as many as it may; retry after `Retry-After`", body = ErrorBody),
))]
pub(crate) async fn claim_phone(
    State(state): State<AppState>,
    client: Client,
    user: CurrentUser,
    Json(body): Json<PhoneClaim>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let named = body
        .phone_number
        .as_deref()
        .map(PhoneNumber::parse)
        .transpose()?;
    let account = accounts::by_id(&state, user.id).await?;
    if !account.email_verified {
        return Err(email_unverified());
    }
    let claimed = account
        .phone_number
        .as_deref()
        .map(PhoneNumber::parse)
        .transpose()?;
    let Some(number) = named.or(claimed) else {
        return Err(phone_number_required());
    };
    address::limit_sends(&state, &Address::Phone(number.clone()), &client).await?;
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE users SET phone_number = $2, phone_verified_at = NULL
         WHERE id = $1 AND phone_number IS DISTINCT FROM $2",
    )
    .bind(account.id)
    .bind(number.as_str())
    .execute(&mut *tx)
    .await?;
    notifications::enqueue(&mut tx, &[NewNotification::phone_code(account.id, &number)]).await?;
    tx.commit().await?;
    crate::metrics::sign_in("phone_code_queued");
    Ok(CodeSent::accepted(&state))
}

fn email_unverified() -> ApiError {
    ApiError::client(
        StatusCode::FORBIDDEN,
        "email_unverified",
        "prove the account's email first: sign in with a code mailed to it",
    )
}

fn phone_number_required() -> ApiError {
    ApiError::unprocessable(
        "phone_number_required",
        "the account claims no phone number: send `phone_number`",
    )
}

/// The code texted to a claimed number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PhoneCode {
    /// The six digits from the text message.
    #[schema(example = "042117", pattern = r"^[0-9]{6}$")]
    code: String,
}

/// `POST /users/me/phone/verify`: proves the number the account claims with the code texted to
/// it. The number then signs in, and no other account claims it any more.
#[utoipa::path(post, path = "/users/me/phone/verify", tag = "users", security(("session" = [])), request_body = PhoneCode, responses(
    (status = 200, description = "Proven: the account, with `phone_verified`", body = User),
    (status = 401, description = "`invalid_code`: wrong, used, expired, killed by too many wrong tries, or sent to a number the account no longer claims (ask for a new one); or no valid session token", body = ErrorBody),
    (status = 403, description = "`email_unverified`: prove the email first", body = ErrorBody),
    (status = 422, description = "`invalid_code_format`, or `phone_number_required` when the account claims no number", body = ErrorBody),
    (status = 429, description = "`too_many_attempts`: after wrong codes, no try until `Retry-After`, or this client tried too many codes in a short window", body = ErrorBody),
))]
pub(crate) async fn verify_phone(
    State(state): State<AppState>,
    client: Client,
    user: CurrentUser,
    Json(body): Json<PhoneCode>,
) -> Result<Json<User>, ApiError> {
    code::admit(&state, &client, &body.code).await?;
    let account = accounts::by_id(&state, user.id).await?;
    if !account.email_verified {
        return Err(email_unverified());
    }
    let Some(number) = account.phone_number else {
        return Err(phone_number_required());
    };
    let holder = Holder::Phone {
        user: account.id,
        number: number.clone(),
    };
    // Wrong codes count against the number, as sign-in's by it do: counted per account, every
    // account a stranger holds (or one that proves a number of its own, which clears its
    // count) would get fresh guesses at someone else's number.
    code::redeem(
        &state,
        &client,
        &holder,
        &format!("a{}", shop_infra::sign_in::phone_digest(&number)),
        &body.code,
    )
    .await?;
    let proven = accounts::take_phone(&state, account.id, &number)
        .await?
        .ok_or_else(code::wrong_code)?;
    crate::metrics::sign_in("phone_verified");
    Ok(Json(proven))
}
