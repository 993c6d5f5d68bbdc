//! Accounts as stored (`users`): the account a handler shows, and the statements that sign in
//! to one, make one from a registration's code, and prove its phone number. The HTTP handlers
//! are in [`crate::users`] and [`crate::sign_in`].

use crate::{client::Client, error::ApiError, extract::Json, sessions, state::AppState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shop_domain::{Email, PhoneNumber, UserId};
use utoipa::ToSchema;

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
pub(crate) async fn by_id(state: &AppState, user: UserId) -> Result<User, ApiError> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(user.get())
        .fetch_optional(&state.db)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// Proves `number` on account `user` and drops every other account's claim of it, proven or
/// not, in one transaction; one at a time per number (an advisory lock), so two accounts proving
/// it at once end with one of them holding it. `None`, changing nothing, if the account no
/// longer claims the number.
pub(crate) async fn take_phone(
    state: &AppState,
    user: i64,
    number: &str,
) -> Result<Option<User>, ApiError> {
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
