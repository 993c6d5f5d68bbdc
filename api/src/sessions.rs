//! Passwordless sessions: a random 256-bit bearer token, stored in Redis only as its SHA-256
//! digest, with a sliding TTL renewed by every authenticated request.

use crate::{error::ApiError, startup::AppState};
use axum::{
    extract::FromRequestParts,
    http::{request::Parts, HeaderMap},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use shop_domain::UserId;

const TOKEN_BYTES: usize = 32;
/// Length of a token in its base64url form.
const TOKEN_CHARS: usize = 43;

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Creates a session for `user` and returns its token. Only the digest is stored.
pub async fn issue(state: &AppState, user: UserId) -> Result<String, ApiError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let mut conn = state.redis.clone();
    let () = redis::cmd("SET")
        .arg(state.keys.session(&digest(&token)))
        .arg(user.get())
        .arg("EX")
        .arg(state.settings.session_ttl.as_secs().max(1))
        .query_async(&mut conn)
        .await?;
    Ok(token)
}

/// Ends the session of `token`, if it exists.
pub async fn revoke(state: &AppState, token: &str) -> Result<(), ApiError> {
    let mut conn = state.redis.clone();
    let _removed: i64 = redis::cmd("DEL")
        .arg(state.keys.session(&digest(token)))
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// The user a token belongs to, renewing its TTL; `None` when the token is unknown or expired.
async fn resolve(state: &AppState, token: &str) -> Result<Option<UserId>, ApiError> {
    let mut conn = state.redis.clone();
    let user: Option<i64> = redis::cmd("GETEX")
        .arg(state.keys.session(&digest(token)))
        .arg("EX")
        .arg(state.settings.session_ttl.as_secs().max(1))
        .query_async(&mut conn)
        .await?;
    Ok(user.and_then(|id| UserId::new(id).ok()))
}

/// The bearer token of a request, if it has the shape of one of ours.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(token)
}

/// The authenticated user of a request. Extracting it answers 401 when the token is missing,
/// malformed, unknown or expired.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: UserId,
    pub token: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let id = resolve(state, token).await?.ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            id,
            token: token.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_with(auth: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = auth {
            headers.insert("authorization", value.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn accepts_only_well_formed_bearer_tokens() {
        let token = "A".repeat(TOKEN_CHARS);
        assert_eq!(
            bearer(&headers_with(Some(&format!("Bearer {token}")))),
            Some(token.as_str())
        );
        assert_eq!(
            bearer(&headers_with(Some(&format!("bearer {token}")))),
            Some(token.as_str())
        );
        assert_eq!(bearer(&headers_with(None)), None);
        assert_eq!(bearer(&headers_with(Some(&format!("Basic {token}")))), None);
        assert_eq!(bearer(&headers_with(Some("Bearer short"))), None);
        assert_eq!(
            bearer(&headers_with(Some(&format!("Bearer {}!", &token[1..])))),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn only_43_url_safe_characters_pass_as_a_token(value in "(Bearer |bearer |Basic )?[A-Za-z0-9_=!. -]{0,60}") {
            let headers = headers_with(Some(&value));
            if let Some(token) = bearer(&headers) {
                proptest::prop_assert_eq!(token.len(), TOKEN_CHARS);
                proptest::prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                proptest::prop_assert!(value.to_ascii_lowercase().starts_with("bearer "));
            }
        }
    }

    #[test]
    fn digests_differ_per_token() {
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("a"), digest("a"));
    }
}
