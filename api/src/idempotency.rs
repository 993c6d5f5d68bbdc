//! The `Idempotency-Key` header, for every endpoint that takes one (checkout and restock): reading
//! it, and the two ways a repeated key gets the first request's outcome.
//! - A restock's id is derived from the key ([`derived_id`]): the product's lane applies an id
//!   once, and a repeat asks for that id's result.
//! - A checkout claims the key before it decides ([`claim`], `checkout_keys`): a repeat gets the
//!   order the key placed, the refusal it ended with, or 409 while it is still being decided;
//!   the claiming request records its outcome ([`settle`]).

use crate::{error::ApiError, state::AppState};
use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use shop_domain::{IdempotencyKey, OrderId, UserId};
use shop_infra::orders::place::{self, KeyedOrder};
use std::fmt::Display;
use uuid::Uuid;

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters
/// ([`IdempotencyKey`]), else 400 `invalid_idempotency_key`.
pub fn key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = IdempotencyKey::parse(value.as_bytes())
        .map_err(|error| ApiError::bad_request("invalid_idempotency_key", error.to_string()))?;
    Ok(Some(key))
}

/// The id of what `owner` asks for `subject` under `scope`: the same for every request that
/// repeats `key`, a fresh one without a key.
pub fn derived_id(
    scope: &str,
    owner: UserId,
    subject: impl Display,
    key: Option<&IdempotencyKey>,
) -> Uuid {
    let Some(key) = key else {
        return Uuid::now_v7();
    };
    let digest = Sha256::digest(format!("{scope}\n{owner}\n{subject}\n{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Who answers for a checkout's Idempotency-Key.
pub enum Claim {
    /// This request claimed the key: it decides, and a refusal it ends with is recorded.
    Mine,
    /// A request with the key placed this order.
    Placed(KeyedOrder),
    /// A request with the key was refused: the same answer again.
    Refused(ApiError),
    /// A request with the key is still being decided.
    InProgress,
}

/// Claims `key` of `user` for the order `id` before anything is answered. A claim left
/// undecided by a request that can no longer be alive (older than the request timeout) is taken
/// over.
pub async fn claim(
    state: &AppState,
    user: UserId,
    key: &IdempotencyKey,
    id: OrderId,
) -> Result<Claim, ApiError> {
    let stale_after = state.settings.request_timeout + std::time::Duration::from_secs(5);
    if place::claim_key(&state.db, user, key.as_str(), id, stale_after).await? {
        return Ok(Claim::Mine);
    }
    if let Some(placed) = place::with_key(&state.db, user, key.as_str()).await? {
        return Ok(Claim::Placed(placed));
    }
    let refusal = place::refusal(&state.db, user, key.as_str()).await?;
    let replayed = refusal.and_then(|(status, body)| {
        let status = StatusCode::from_u16(u16::try_from(status?).ok()?).ok()?;
        let body = serde_json::from_str(&body?).ok()?;
        Some(ApiError::Replayed { status, body })
    });
    Ok(replayed.map_or(Claim::InProgress, Claim::Refused))
}

/// The order `user` placed with `key`, if any.
pub async fn placed(
    state: &AppState,
    user: UserId,
    key: &str,
) -> Result<Option<KeyedOrder>, ApiError> {
    Ok(place::with_key(&state.db, user, key).await?)
}

/// After the claiming request for `key` failed: a refusal ("no order") is recorded, to be
/// answered again to every retry; after a server error the claim is let go, so a retry decides
/// afresh. Best effort: a claim left behind is taken over once stale.
pub async fn settle(
    state: &AppState,
    user: UserId,
    key: &IdempotencyKey,
    id: OrderId,
    error: &ApiError,
) {
    let key = key.as_str();
    let settled = match error.client_answer() {
        Some((status, body)) => {
            let status = i16::try_from(status.as_u16()).unwrap_or(i16::MAX);
            place::record_refusal(&state.db, user, key, id, status, &body.to_string()).await
        }
        None => place::release_key(&state.db, user, key, id).await,
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "cannot settle an idempotency key claim; it is taken over once stale");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert_eq, proptest};

    proptest! {
        #[test]
        fn idempotency_keys_are_1_to_255_visible_ascii_characters(raw in "[ -~\t]{0,300}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = raw.parse() {
                headers.insert("idempotency-key", value);
                let accepted = key(&headers);
                let valid = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
                prop_assert_eq!(accepted.ok().flatten().is_some(), valid);
            }
        }
    }

    #[test]
    fn a_key_names_one_id_per_owner_and_subject() -> Result<(), Box<dyn std::error::Error>> {
        let (seller, product) = (UserId::new(1)?, 7);
        let k1 = IdempotencyKey::parse(b"k-1")?;
        let k2 = IdempotencyKey::parse(b"k-2")?;
        let id = derived_id("restock", seller, product, Some(&k1));
        assert_eq!(id, derived_id("restock", seller, product, Some(&k1)));
        assert_ne!(id, derived_id("restock", seller, product, Some(&k2)));
        assert_ne!(
            id,
            derived_id("restock", UserId::new(2)?, product, Some(&k1))
        );
        assert_ne!(id, derived_id("restock", seller, 8, Some(&k1)));
        assert_ne!(
            derived_id("restock", seller, product, None),
            derived_id("restock", seller, product, None)
        );
        Ok(())
    }
}
