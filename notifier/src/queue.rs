//! The `notifications` table as a durable queue (schema 0009).
//!
//! Writers ([`enqueue`], from `shop_infra::notifications`: the API's sign-in, registration and
//! phone codes, the order-event reader) insert a row per message, keyed by its `event_id`, so a message written
//! twice is one row. Senders take due rows
//! with [`claim`] (`SKIP LOCKED`, so several notifiers share the work), which also counts the
//! attempt and holds the row for `NOTIFY_CLAIM_MS` by moving its `next_attempt_at`; then [`sent`]
//! or [`failed`]. A sender that dies mid-send leaves the row due again when its claim lapses.

use crate::positions;
use shop_infra::{
    dead_letters::{self, Letter, Record},
    outbox::OutboxError,
};
use sqlx::PgPool;
use std::{collections::HashMap, time::Duration};
use uuid::Uuid;

pub use shop_infra::notifications::{
    enqueue, Channel, Kind, NewNotification, Status, WRITTEN_CHANNEL,
};

/// A row taken for sending, with its addresses.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub channel: String,
    /// The shopper. For a registration, the active account that has its email address already,
    /// if one does (its code then signs in to that account), looked up when the row is taken.
    pub user_id: Option<i64>,
    pub order_id: Option<Uuid>,
    /// Including this one.
    pub attempts: i32,
    /// The row's own (a registration's), else the account's.
    pub email: Option<String>,
    /// The row's own (the number a registration claims, or a phone code proves), else the
    /// account's if it is proven: a sign-in code is never texted to a number nobody proved.
    pub phone_number: Option<String>,
}

/// Takes up to `limit` due rows for `claim`, counting the attempt. Codes (sign-in, registration,
/// phone) come first: someone is waiting for one, and would otherwise wait behind a busy hour's
/// order mails. An order mail waits while an earlier row of its order is pending (being sent, or
/// to be retried), so an order's mails go out in the order of its events; a parked row stops
/// holding the next one back.
pub async fn claim(pool: &PgPool, limit: i64, claim: Duration) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "WITH codes AS (
             SELECT id FROM notifications
             WHERE status = $3 AND next_attempt_at <= now() AND kind = ANY($4)
             ORDER BY next_attempt_at LIMIT $1
             FOR UPDATE SKIP LOCKED
         ), others AS (
             SELECT id FROM notifications n
             WHERE status = $3 AND next_attempt_at <= now() AND kind <> ALL($4)
               AND NOT EXISTS (SELECT 1 FROM notifications e
                               WHERE e.order_id = n.order_id AND e.status = $3 AND e.id < n.id)
             ORDER BY next_attempt_at LIMIT $1 - (SELECT count(*) FROM codes)
             FOR UPDATE SKIP LOCKED
         ), due AS (
             SELECT id FROM codes UNION ALL SELECT id FROM others
         ), claimed AS (
             UPDATE notifications n
             SET attempts = n.attempts + 1,
                 next_attempt_at = now() + make_interval(secs => $2)
             FROM due
             WHERE n.id = due.id
             RETURNING n.id, n.event_id, n.kind, n.channel, n.user_id, n.order_id, n.attempts,
                       n.email, n.phone_number
         )
         SELECT c.id, c.event_id, c.kind, c.channel, u.id AS user_id, c.order_id, c.attempts,
                COALESCE(c.email, u.email) AS email,
                COALESCE(c.phone_number,
                         CASE WHEN u.phone_verified_at IS NOT NULL THEN u.phone_number END)
                    AS phone_number
         FROM claimed c
         LEFT JOIN users u ON u.id = COALESCE(
             c.user_id,
             (SELECT a.id FROM users a WHERE a.email = c.email AND a.status = 'active'))",
    )
    .bind(limit)
    .bind(claim.as_secs_f64())
    .bind(Status::Pending.as_str())
    .bind(Kind::CODES.map(Kind::as_str))
    .fetch_all(pool)
    .await
}

/// Marks a claimed row sent.
pub async fn sent(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications SET status = $2, sent_at = now(), last_error = NULL,
                email = NULL, phone_number = NULL
         WHERE id = $1 AND status = $3",
    )
    .bind(id)
    .bind(Status::Sent.as_str())
    .bind(Status::Pending.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a claimed row dropped: it has nobody to go to any more.
pub async fn dropped(pool: &PgPool, id: i64, reason: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications SET status = $3, last_error = $2,
                email = NULL, phone_number = NULL
         WHERE id = $1 AND status = $4",
    )
    .bind(id)
    .bind(reason)
    .bind(Status::Dropped.as_str())
    .bind(Status::Pending.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed send: due again after `retry_after`, or parked once it has had
/// `max_attempts`. Returns the row's status now.
pub async fn failed(
    pool: &PgPool,
    due: &Due,
    max_attempts: i32,
    retry_after: Duration,
    error: &str,
) -> sqlx::Result<Status> {
    let status = if due.attempts >= max_attempts {
        Status::Parked
    } else {
        Status::Pending
    };
    sqlx::query(
        "UPDATE notifications
         SET status = $2, next_attempt_at = now() + make_interval(secs => $3), last_error = $4,
             email = CASE WHEN $2 = $5 THEN email END,
             phone_number = CASE WHEN $2 = $5 THEN phone_number END
         WHERE id = $1 AND status = $5",
    )
    .bind(due.id)
    .bind(status.as_str())
    .bind(retry_after.as_secs_f64())
    .bind(error)
    .bind(Status::Pending.as_str())
    .execute(pool)
    .await?;
    Ok(status)
}

/// How long to wait after the `attempts`-th failed send: `base` doubled per earlier failure, at
/// most `max`.
pub fn backoff(attempts: i32, base: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    base.saturating_mul(1 << doublings).min(max)
}

/// Rows waiting to be sent, rows parked, and the age in seconds of the oldest waiting one.
pub async fn backlog(pool: &PgPool) -> sqlx::Result<(i64, i64, f64)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = $1),
                count(*) FILTER (WHERE status = $2),
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status = $1)), 0)::FLOAT8
         FROM notifications WHERE status IN ($1, $2)",
    )
    .bind(Status::Pending.as_str())
    .bind(Status::Parked.as_str())
    .fetch_one(pool)
    .await
}

/// What one batch of order events became.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Rows queued (an event seen before is one row).
    pub queued: u64,
    /// Records parked as dead letters (one seen before is parked once).
    pub parked: usize,
}

/// Queues `rows` (each with the record it was read from), parks `letters` and the rows whose
/// order does not exist or is not their shopper's (an event nobody here wrote), and moves
/// `topic`'s positions to `next` (partition, next offset; [`positions::advance`]), in one
/// transaction.
pub async fn ingest(
    pool: &PgPool,
    topic: &str,
    rows: &[(Record, NewNotification)],
    mut letters: Vec<Letter>,
    next: &[(i32, i64)],
) -> sqlx::Result<Ingested> {
    let mut tx = pool.begin().await?;
    let orders: Vec<Uuid> = rows.iter().filter_map(|(_, row)| row.order_id).collect();
    let owners: HashMap<Uuid, i64> =
        sqlx::query_as::<_, (Uuid, i64)>("SELECT id, user_id FROM orders WHERE id = ANY($1)")
            .bind(&orders)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let mut queue = Vec::with_capacity(rows.len());
    for (record, row) in rows {
        match row.order_id {
            Some(order) if row.user_id.is_none() || owners.get(&order).copied() != row.user_id => {
                letters.push(Letter::new(
                    record.clone(),
                    &format!(
                        "order {order} of user {} does not exist",
                        row.user_id.unwrap_or_default()
                    ),
                    Some(order),
                ));
            }
            _ => queue.push(row.clone()),
        }
    }
    let queued = enqueue(&mut tx, &queue).await?;
    let parked = dead_letters::park(&mut tx, &letters)
        .await
        .map_err(|error| match error {
            OutboxError::Database(error) => error,
            OutboxError::Encode(error) => sqlx::Error::Decode(Box::new(error)),
        })?
        .len();
    positions::advance(&mut tx, topic, next).await?;
    tx.commit().await?;
    Ok(Ingested { queued, parked })
}

/// An order's lines for its mail: product name, quantity, unit price in cents.
pub async fn order_lines(pool: &PgPool, order: Uuid) -> sqlx::Result<Vec<(String, i32, i64)>> {
    sqlx::query_as(
        "SELECT p.name, oi.quantity, oi.price_at_purchase FROM order_items oi
         JOIN products p ON p.id = oi.product_id
         WHERE oi.order_id = $1 ORDER BY oi.product_id",
    )
    .bind(order)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (base, max) = (Duration::from_millis(500), Duration::from_secs(60));
        assert_eq!(backoff(1, base, max), base);
        assert_eq!(backoff(2, base, max), Duration::from_secs(1));
        assert_eq!(backoff(4, base, max), Duration::from_secs(4));
        assert_eq!(backoff(20, base, max), max);
        assert_eq!(backoff(i32::MAX, base, max), max);
    }
}
