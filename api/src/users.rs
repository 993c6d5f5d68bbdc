//! Registration and passwordless sessions.

use crate::{
    error::{ApiError, ErrorBody},
    extract::Json,
    sessions::{self, CurrentUser},
    startup::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, post},
    Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_domain::{Email, PhoneNumber, UserId};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/register", post(register))
        .route("/sessions", post(sign_in))
        .route("/sessions/current", delete(sign_out))
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub phone_number: String,
    /// `active` or `blocked`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

const USER_COLUMNS: &str = "id, email, phone_number, status, created_at, last_login_at";

#[derive(Debug, Deserialize, ToSchema)]
pub struct Contact {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
    /// E.164: `+`, a country code and the number, digits only.
    /// Spaces, dashes, dots and parentheses are ignored: `+1 (415) 555-0100` is `+14155550100`.
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

async fn session_for(state: &AppState, user: User) -> Result<Json<SessionResponse>, ApiError> {
    let session_token = sessions::issue(state, UserId::new(user.id)?).await?;
    Ok(Json(SessionResponse {
        user,
        session_token,
    }))
}

/// `POST /users/register`: 201 with the new user and a session token; 409 if the email or
/// phone number belongs to an account already.
#[utoipa::path(post, path = "/users/register", tag = "users", request_body = Contact, responses(
    (status = 201, description = "Registered and signed in", body = SessionResponse),
    (status = 409, description = "`email_taken` or `phone_number_taken`", body = ErrorBody),
    (status = 422, description = "`invalid_email` or `invalid_phone_number`", body = ErrorBody),
))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Json(body): Json<Contact>,
) -> Result<(StatusCode, Json<SessionResponse>), ApiError> {
    let (email, phone) = body.parse()?;
    let user: User = sqlx::query_as(&format!(
        "INSERT INTO users (email, phone_number, last_login_at) VALUES ($1, $2, now())
         RETURNING {USER_COLUMNS}"
    ))
    .bind(email.as_str())
    .bind(phone.as_str())
    .fetch_one(&state.db)
    .await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((StatusCode::CREATED, session_for(&state, user).await?))
}

/// `POST /sessions`: a new session for the account with this email *and* phone number.
#[utoipa::path(post, path = "/sessions", tag = "users", request_body = Contact, responses(
    (status = 201, description = "Signed in", body = SessionResponse),
    (status = 401, description = "`unknown_account`: no active account has both", body = ErrorBody),
))]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    Json(body): Json<Contact>,
) -> Result<(StatusCode, Json<SessionResponse>), ApiError> {
    let (email, phone) = body.parse()?;
    let user: Option<User> = sqlx::query_as(&format!(
        "UPDATE users SET last_login_at = now()
         WHERE email = $1 AND phone_number = $2 AND status = 'active'
         RETURNING {USER_COLUMNS}"
    ))
    .bind(email.as_str())
    .bind(phone.as_str())
    .fetch_optional(&state.db)
    .await?;
    let user = user.ok_or_else(|| {
        ApiError::client(
            StatusCode::UNAUTHORIZED,
            "unknown_account",
            "no active account has this email and phone number",
        )
    })?;
    Ok((StatusCode::CREATED, session_for(&state, user).await?))
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
    sessions::revoke(&state, &user.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
