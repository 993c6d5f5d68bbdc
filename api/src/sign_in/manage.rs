//! The shopper's sessions: listing them and ending one, all, or the current one.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Json, Path},
    sessions::{self, CurrentUser, SessionInfo},
    state::AppState,
};
use axum::{extract::State, http::StatusCode};

/// `GET /sessions`: the shopper's live sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "users", security(("session" = [])), responses(
    (status = 200, description = "The live sessions", body = [SessionInfo]),
    crate::error::responses::NoSession,
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
    crate::error::responses::NoSession,
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
    crate::error::responses::NoSession,
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
    crate::error::responses::NoSession,
))]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    sessions::revoke(&state, user.id, &user.session).await?;
    Ok(StatusCode::NO_CONTENT)
}
