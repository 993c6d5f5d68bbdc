//! A PENDING order's place in line, kept in Redis so that reading it costs no PostgreSQL query:
//! how many inventory commands stand before the order's reserves in their lanes, and each line's
//! product stock as its lane last published it (the hot inventory, [`Keys::stock`]).
//!
//! Two hashes, both written best effort (not waited for; a failure is logged and counted in
//! `shop_client_errors_total`, and fails nothing):
//! - [`Keys::order_lanes`]: once the broker has acknowledged an order's reserves, the relay
//!   records, per partition, the lowest offset they were written at ([`Places::lines_relayed`]);
//! - [`Keys::lane_progress`]: the lane that owns a partition records the next offset it reads
//!   when it claims the partition and after each batch it commits ([`Places::lane_moved`]).
//!
//! Their script keeps the lowest offset and the furthest progress, so writes that arrive out of
//! order (a reserve relayed twice, two owners around a take-over) never move a place back. Both
//! hashes expire a day after their last write; an order's offsets go sooner, when it is decided
//! (`crate::cache::announce_statuses`). Reading ([`Places::read`]) is two round trips: the
//! order's offsets with its products' stock, then the progress of those partitions.

use crate::cache::{Keys, Versioned};
use redis::{aio::ConnectionManager, RedisResult};
use shop_domain::OrderId;
use std::collections::HashMap;

/// How long both hashes live after their last write.
const KEPT_FOR_SECS: u64 = 86_400;

/// Sets field `ARGV[1]` of hash `KEYS[1]` to `ARGV[2]` unless it holds a value that `ARGV[3]`
/// (`lowest` or `highest`) prefers, then renews the hash's expiry (`ARGV[4]` seconds).
const KEEP: &str = r#"
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local offered = tonumber(ARGV[2])
if not current or (ARGV[3] == 'lowest' and offered < current)
    or (ARGV[3] == 'highest' and offered > current) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 0
"#;

/// Which value [`KEEP`] keeps.
#[derive(Debug, Clone, Copy)]
enum Keep {
    Lowest,
    Highest,
}

impl Keep {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lowest => "lowest",
            Self::Highest => "highest",
        }
    }
}

/// Where the broker wrote one reserve of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineOffset {
    pub order: OrderId,
    pub partition: i32,
    pub offset: i64,
}

/// A PENDING order's place in line, as its lanes last published it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// How many commands stand before the order's reserves in their lanes (for several lanes,
    /// the most); `None` until its reserves were relayed and their lanes published progress.
    pub ahead: Option<i64>,
    /// For each product asked about, in that order: its available stock as its lane last
    /// published it; `None` where the hot inventory has no entry.
    pub remaining: Vec<Option<i64>>,
}

/// How many commands stand before an order's reserves, from `(offset of its first reserve on a
/// partition, the next offset that partition's lane reads)` for each partition it has lines on:
/// the most over its partitions, 0 on a partition whose lane has reached its reserve. `None`
/// when the order has no recorded reserve or a lane's progress is unknown.
pub fn ahead(lanes: impl IntoIterator<Item = (i64, Option<i64>)>) -> Option<i64> {
    let mut most: Option<i64> = None;
    for (offset, next) in lanes {
        let before = offset.saturating_sub(next?).max(0);
        most = Some(most.map_or(before, |m| m.max(before)));
    }
    most
}

/// Reads and writes places in line (see the module's description).
#[derive(Clone)]
pub struct Places {
    redis: ConnectionManager,
    keys: Keys,
}

impl Places {
    pub fn new(redis: ConnectionManager, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// Records where the broker wrote orders' reserves: per order and partition, the lowest
    /// offset. Not waited for.
    pub fn lines_relayed(&self, lines: &[LineOffset]) {
        let mut lowest: HashMap<(OrderId, i32), i64> = HashMap::new();
        for line in lines {
            lowest
                .entry((line.order, line.partition))
                .and_modify(|o| *o = (*o).min(line.offset))
                .or_insert(line.offset);
        }
        if lowest.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for ((order, partition), offset) in lowest {
            keep(
                &mut pipe,
                &self.keys.order_lanes(order),
                partition,
                offset,
                Keep::Lowest,
            );
        }
        self.send("order_lanes", pipe);
    }

    /// Records that the lane of `partition` reads `next_offset` next. Not waited for.
    pub fn lane_moved(&self, partition: i32, next_offset: i64) {
        let mut pipe = redis::pipe();
        let key = self.keys.lane_progress();
        keep(&mut pipe, &key, partition, next_offset, Keep::Highest);
        self.send("lane_progress", pipe);
    }

    /// Sends `pipe` on a task of its own; a failure is logged and counted.
    fn send(&self, operation: &'static str, pipe: redis::Pipeline) {
        let mut conn = self.redis.clone();
        tokio::spawn(async move {
            if let Err(error) = pipe.query_async::<()>(&mut conn).await {
                crate::metrics::client_error("redis", operation);
                tracing::warn!(%error, operation, "a place in line was not recorded");
            }
        });
    }

    /// The place of `order`, whose lines are of `products`: one `HGETALL` of its offsets with
    /// one `MGET` of the products' stock, then one `HMGET` of its partitions' progress.
    pub async fn read(&self, order: OrderId, products: &[i64]) -> RedisResult<Place> {
        if products.is_empty() {
            return Ok(Place::default());
        }
        let mut conn = self.redis.clone();
        let stock_keys: Vec<String> = products.iter().map(|id| self.keys.stock(*id)).collect();
        let (lanes, stock): (HashMap<i32, i64>, Vec<Option<String>>) = redis::pipe()
            .cmd("HGETALL")
            .arg(self.keys.order_lanes(order))
            .cmd("MGET")
            .arg(&stock_keys)
            .query_async(&mut conn)
            .await?;
        let (partitions, offsets): (Vec<i32>, Vec<i64>) = lanes.into_iter().unzip();
        let progress: Vec<Option<i64>> = if partitions.is_empty() {
            Vec::new()
        } else {
            redis::cmd("HMGET")
                .arg(self.keys.lane_progress())
                .arg(&partitions)
                .query_async(&mut conn)
                .await?
        };
        let remaining = stock
            .iter()
            .map(|raw| {
                let entry = Versioned::parse(raw.as_deref()?)?;
                entry.value.parse().ok()
            })
            .collect();
        Ok(Place {
            ahead: ahead(offsets.into_iter().zip(progress)),
            remaining,
        })
    }
}

/// Adds a [`KEEP`] of `value` at field `partition` of hash `key` to `pipe`.
fn keep(pipe: &mut redis::Pipeline, key: &str, partition: i32, value: i64, which: Keep) {
    pipe.cmd("EVAL")
        .arg(KEEP)
        .arg(1)
        .arg(key)
        .arg(partition)
        .arg(value)
        .arg(which.as_str())
        .arg(KEPT_FOR_SECS)
        .ignore();
}

#[cfg(test)]
mod tests {
    use super::ahead;

    #[test]
    fn ahead_counts_the_commands_before_the_reserve() {
        assert_eq!(ahead([(120, Some(100))]), Some(20));
        assert_eq!(ahead([(100, Some(100))]), Some(0), "next in line");
    }

    #[test]
    fn a_lane_past_the_reserve_counts_nothing() {
        assert_eq!(ahead([(90, Some(100))]), Some(0));
    }

    #[test]
    fn several_lanes_count_the_longest_wait() {
        assert_eq!(
            ahead([(105, Some(100)), (40, Some(50)), (30, Some(18))]),
            Some(12)
        );
    }

    #[test]
    fn unknown_offsets_or_progress_give_no_answer() {
        assert_eq!(ahead([]), None, "nothing relayed yet");
        assert_eq!(ahead([(10, None)]), None, "no progress published");
        assert_eq!(ahead([(10, Some(5)), (3, None)]), None, "one lane unknown");
    }
}
