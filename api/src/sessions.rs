//! Sessions: a random 256-bit bearer token, stored in Redis only as its SHA-256 digest, with a
//! sliding TTL renewed by every authenticated request.
//!
//! `<prefix>s:<digest>` holds `"<user id>|<session id>"`; the session id is the base64url of the
//! digest's first 9 bytes, safe to show. Each user's sessions are also listed in the hash
//! [`Keys::user_sessions`]: `m:<session id>` a JSON [`Stored`] description, `t:<session id>` the
//! unix second it was last used. Entries whose session expired are dropped when the list is read.

use crate::{client::Client, error::ApiError, state::AppState};
use axum::{
    extract::FromRequestParts,
    http::{request::Parts, HeaderMap},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shop_domain::UserId;
use std::collections::HashMap;
use utoipa::ToSchema;

const TOKEN_BYTES: usize = 32;
/// Length of a token in its base64url form.
const TOKEN_CHARS: usize = 43;

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn session_id(digest: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(&digest[..9])
}

/// What the user's session list keeps of a session.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    created_at: DateTime<Utc>,
    /// The session key's digest, base64url: what ending the session deletes.
    digest: String,
    address: Option<String>,
    user_agent: Option<String>,
}

/// One of the user's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Pass to `DELETE /sessions/{id}`.
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The client address it was created from.
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// True for the session of the token presented.
    pub current: bool,
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

/// Creates a session for `user` from `client` and returns its token. Only the digest is stored.
pub async fn issue(state: &AppState, user: UserId, client: &Client) -> Result<String, ApiError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let digest = digest(&token);
    let id = session_id(&digest);
    let stored = Stored {
        created_at: Utc::now(),
        digest: URL_SAFE_NO_PAD.encode(digest),
        address: client.address.map(|a| a.to_string()),
        user_agent: client.user_agent.clone(),
    };
    let ttl = state.settings.session_ttl.as_secs().max(1);
    let index = state.keys.user_sessions(user.get());
    let mut conn = state.redis.clone();
    let () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(state.keys.session(&digest))
        .arg(format!("{}|{id}", user.get()))
        .arg("EX")
        .arg(ttl)
        .ignore()
        .cmd("HSET")
        .arg(&index)
        .arg(format!("m:{id}"))
        .arg(serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.into()))?)
        .arg(format!("t:{id}"))
        .arg(now_secs())
        .ignore()
        .cmd("EXPIRE")
        .arg(&index)
        .arg(ttl)
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(token)
}

/// Ends the sessions with these ids of `user`; ids that are not the user's are skipped.
/// Returns how many existed.
async fn end(state: &AppState, user: UserId, ids: &[String]) -> Result<usize, ApiError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let index = state.keys.user_sessions(user.get());
    let mut conn = state.redis.clone();
    let fields: Vec<String> = ids.iter().map(|id| format!("m:{id}")).collect();
    let stored: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&index)
        .arg(&fields)
        .query_async(&mut conn)
        .await?;
    let mut pipe = redis::pipe();
    let mut ended = 0;
    for (id, stored) in ids.iter().zip(stored) {
        let Some(digest) = stored.as_deref().and_then(stored_digest) else {
            continue;
        };
        pipe.cmd("DEL").arg(state.keys.session(&digest)).ignore();
        pipe.cmd("HDEL")
            .arg(&index)
            .arg(format!("m:{id}"))
            .arg(format!("t:{id}"))
            .ignore();
        ended += 1;
    }
    let () = pipe.query_async(&mut conn).await?;
    Ok(ended)
}

/// Ends the session `id` of `user`; false if the user has no such session.
pub async fn revoke(state: &AppState, user: UserId, id: &str) -> Result<bool, ApiError> {
    Ok(end(state, user, &[id.to_owned()]).await? > 0)
}

/// Reads a user's session list (KEYS[1]) and deletes every session it names (each `m:` entry's
/// base64url `digest`, after the session key prefix ARGV[1]) and the list, in one step: a session
/// issued at the same time (written with its entry, atomically) is either in the list read, and
/// ended, or written after, into a new list. Returns how many sessions were live.
const REVOKE_ALL: &str = r"
local alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
local function decode(text)
  local bytes, bits, held = {}, 0, 0
  for i = 1, #text do
    local at = string.find(alphabet, string.sub(text, i, i), 1, true)
    if not at then return nil end
    bits = bits * 64 + at - 1
    held = held + 6
    if held >= 8 then
      held = held - 8
      local byte = math.floor(bits / 2 ^ held)
      bytes[#bytes + 1] = string.char(byte)
      bits = bits - byte * 2 ^ held
    end
  end
  return table.concat(bytes)
end
local fields = redis.call('HGETALL', KEYS[1])
local ended = 0
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'm:' then
    local ok, stored = pcall(cjson.decode, fields[i + 1])
    if ok and type(stored) == 'table' and type(stored.digest) == 'string' then
      local digest = decode(stored.digest)
      if digest then ended = ended + redis.call('DEL', ARGV[1] .. digest) end
    end
  end
end
redis.call('DEL', KEYS[1])
return ended
";

/// Ends every session of `user` ([`REVOKE_ALL`]): no sign-in can slip a session in between
/// reading the list and deleting it, where no later sign-out would find it.
pub async fn revoke_all(state: &AppState, user: UserId) -> Result<(), ApiError> {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(REVOKE_ALL));
    let _ended: i64 = SCRIPT
        .key(state.keys.user_sessions(user.get()))
        .arg(state.keys.session(&[]))
        .invoke_async(&mut state.redis.clone())
        .await?;
    Ok(())
}

/// The key of `user`'s session list and its entries.
async fn session_list(
    state: &AppState,
    user: UserId,
) -> Result<(String, HashMap<String, String>), ApiError> {
    let index = state.keys.user_sessions(user.get());
    let fields = redis::cmd("HGETALL")
        .arg(&index)
        .query_async(&mut state.redis.clone())
        .await?;
    Ok((index, fields))
}

/// The session key digest a list entry (`m:<id>`, JSON [`Stored`]) names.
fn stored_digest(stored: &str) -> Option<Vec<u8>> {
    let stored: Stored = serde_json::from_str(stored).ok()?;
    URL_SAFE_NO_PAD.decode(&stored.digest).ok()
}

/// The user's live sessions, newest first; `current` marks the session `current`.
pub async fn list(
    state: &AppState,
    user: UserId,
    current: &str,
) -> Result<Vec<SessionInfo>, ApiError> {
    let (index, fields) = session_list(state, user).await?;
    let mut conn = state.redis.clone();
    let mut candidates = Vec::new();
    for (field, value) in &fields {
        let Some(id) = field.strip_prefix("m:") else {
            continue;
        };
        if let Ok(stored) = serde_json::from_str::<Stored>(value) {
            if let Ok(digest) = URL_SAFE_NO_PAD.decode(&stored.digest) {
                candidates.push((id.to_owned(), stored, digest));
            }
        }
    }
    let mut pipe = redis::pipe();
    for (_, _, digest) in &candidates {
        pipe.cmd("EXISTS").arg(state.keys.session(digest));
    }
    let alive: Vec<bool> = pipe.query_async(&mut conn).await?;
    let mut sessions = Vec::new();
    let mut expired = redis::pipe();
    for ((id, stored, _), alive) in candidates.into_iter().zip(alive) {
        if !alive {
            expired
                .cmd("HDEL")
                .arg(&index)
                .arg(format!("m:{id}"))
                .arg(format!("t:{id}"))
                .ignore();
            continue;
        }
        let seen = fields
            .get(&format!("t:{id}"))
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .unwrap_or(stored.created_at);
        sessions.push(SessionInfo {
            current: id == current,
            id,
            created_at: stored.created_at,
            last_seen_at: seen,
            address: stored.address,
            user_agent: stored.user_agent,
        });
    }
    let () = expired.query_async(&mut conn).await?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(sessions)
}

/// Renews a session and records its use, in one round trip: returns `"<user id>|<session id>"`.
const RESOLVE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local sep = string.find(v, '|', 1, true)
if sep then
  local index = ARGV[3] .. string.sub(v, 1, sep - 1)
  redis.call('HSET', index, 't:' .. string.sub(v, sep + 1), ARGV[2])
  redis.call('EXPIRE', index, ARGV[1])
end
return v
";

/// The user and session id a token belongs to, renewing its TTL; `None` when the token is
/// unknown or expired.
async fn resolve(state: &AppState, token: &str) -> Result<Option<(UserId, String)>, ApiError> {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(RESOLVE));
    let mut conn = state.redis.clone();
    let value: Option<String> = SCRIPT
        .key(state.keys.session(&digest(token)))
        .arg(state.settings.session_ttl.as_secs().max(1))
        .arg(now_secs())
        .arg(state.keys.user_sessions_prefix())
        .invoke_async(&mut conn)
        .await?;
    Ok(value.and_then(|v| {
        // Sessions issued before sessions were listed hold the user id alone.
        let (user, session) = v.split_once('|').unwrap_or((v.as_str(), ""));
        Some((UserId::new(user.parse().ok()?).ok()?, session.to_owned()))
    }))
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
    /// The id of the session the request presented.
    pub session: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let (id, session) = resolve(state, token).await?.ok_or(ApiError::Unauthorized)?;
        Ok(Self { id, session })
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
