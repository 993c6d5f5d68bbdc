//! See [`super`]. What the tests and the benchmark suite ask of the order store once traffic has
//! stopped: whether the pipeline has settled ([`unsettled`], [`unsettled_of`]), and the figures
//! its invariants are checked on (stock per product, units on confirmed orders, the applied
//! ledger, lines that should hold nothing and do, shoppers' counts of limited products). Read only; every status and ledger kind is
//! bound from `shop_domain`.
//!
//! Conservation, per product: stock when listed + applied restocks ([`applied_restocks`]) +
//! sellers' adjustments ([`seller_adjustments`]: what their sets changed, less the releases and
//! restocks their counts absorbed) = available + units on CONFIRMED orders.

use shop_domain::{messages::CommandKind, LineStatus, OrderStatus};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// What still stands between the pipeline and rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsettled {
    /// Orders still PENDING.
    pub pending: i64,
    /// Outbox rows not yet handed to Kafka (the whole outbox).
    pub outbox: i64,
    /// Lines whose units are still to be given back: a REJECTED order's RESERVED lines, a
    /// CANCELLED order's PENDING or RESERVED ones (those releases travel after the decision or
    /// the cancel).
    pub unreleased: i64,
}

impl Unsettled {
    /// All of it together.
    pub fn total(&self) -> i64 {
        self.pending + self.outbox + self.unreleased
    }

    /// Nothing pending, nothing in the outbox, nothing to release.
    pub fn is_settled(&self) -> bool {
        self.total() == 0
    }
}

/// Lines whose units are still to be given back (see [`Unsettled::unreleased`]), over `o`
/// (orders) and `i` (their lines), with the statuses of [`UNRELEASED_STATUSES`] as `$2` to `$5`.
const UNRELEASED: &str =
    "(o.status = $2 AND i.status = $3) OR (o.status = $4 AND i.status IN ($5, $3))";
const UNRELEASED_STATUSES: [&str; 4] = [
    OrderStatus::Rejected.as_str(),
    LineStatus::Reserved.as_str(),
    OrderStatus::Cancelled.as_str(),
    LineStatus::Pending.as_str(),
];

/// What is unsettled over the whole database.
pub async fn unsettled(pool: &PgPool) -> Result<Unsettled, sqlx::Error> {
    let sql = format!(
        "SELECT (SELECT count(*) FROM orders WHERE status = $1),
                (SELECT count(*) FROM outbox),
                (SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id
                 WHERE {UNRELEASED})"
    );
    let mut query = sqlx::query_as(&sql).bind(OrderStatus::Pending.as_str());
    for status in UNRELEASED_STATUSES {
        query = query.bind(status);
    }
    let (pending, outbox, unreleased) = query.fetch_one(pool).await?;
    Ok(Unsettled {
        pending,
        outbox,
        unreleased,
    })
}

/// [`unsettled`] for the orders of `users` (the outbox is still counted whole). Made to be
/// polled while the benchmark measures the shop's CPU: the users' orders are joined (hashed),
/// not matched with `= ANY` (a scan of the array per order), and the lines to release are
/// counted only once nothing is pending and the outbox is empty (`unreleased` is 0 until then).
pub async fn unsettled_of(pool: &PgPool, users: &[i64]) -> Result<Unsettled, sqlx::Error> {
    let (pending, outbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders o JOIN UNNEST($1::BIGINT[]) u(id) ON o.user_id = u.id
                 WHERE o.status = $2),
                (SELECT count(*) FROM outbox)",
    )
    .bind(users)
    .bind(OrderStatus::Pending.as_str())
    .fetch_one(pool)
    .await?;
    if pending + outbox > 0 {
        return Ok(Unsettled {
            pending,
            outbox,
            unreleased: 0,
        });
    }
    let sql = format!(
        "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id
         JOIN UNNEST($1::BIGINT[]) u(id) ON o.user_id = u.id
         WHERE {UNRELEASED}"
    );
    let mut query = sqlx::query_scalar(&sql).bind(users);
    for status in UNRELEASED_STATUSES {
        query = query.bind(status);
    }
    let unreleased = query.fetch_one(pool).await?;
    Ok(Unsettled {
        pending,
        outbox,
        unreleased,
    })
}

/// Every order's status.
pub async fn order_statuses(pool: &PgPool) -> Result<HashMap<Uuid, OrderStatus>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM orders")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(id, status)| {
            OrderStatus::try_from(status)
                .map(|status| (id, status))
                .map_err(|unknown| sqlx::Error::Decode(Box::new(unknown)))
        })
        .collect()
}

/// Every product's available stock.
pub async fn available(pool: &PgPool) -> Result<HashMap<i64, i64>, sqlx::Error> {
    Ok(per_product(
        sqlx::query_as("SELECT id, available_quantity::BIGINT FROM products")
            .fetch_all(pool)
            .await?,
    ))
}

/// Units on CONFIRMED orders, per product (a product with none is absent).
pub async fn confirmed_units(pool: &PgPool) -> Result<HashMap<i64, i64>, sqlx::Error> {
    Ok(per_product(
        sqlx::query_as(
            "SELECT i.product_id, SUM(i.quantity)::BIGINT FROM order_items i
             JOIN orders o ON o.id = i.order_id WHERE o.status = $1 GROUP BY i.product_id",
        )
        .bind(OrderStatus::Confirmed.as_str())
        .fetch_all(pool)
        .await?,
    ))
}

/// Units added by applied restocks, per product (a product with none is absent).
pub async fn applied_restocks(pool: &PgPool) -> Result<HashMap<i64, i64>, sqlx::Error> {
    Ok(per_product(
        sqlx::query_as(
            "SELECT product_id, SUM(quantity)::BIGINT FROM inventory_ledger
             WHERE kind = $1 AND applied GROUP BY product_id",
        )
        .bind(CommandKind::Restock.as_str())
        .fetch_all(pool)
        .await?,
    ))
}

/// What sellers' sets changed, per product (a product whose ledger rows have no delta is
/// absent): each applied ledger row's stock delta minus what its kind moves when no set is in the
/// way (a reserve −quantity, a release or restock +quantity, a set nothing). That is each set's
/// delta (the stock it left minus the stock it found), and −quantity for each release or restock
/// a set's count absorbed (queued before the set, applied after it: the units were in the
/// count). Rows without a delta (from before sets, or the API's
/// synchronous strategies) add nothing.
pub async fn seller_adjustments(pool: &PgPool) -> Result<HashMap<i64, i64>, sqlx::Error> {
    Ok(per_product(
        sqlx::query_as(
            "SELECT product_id,
                    SUM(stock_delta - CASE kind WHEN $1 THEN -quantity
                                                WHEN $2 THEN quantity
                                                WHEN $3 THEN quantity ELSE 0 END)::BIGINT
             FROM inventory_ledger WHERE applied AND stock_delta IS NOT NULL
             GROUP BY product_id",
        )
        .bind(CommandKind::Reserve.as_str())
        .bind(CommandKind::Release.as_str())
        .bind(CommandKind::Restock.as_str())
        .fetch_all(pool)
        .await?,
    ))
}

/// One product's stock, and what left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductStock {
    pub product: i64,
    pub available: i64,
    /// Units on CONFIRMED orders.
    pub confirmed_units: i64,
    /// Applied reserves minus applied releases in the ledger: what the ledger says left the
    /// product. A command applied twice, or skipped, makes this disagree with the stock.
    pub ledger_units: i64,
}

/// Every product's [`ProductStock`], in one statement (one snapshot).
pub async fn product_stock(pool: &PgPool) -> Result<Vec<ProductStock>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT p.id, p.available_quantity::BIGINT,
                COALESCE((SELECT sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
                          WHERE i.product_id = p.id AND o.status = $1), 0)::BIGINT,
                COALESCE((SELECT sum(CASE l.kind WHEN $2 THEN l.quantity
                                                 WHEN $3 THEN -l.quantity ELSE 0 END)
                          FROM inventory_ledger l WHERE l.product_id = p.id AND l.applied), 0)::BIGINT
         FROM products p",
    )
    .bind(OrderStatus::Confirmed.as_str())
    .bind(CommandKind::Reserve.as_str())
    .bind(CommandKind::Release.as_str())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(product, available, confirmed_units, ledger_units)| ProductStock {
                product,
                available,
                confirmed_units,
                ledger_units,
            },
        )
        .collect())
}

/// Lines of REJECTED or CANCELLED orders still holding units: neither SHORT, RELEASED nor
/// CANCELLED (a release not yet applied, or lost).
pub async fn lines_still_holding(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE o.status IN ($1, $2) AND i.status NOT IN ($3, $4, $5)",
    )
    .bind(OrderStatus::Rejected.as_str())
    .bind(OrderStatus::Cancelled.as_str())
    .bind(LineStatus::Short.as_str())
    .bind(LineStatus::Released.as_str())
    .bind(LineStatus::Cancelled.as_str())
    .fetch_one(pool)
    .await
}

/// Lines that break all or nothing: a CONFIRMED order's line not RESERVED, or a REJECTED or
/// CANCELLED order's line still RESERVED (once settled).
pub async fn torn_lines(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id
         WHERE (o.status = $1 AND i.status <> $2)
            OR (o.status IN ($3, $4) AND i.status = $2)",
    )
    .bind(OrderStatus::Confirmed.as_str())
    .bind(LineStatus::Reserved.as_str())
    .bind(OrderStatus::Rejected.as_str())
    .bind(OrderStatus::Cancelled.as_str())
    .fetch_one(pool)
    .await
}

/// A shopper's count of a product (`shopper_units`) beside what it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ShopperCount {
    pub product: i64,
    pub user: i64,
    /// The count (0 without a row).
    pub units: i64,
    /// What the ledger adds up to: the shopper's counted reserves minus their counted releases.
    pub ledger: i64,
    /// The product's `max_per_shopper`, if it has one.
    pub limit: Option<i64>,
}

/// The shoppers' counts that break the per-shopper limits' invariants, in one statement (one
/// snapshot): a count above its product's limit (no shopper holds more than the limit; true as
/// long as no seller lowers a limit below what a shopper already holds), or one that is not what
/// the ledger's counted reserves and releases add up to (a command counted twice, or skipped).
pub async fn shopper_counts_broken(pool: &PgPool) -> Result<Vec<ShopperCount>, sqlx::Error> {
    sqlx::query_as(
        "WITH ledger AS (
             SELECT l.product_id, o.user_id,
                    sum(CASE l.kind WHEN $1 THEN l.quantity WHEN $2 THEN -l.quantity ELSE 0 END) AS units
             FROM inventory_ledger l JOIN orders o ON o.id = l.order_id
             WHERE l.counted GROUP BY l.product_id, o.user_id
         ), counts AS (
             SELECT COALESCE(s.product_id, l.product_id) AS product_id,
                    COALESCE(s.user_id, l.user_id) AS user_id,
                    COALESCE(s.units, 0)::BIGINT AS units, COALESCE(l.units, 0)::BIGINT AS ledger
             FROM shopper_units s
             FULL JOIN ledger l ON l.product_id = s.product_id AND l.user_id = s.user_id
         )
         SELECT c.product_id AS product, c.user_id AS \"user\", c.units, c.ledger,
                p.max_per_shopper::BIGINT AS \"limit\"
         FROM counts c LEFT JOIN products p ON p.id = c.product_id
         WHERE c.units <> c.ledger OR c.units > p.max_per_shopper
         ORDER BY c.product_id, c.user_id",
    )
    .bind(CommandKind::Reserve.as_str())
    .bind(CommandKind::Release.as_str())
    .fetch_all(pool)
    .await
}

/// `(product, units)` rows as a map, a NULL sum as 0.
fn per_product(rows: Vec<(i64, Option<i64>)>) -> HashMap<i64, i64> {
    rows.into_iter()
        .map(|(product, units)| (product, units.unwrap_or(0)))
        .collect()
}
