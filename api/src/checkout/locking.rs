//! The synchronous strategies: the request itself takes the stock and answers 201 CONFIRMED,
//! or 409 with the short lines.
//!
//! One transaction writes the order (CONFIRMED) and its lines (refused with 409 `not_on_sale_yet`
//! by the statement that writes them, on PostgreSQL's clock, while a product's sale has not
//! started), the `OrderCreated` and `OrderConfirmed` events and the cart change, then takes the
//! stock, counts the shopper's units of products with a per-shopper limit (409 `limit_exceeded`
//! past it; the products' rows are locked by the stock update, as a lane holds them when it
//! counts) and writes the ledger's reserve entries, last, so product rows stay locked as briefly
//! as possible. How the stock is taken is what differs:
//! - `row-lock`: `SELECT … FOR NO KEY UPDATE` in product-id order, then an unconditional update
//!   (`FOR UPDATE` would also block the key-share locks that this same transaction's order
//!   lines take on their products, and two checkouts would deadlock);
//! - `optimistic`: a plain read of each product's version, then `UPDATE … WHERE version = $v`;
//!   when another checkout got there first the transaction is retried after a jittered backoff;
//! - `redis-lock`: a Redis lock per product, taken in id order before the transaction and
//!   released by its owner only; the update is still guarded (`available_quantity >= $q`), so a
//!   lock that expires mid-write cannot oversell.

use crate::{
    checkout::{
        order::{replay, Placed, TakeStock},
        stock::{self, short_lines, Guard, Read},
    },
    error::ApiError,
    state::AppState,
};
use rand::Rng;
use shop_domain::{
    messages::{CommandKind, OrderEvent, OrderStatus, ShortLine},
    ProductId, Quantity,
};
use shop_infra::{
    orders::ledger::{self, LedgerEntry},
    orders::place::{NewOrder, Written},
    orders::shoppers,
    outbox::{Columns, Outbox},
};
use sqlx::PgConnection;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use uuid::Uuid;

/// Attempts of an optimistic checkout before it answers 409 `contention`.
const MAX_ATTEMPTS: u32 = 8;
/// How long a `redis-lock` checkout waits for its locks before it answers 409 `contention`.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// A lock expires after this long even if its owner died holding it.
const LOCK_TTL: Duration = Duration::from_secs(5);

/// `optimistic`.
pub(crate) struct Optimistic;
/// `row-lock`.
pub(crate) struct RowLock;
/// `redis-lock`.
pub(crate) struct RedisLock;

impl TakeStock for Optimistic {
    async fn place(&self, state: &AppState, order: &NewOrder) -> Result<Placed, ApiError> {
        confirm(state, order, Read::Plain, Guard::Version).await
    }
}

impl TakeStock for RowLock {
    async fn place(&self, state: &AppState, order: &NewOrder) -> Result<Placed, ApiError> {
        confirm(state, order, Read::Locked, Guard::Available).await
    }
}

impl TakeStock for RedisLock {
    async fn place(&self, state: &AppState, order: &NewOrder) -> Result<Placed, ApiError> {
        let locks = ProductLocks::acquire(state, order).await?;
        let result = confirm(state, order, Read::Plain, Guard::Available).await;
        locks.release(state).await;
        result
    }
}

enum Attempt {
    Placed(Placed),
    /// A product changed between the read and the update: try again.
    Contended,
}

/// [`try_once`] until it places the order or fails, backing off after each contended attempt.
async fn confirm(
    state: &AppState,
    order: &NewOrder,
    read: Read,
    guard: Guard,
) -> Result<Placed, ApiError> {
    let writes = Writes::of(order)?;
    for attempt in 0..MAX_ATTEMPTS {
        match try_once(state, order, &writes, read, guard).await? {
            Attempt::Placed(placed) => return Ok(placed),
            Attempt::Contended => backoff(attempt).await,
        }
    }
    Err(contention())
}

/// What a confirmed order writes besides itself and the stock, prepared once for all attempts:
/// its `OrderCreated` and `OrderConfirmed` events and the ledger's reserve entries.
struct Writes {
    messages: Columns,
    ledger: Vec<LedgerEntry>,
}

impl Writes {
    fn of(order: &NewOrder) -> Result<Self, ApiError> {
        let mut messages = Outbox::default();
        messages.event(&order.created_event())?;
        messages.event(&OrderEvent::confirmed(
            order.id,
            order.user,
            chrono::Utc::now().timestamp_millis(),
        ))?;
        let ledger = order
            .lines
            .iter()
            .map(|l| LedgerEntry {
                order_id: order.id.as_uuid(),
                product_id: l.product.get(),
                kind: CommandKind::Reserve,
                quantity: i32::from(l.quantity),
                applied: true,
                counted: false,
            })
            .collect();
        Ok(Self {
            messages: messages.columns()?,
            ledger,
        })
    }

    /// The ledger's reserve entries, those of the `counted` products marked so.
    fn ledger(&self, counted: &[ProductId]) -> Vec<LedgerEntry> {
        let mut ledger = self.ledger.clone();
        for entry in &mut ledger {
            entry.counted = counted.iter().any(|p| p.get() == entry.product_id);
        }
        ledger
    }
}

fn contention() -> ApiError {
    ApiError::conflict(
        "contention",
        "too many checkouts are taking these products right now; try again",
    )
}

/// Sleeps a random time below 1, 2, 4, … 64 ms.
async fn backoff(attempt: u32) {
    let ceiling = 1u64 << attempt.min(6);
    let micros = rand::thread_rng().gen_range(0..ceiling * 1000);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

/// One transaction: the order CONFIRMED with its lines and events, then the stock and the
/// shopper's counts ([`take_stock`]), then the ledger; committed only if every product had the
/// units and the shopper was within every limit.
async fn try_once(
    state: &AppState,
    order: &NewOrder,
    writes: &Writes,
    read: Read,
    guard: Guard,
) -> Result<Attempt, ApiError> {
    let mut tx = state.db.begin().await?;
    let written = order
        .insert(&mut tx, OrderStatus::Confirmed, &writes.messages)
        .await?;
    if written != Written::Placed {
        tx.rollback().await?;
        return Ok(Attempt::Placed(replay(state, order, written).await?));
    }
    let (updated, counted) = match take_stock(&mut tx, order, read, guard).await {
        Ok(Some(taken)) => taken,
        Ok(None) => {
            tx.rollback().await?;
            return Ok(Attempt::Contended);
        }
        Err(refused @ (ApiError::OutOfStock(_) | ApiError::LimitExceeded(_))) => {
            tx.rollback().await?;
            return Err(refused);
        }
        Err(other) => return Err(other),
    };
    ledger::record_ledger(&mut tx, &writes.ledger(&counted)).await?;
    tx.commit().await?;
    if let Err(error) = state.cache.put_stock(&state.keys, &updated).await {
        tracing::warn!(%error, "hot inventory update failed");
    }
    tracing::info!(order_id = %order.id, lines = order.lines.len(), "checkout confirmed");
    Ok(Attempt::Placed(Placed::new(order, OrderStatus::Confirmed)))
}

/// Takes the order's stock, late in the transaction, then counts the shopper's units of the
/// products that have a per-shopper limit: the rows changed and the products counted, `None`
/// when another checkout got there first (the caller rolls back and tries again), 409
/// `out_of_stock` when a line is short, 409 `limit_exceeded` when one is over its limit. Lines
/// are sorted by product id, so row locks are taken in that order.
async fn take_stock(
    tx: &mut PgConnection,
    order: &NewOrder,
    read: Read,
    guard: Guard,
) -> Result<Option<(Vec<(i64, i32, i64)>, Vec<ProductId>)>, ApiError> {
    let ids: Vec<i64> = order.lines.iter().map(|l| l.product.get()).collect();
    let rows = stock::read(&mut *tx, &ids, read).await?;
    let available: HashMap<i64, i64> = rows
        .iter()
        .map(|r| (r.id, i64::from(r.available)))
        .collect();
    let short = short_lines(&order.lines, &available);
    if !short.is_empty() {
        return Err(ApiError::OutOfStock(short));
    }
    let versions: HashMap<i64, i64> = rows.iter().map(|r| (r.id, r.version)).collect();
    let quantities: Vec<i32> = order.lines.iter().map(|l| i32::from(l.quantity)).collect();
    let read_versions: Vec<i64> = ids
        .iter()
        .map(|id| versions.get(id).copied().unwrap_or(0))
        .collect();
    let updated = stock::take(&mut *tx, &ids, &quantities, &read_versions, guard).await;
    // Two updates that reach shared rows in different orders deadlock; PostgreSQL aborts one of
    // them, which is contention like any other: roll back and try again.
    let updated = match updated {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") => return Ok(None),
        other => other?,
    };
    if updated.len() < ids.len() {
        return Ok(None);
    }
    let counted = if rows.iter().any(|r| r.limited) {
        count_limited(tx, order).await?
    } else {
        Vec::new()
    };
    Ok(Some((updated, counted)))
}

/// Adds the order's lines of products with a per-shopper limit to the shopper's counts, under
/// the products' row locks the stock update took: the products counted, or 409 `limit_exceeded`
/// naming each line that asks for more than the shopper may still take.
async fn count_limited(
    tx: &mut PgConnection,
    order: &NewOrder,
) -> Result<Vec<ProductId>, ApiError> {
    let lines: Vec<(ProductId, Quantity)> = order
        .lines
        .iter()
        .map(|l| (l.product, l.quantity))
        .collect();
    let counted = shoppers::count_order(tx, order.user, &lines).await?;
    let over: Vec<ShortLine> = counted
        .iter()
        .filter(|c| c.over_limit())
        .map(|c| ShortLine {
            product_id: c.product,
            requested: c.requested.get(),
            available: c.limit.allowance(c.held),
        })
        .collect();
    if !over.is_empty() {
        return Err(ApiError::LimitExceeded(over));
    }
    Ok(counted.iter().map(|c| c.product).collect())
}

/// Unlocks `KEYS` that still hold this owner's token (`ARGV[1]`).
const RELEASE: &str = r"
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    released = released + redis.call('DEL', key)
  end
end
return released
";

/// Redis locks on an order's products, held under one random owner token.
struct ProductLocks {
    keys: Vec<String>,
    token: String,
}

impl ProductLocks {
    /// Takes each product's lock in id order (so two orders cannot wait on each other), waiting
    /// up to [`LOCK_WAIT`] in all.
    async fn acquire(state: &AppState, order: &NewOrder) -> Result<Self, ApiError> {
        let mut locks = Self {
            keys: Vec::with_capacity(order.lines.len()),
            token: Uuid::new_v4().simple().to_string(),
        };
        let deadline = Instant::now() + LOCK_WAIT;
        let mut conn = state.redis.clone();
        for line in &order.lines {
            let key = state.keys.product_lock(line.product.get());
            let mut attempt = 0;
            loop {
                let taken: Result<Option<String>, _> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&locks.token)
                    .arg("NX")
                    .arg("PX")
                    .arg(LOCK_TTL.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
                match taken {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        backoff(attempt.min(3)).await;
                        attempt += 1;
                    }
                    outcome => {
                        locks.release(state).await;
                        return Err(match outcome {
                            Err(error) => error.into(),
                            Ok(_) => contention(),
                        });
                    }
                }
            }
            locks.keys.push(key);
        }
        Ok(locks)
    }

    /// Releases the locks this owner still holds; one that expired and was taken by another
    /// checkout is left alone. Best effort: an unreleased lock expires after [`LOCK_TTL`].
    async fn release(self, state: &AppState) {
        if self.keys.is_empty() {
            return;
        }
        let mut conn = state.redis.clone();
        let released: Result<i64, _> = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.token)
            .query_async(&mut conn)
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "cannot release product locks; they expire on their own");
        }
    }
}
