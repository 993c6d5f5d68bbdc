//! Registration: an account works at once, signed in (sign-in later is by code: `sign_in`).

use crate::{
    error::{ApiError, ErrorBody},
    extract::Json,
    limits::Client,
    sessions,
    startup::AppState,
};
use axum::{extract::State, http::StatusCode, routing::post, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_domain::{Email, PhoneNumber, UserId};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/users/register", post(register))
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

pub(crate) const USER_COLUMNS: &str = "id, email, phone_number, status, created_at, last_login_at";

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

/// Opens a session for `user` from `client`: the answer of registration and of sign-in.
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

/// `POST /users/register`: 201 with the new user and a session token; 409 if the email or
/// phone number belongs to an account already.
#[utoipa::path(post, path = "/users/register", tag = "users", request_body = Contact, responses(
    (status = 201, description = "Registered and signed in", body = SessionResponse),
    (status = 409, description = "`email_taken` or `phone_number_taken`", body = ErrorBody),
    (status = 422, description = "`invalid_email` or `invalid_phone_number`", body = ErrorBody),
))]
pub(crate) async fn register(
    State(state): State<AppState>,
    client: Client,
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
    Ok((
        StatusCode::CREATED,
        session_for(&state, user, &client).await?,
    ))
}
