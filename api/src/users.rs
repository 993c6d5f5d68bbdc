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

use crate::{
    error::{ApiError, ErrorBody},
    extract::Json,
    limits::Client,
    sessions::{self, CurrentUser},
    sign_in::{self, Address, CodeSent, Requested},
    startup::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_domain::{Email, PhoneNumber, UserId};
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

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    /// The number the account claims, proven or not; null when it has none (a proof elsewhere,
    /// or the first proof of the email, detached it).
    #[schema(example = "+4915112345678")]
    pub phone_number: Option<String>,
    /// Whether a code mailed to the email address was entered. Accounts made before
    /// registration asked for proof have not, until their first sign-in by email.
    pub email_verified: bool,
    /// Whether a code texted to `phone_number` was entered: only then does it sign in.
    pub phone_verified: bool,
    /// `active` or `suspended`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

pub(crate) const USER_COLUMNS: &str = "id, email, phone_number, \
    email_verified_at IS NOT NULL AS email_verified, \
    phone_verified_at IS NOT NULL AS phone_verified, \
    status, created_at, last_login_at";

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

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    user: User,
    /// Send as `Authorization: Bearer <token>`. Shown once; the server keeps only its digest.
    session_token: String,
}

/// Opens a session for `user` from `client`: the answer of every code that signs in.
pub(crate) async fn session_for(
    state: &AppState,
    user: User,
    client: &Client,
) -> Result<Json<SessionResponse>, ApiError> {
    let session_token = sessions::issue(state, UserId::new(user.id)?, client).await?;
    Ok(Json(SessionResponse {
        user,
        session_token,
    }))
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
    sign_in::limit_sends(&state, &Address::Email(email.clone()), &client).await?;
    let answer = CodeSent::accepted(&state);
    sign_in::queue_after_answer(state, Requested::Registration { email, phone });
    Ok(answer)
}

/// Records that `user` signed in with a code. The first code that proves the account's email
/// (one made before registration asked for proof) also ends every session issued before it and
/// detaches the unproven phone number, in that order: whoever registered someone else's address
/// and held the account until now loses every way in.
pub(crate) async fn signed_in(state: &AppState, user: User) -> Result<User, ApiError> {
    if !user.email_verified {
        sessions::revoke_all(state, UserId::new(user.id)?).await?;
    }
    // SET reads the row as it was: a phone is proven only after the email (a constraint).
    let user: User = sqlx::query_as(&format!(
        "UPDATE users SET last_login_at = now(),
                email_verified_at = COALESCE(email_verified_at, now()),
                phone_number = CASE WHEN email_verified_at IS NULL AND phone_verified_at IS NULL
                                    THEN NULL ELSE phone_number END
         WHERE id = $1
         RETURNING {USER_COLUMNS}"
    ))
    .bind(user.id)
    .fetch_one(&state.db)
    .await?;
    Ok(user)
}

/// Makes the account a registration's code proved: its email proven, the phone number the code
/// carried claimed (unproven). `None` when the address has an account already (a suspended one:
/// an active one is signed in to instead).
pub(crate) async fn create_proven(
    state: &AppState,
    email: &Email,
    carried: &[u8],
) -> Result<Option<User>, ApiError> {
    let phone = std::str::from_utf8(carried)
        .ok()
        .and_then(|number| PhoneNumber::parse(number).ok());
    let user: Option<User> = sqlx::query_as(&format!(
        "INSERT INTO users (email, phone_number, email_verified_at, last_login_at)
         VALUES ($1, $2, now(), now())
         ON CONFLICT ON CONSTRAINT users_email_key DO NOTHING
         RETURNING {USER_COLUMNS}"
    ))
    .bind(email.as_str())
    .bind(phone.as_ref().map(PhoneNumber::as_str))
    .fetch_optional(&state.db)
    .await?;
    if let Some(user) = &user {
        tracing::info!(user_id = user.id, "user registered");
    }
    Ok(user)
}

/// The account of a session; 401 if it no longer exists.
async fn current(state: &AppState, user: &CurrentUser) -> Result<User, ApiError> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(user.id.get())
        .fetch_optional(&state.db)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// `GET /users/me`: the signed-in account, with what it proved.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("session" = [])), responses(
    (status = 200, description = "The account", body = User),
    (status = 401, description = "No valid session token", body = ErrorBody),
))]
pub(crate) async fn me(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<User>, ApiError> {
    Ok(Json(current(&state, &user).await?))
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
    (status = 401, description = "No valid session token", body = ErrorBody),
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
    let account = current(&state, &user).await?;
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
    sign_in::limit_sends(&state, &Address::Phone(number.clone()), &client).await?;
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
    sign_in::admit(&state, &client, &body.code).await?;
    let account = current(&state, &user).await?;
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
    sign_in::redeem(
        &state,
        &client,
        &holder,
        &format!("a{}", shop_infra::sign_in::phone_digest(&number)),
        &body.code,
    )
    .await?;
    let proven = take_phone(&state, account.id, &number)
        .await?
        .ok_or_else(sign_in::wrong_code)?;
    crate::metrics::sign_in("phone_verified");
    Ok(Json(proven))
}

/// Proves `number` on account `user` and drops every other account's claim of it, proven or
/// not, in one transaction; one at a time per number (an advisory lock), so two accounts proving
/// it at once end with one of them holding it. `None`, changing nothing, if the account no
/// longer claims the number.
async fn take_phone(state: &AppState, user: i64, number: &str) -> Result<Option<User>, ApiError> {
    let mut tx = state.db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(number)
        .execute(&mut *tx)
        .await?;
    let dropped = sqlx::query(
        "UPDATE users SET phone_number = NULL, phone_verified_at = NULL
         WHERE phone_number = $1 AND id <> $2",
    )
    .bind(number)
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let proven: Option<User> = sqlx::query_as(&format!(
        "UPDATE users SET phone_verified_at = now() WHERE id = $1 AND phone_number = $2
         RETURNING {USER_COLUMNS}"
    ))
    .bind(user)
    .bind(number)
    .fetch_optional(&mut *tx)
    .await?;
    if proven.is_some() {
        tx.commit().await?;
        tracing::info!(
            user_id = user,
            other_claims_dropped = dropped,
            "phone number proven"
        );
    }
    Ok(proven)
}
