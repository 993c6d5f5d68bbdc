//! Redis: key layout and the versioned cache-aside primitive.
//!
//! Every key starts with the configured prefix. Cached entities are stored as
//! `"<version>|<json>"` and written only through [`Cache::put_many_if_newer`], a script that refuses to
//! replace a newer version with an older one. A reader that fetched a row just before a writer
//! committed therefore cannot overwrite the writer's fresh entry with its stale one.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use shop_domain::OrderId;
use std::{sync::Arc, time::Duration};

/// A multiplexed, self-reconnecting Redis connection. Fails fast when Redis is absent at start
/// (a supervisor restarts the process); reconnects after that happen lazily, on the next command.
pub async fn connect_redis(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_factor(100)
        .set_max_delay(500)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2));
    redis::Client::open(url)?
        .get_connection_manager_with_config(config)
        .await
}

#[derive(Clone)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `<prefix>s:<sha256 of token>`: the raw 32-byte digest, to keep 10 M sessions small.
    pub fn session(&self, token_digest: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 2 + token_digest.len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(b"s:");
        key.extend_from_slice(token_digest);
        key
    }

    /// `<prefix>us:<user id>`: a hash of the user's sessions, for listing and ending them:
    /// `m:<session id>` their JSON description, `t:<session id>` when each was last used.
    pub fn user_sessions(&self, user: i64) -> String {
        format!("{}{user}", self.user_sessions_prefix())
    }

    /// What [`Keys::user_sessions`] puts before the user id.
    pub fn user_sessions_prefix(&self) -> String {
        format!("{}us:", self.prefix)
    }

    /// `<prefix>code:<holder>`: the keyed hash of a holder's current one-time code, then what the
    /// code carries (`shop_infra::sign_in`). The holder is a user id (sign-in), `r<digest of the
    /// email address>` (a registration) or `p<user id>` (proving a phone number).
    pub fn code(&self, holder: &str) -> String {
        format!("{}code:{holder}", self.prefix)
    }

    /// `<prefix>code-tries:<holder>`: tries of the holder's current code; storing a new code
    /// deletes it.
    pub fn code_tries(&self, holder: &str) -> String {
        format!("{}code-tries:{holder}", self.prefix)
    }

    /// `<prefix>guesses:<id>`: a hash of the wrong codes of one account (`u<user id>`; for an
    /// address no account has, registrations included, `a<digest of the address>`; for the codes
    /// proving an account's phone number, `p<user id>`): `w` how many in the window, `until` the
    /// unix millisecond before which no try is taken, `s:<client address>` how many came from
    /// that address. It expires a window after the last try; a right code deletes it.
    pub fn sign_in_guesses(&self, id: &str) -> String {
        format!("{}guesses:{id}", self.prefix)
    }

    /// `<prefix>rl:<scope>:<window>:<id>`: requests counted in one rate-limit window for one
    /// client address or session digest.
    pub fn rate(&self, scope: &str, window: u64, id: &[u8]) -> Vec<u8> {
        let mut key = format!("{}rl:{scope}:{window}:", self.prefix).into_bytes();
        key.extend_from_slice(id);
        key
    }

    /// `<prefix>product:<id>`: a cached product (`version|json`).
    pub fn product(&self, id: i64) -> String {
        format!("{}product:{id}", self.prefix)
    }

    /// `<prefix>stock:<id>`: hot inventory, the product's available quantity (`version|quantity`),
    /// written by the checkout worker after each batch and by the API on restocks.
    pub fn stock(&self, id: i64) -> String {
        format!("{}stock:{id}", self.prefix)
    }

    /// `<prefix>lock:<id>`: the product's lock under the `redis-lock` checkout strategy.
    pub fn product_lock(&self, id: i64) -> String {
        format!("{}lock:{id}", self.prefix)
    }

    /// `<prefix>order-lanes:<order id>`: a hash of where a PENDING order's reserves wait, field
    /// the inventory partition (decimal), value the lowest Kafka offset of the order's reserves
    /// on it; written by the relay once the broker acknowledged them, deleted when the order is
    /// decided ([`announce_statuses`]), else expires a day after the last write (`crate::place`).
    pub fn order_lanes(&self, order: OrderId) -> String {
        format!("{}order-lanes:{order}", self.prefix)
    }

    /// `<prefix>lane-progress`: a hash of how far each inventory lane has come, field the
    /// partition (decimal), value the next offset it reads (the last one committed + 1); written
    /// by the lane that owns the partition when it claims it and after each batch, expires a day
    /// after the last write (`crate::place`).
    pub fn lane_progress(&self) -> String {
        format!("{}lane-progress", self.prefix)
    }

    /// `<prefix>order-status`: the pub/sub channel on which order status changes are announced.
    pub fn order_status_channel(&self) -> String {
        format!("{}order-status", self.prefix)
    }
}

/// Announces order status changes on [`Keys::order_status_channel`], in one round trip, so every
/// API replica can push them to the clients watching those orders, and drops the place in line
/// ([`Keys::order_lanes`]) of each order decided: only a PENDING order has one. Best effort for
/// the caller: watchers also re-read PostgreSQL, and a place left behind expires on its own.
pub async fn announce_statuses(
    redis: &ConnectionManager,
    keys: &Keys,
    updates: &[shop_domain::messages::OrderStatusChanged],
) -> redis::RedisResult<()> {
    let channel = keys.order_status_channel();
    let mut pipe = redis::pipe();
    for update in updates {
        if update.status.is_decided() {
            pipe.cmd("DEL")
                .arg(keys.order_lanes(update.order_id))
                .ignore();
        }
        match serde_json::to_string(update) {
            Ok(json) => {
                pipe.cmd("PUBLISH").arg(&channel).arg(json).ignore();
            }
            Err(error) => tracing::warn!(%error, "cannot encode a status announcement"),
        }
    }
    pipe.query_async(&mut redis.clone()).await
}

/// A cached value with the version it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub version: i64,
    pub value: String,
}

impl Versioned {
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let (version, value) = raw.split_once('|')?;
        Some(Self {
            version: version.parse().ok()?,
            value: value.to_owned(),
        })
    }
}

const PUT_IF_NEWER: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local v = tonumber(string.match(current, '^(%d+)|'))
  if v and v >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1
"#;

#[derive(Clone)]
pub struct Cache {
    redis: ConnectionManager,
    ttl_secs: u64,
}

impl Cache {
    pub fn new(redis: ConnectionManager, ttl: Duration) -> Self {
        Self {
            redis,
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    /// Several cached values in one round trip; `None` where a key is absent or unreadable.
    pub async fn get_many(&self, keys: &[String]) -> redis::RedisResult<Vec<Option<Versioned>>> {
        let mut conn = self.redis.clone();
        let raw: Vec<Option<String>> = redis::cmd("MGET").arg(keys).query_async(&mut conn).await?;
        Ok(raw
            .into_iter()
            .map(|v| v.as_deref().and_then(Versioned::parse))
            .collect())
    }

    /// Stores each `(key, version, value)` unless a version at least as new is cached there
    /// already; pipelined in one round trip.
    pub async fn put_many_if_newer(
        &self,
        entries: &[(String, i64, String)],
    ) -> redis::RedisResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, version, value) in entries {
            pipe.cmd("EVAL")
                .arg(PUT_IF_NEWER)
                .arg(1)
                .arg(key)
                .arg(*version)
                .arg(value)
                .arg(self.ttl_secs)
                .ignore();
        }
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Writes products' stock to the hot inventory view from `(id, available, version)` rows.
    pub async fn put_stock(&self, keys: &Keys, rows: &[(i64, i32, i64)]) -> redis::RedisResult<()> {
        let entries: Vec<_> = rows
            .iter()
            .map(|(id, available, version)| (keys.stock(*id), *version, available.to_string()))
            .collect();
        self.put_many_if_newer(&entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_values_parse_strictly() {
        assert_eq!(
            Versioned::parse("7|{\"a\":1}"),
            Some(Versioned {
                version: 7,
                value: "{\"a\":1}".into()
            })
        );
        assert_eq!(Versioned::parse("x|1"), None);
        assert_eq!(Versioned::parse("17"), None);
    }

    #[test]
    fn keys_carry_the_prefix() {
        let keys = Keys::new("t1:");
        assert_eq!(keys.product(5), "t1:product:5");
        assert_eq!(keys.stock(5), "t1:stock:5");
        assert_eq!(keys.lane_progress(), "t1:lane-progress");
        assert!(keys.session(&[1, 2]).starts_with(b"t1:s:"));
    }
}
