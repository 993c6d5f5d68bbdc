//! Redis: key layout and the versioned cache-aside primitive.
//!
//! Every key starts with the configured prefix. Cached entities are stored as
//! `"<version>|<json>"` and written only through [`Cache::put_if_newer`], a script that refuses to
//! replace a newer version with an older one. A reader that fetched a row just before a writer
//! committed therefore cannot overwrite the writer's fresh entry with its stale one.

use redis::{aio::ConnectionManager, Script};
use std::{sync::Arc, time::Duration};

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

    /// `<prefix>product:<id>`: a cached product.
    pub fn product(&self, id: i64) -> String {
        format!("{}product:{id}", self.prefix)
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
    put_if_newer: Arc<Script>,
    ttl_secs: u64,
}

impl Cache {
    pub fn new(redis: ConnectionManager, ttl: Duration) -> Self {
        Self {
            redis,
            put_if_newer: Arc::new(Script::new(PUT_IF_NEWER)),
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    /// The cached JSON of an entity, without its version prefix.
    pub async fn get(&self, key: &str) -> redis::RedisResult<Option<String>> {
        let mut conn = self.redis.clone();
        let raw: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
        Ok(raw.and_then(|v| v.split_once('|').map(|(_, json)| json.to_owned())))
    }

    /// Stores `json` at `version` unless a version at least as new is already cached.
    pub async fn put_if_newer(
        &self,
        key: &str,
        version: i64,
        json: &str,
    ) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        let _stored: i64 = self
            .put_if_newer
            .key(key)
            .arg(version)
            .arg(json)
            .arg(self.ttl_secs)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
