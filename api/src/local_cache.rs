//! A short-lived copy of product answers in this process, in front of Redis: a hit costs no
//! round trip. Entries live at most the configured TTL (`PRODUCT_LOCAL_CACHE_MS`), so a change
//! made elsewhere (stock decided by the checkout worker, a write on another replica) shows within
//! that time; a write on this replica replaces its entry at once. A TTL of zero turns it off.

use axum::body::Bytes;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

const SHARDS: usize = 16;

pub struct LocalCache {
    shards: Vec<Mutex<HashMap<i64, (Instant, Bytes)>>>,
    ttl: Duration,
    per_shard: usize,
}

impl LocalCache {
    /// Holds up to about `capacity` products for `ttl` each.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            ttl,
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, id: i64) -> &Mutex<HashMap<i64, (Instant, Bytes)>> {
        &self.shards[id.rem_euclid(SHARDS as i64) as usize]
    }

    pub fn get(&self, id: i64) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let shard = self.shard(id).lock().ok()?;
        let (stored, json) = shard.get(&id)?;
        (stored.elapsed() < self.ttl).then(|| json.clone())
    }

    pub fn put(&self, id: i64, json: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut shard) = self.shard(id).lock() else {
            return;
        };
        if shard.len() >= self.per_shard {
            let ttl = self.ttl;
            shard.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(id, (Instant::now(), json));
    }

    pub fn remove(&self, id: i64) {
        if let Ok(mut shard) = self.shard(id).lock() {
            shard.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_writes_replace_them() {
        let cache = LocalCache::new(Duration::from_millis(50), 100);
        cache.put(1, Bytes::from_static(b"a"));
        assert_eq!(cache.get(1).as_deref(), Some(&b"a"[..]));
        cache.put(1, Bytes::from_static(b"b"));
        assert_eq!(cache.get(1).as_deref(), Some(&b"b"[..]));
        cache.remove(1);
        assert_eq!(cache.get(1), None);
        cache.put(2, Bytes::from_static(b"c"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(2), None, "expired");
    }

    #[test]
    fn a_full_shard_makes_room_and_a_zero_ttl_caches_nothing() {
        let cache = LocalCache::new(Duration::from_secs(60), SHARDS);
        for id in (0..10).map(|i| i * SHARDS as i64) {
            cache.put(id, Bytes::from_static(b"x"));
        }
        assert_eq!(cache.get(9 * SHARDS as i64).as_deref(), Some(&b"x"[..]));
        assert!(cache.shards[0].lock().expect("shard").len() <= 1);
        let off = LocalCache::new(Duration::ZERO, 100);
        off.put(1, Bytes::from_static(b"a"));
        assert_eq!(off.get(1), None);
    }
}
