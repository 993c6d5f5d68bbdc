//! How many units of a product each shopper holds across their orders (`shopper_units`), which
//! the product's `max_per_shopper` ([`shop_domain::ShopperLimit`]) bounds.
//!
//! The count is written only while the product's row is locked, in the transaction that takes
//! the product's stock: by the product's lane, in its batch (with the ledger entries that say
//! which reserves and releases were counted, so a redelivered command is a duplicate and changes
//! nothing), and by the API's synchronous strategies, in the order's own transaction. A reserve
//! applied while the product has a limit adds its units (its ledger entry is `counted`); the
//! release of a counted reserve takes them off when the lane applies it. Units bought while the
//! product had no limit are not counted.

use super::lane::decode_error;
use shop_domain::{ProductId, Quantity, ShopperLimit, UserId};
use sqlx::PgConnection;
use std::collections::HashMap;

/// One shopper's count of one product.
pub type ShopperKey = (ProductId, UserId);

/// The counts of `keys` as they stand; a key with no row is absent (it holds nothing).
pub async fn held(
    conn: &mut PgConnection,
    keys: &[ShopperKey],
) -> Result<HashMap<ShopperKey, i64>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64, i32)> = sqlx::query_as(
        "SELECT product_id, user_id, units FROM shopper_units
         WHERE (product_id, user_id) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]))",
    )
    .bind(keys.iter().map(|k| k.0.get()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1.get()).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(product, user, units)| {
            let key = (
                ProductId::new(product).map_err(decode_error)?,
                UserId::new(user).map_err(decode_error)?,
            );
            Ok((key, i64::from(units)))
        })
        .collect()
}

/// Writes the counts that changed, as they are now (the caller holds the products' locks, so
/// nothing else changed them meanwhile). A count below zero breaks `shopper_units_nonnegative`:
/// a release taking off units no reserve counted is a fault, and fails the transaction.
pub async fn write(
    conn: &mut PgConnection,
    counts: &[(ShopperKey, i64)],
) -> Result<(), sqlx::Error> {
    if counts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO shopper_units (product_id, user_id, units)
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::INT[])
         ON CONFLICT ON CONSTRAINT shopper_units_pkey DO UPDATE SET units = EXCLUDED.units",
    )
    .bind(counts.iter().map(|c| c.0 .0.get()).collect::<Vec<_>>())
    .bind(counts.iter().map(|c| c.0 .1.get()).collect::<Vec<_>>())
    .bind(
        counts
            .iter()
            .map(|c| i32::try_from(c.1).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A line of a limited product counted by [`count_order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub product: ProductId,
    pub requested: Quantity,
    /// What the shopper held before this order.
    pub held: i64,
    pub limit: ShopperLimit,
}

impl Counted {
    /// Whether the line asks for more than the shopper may still take.
    pub fn over_limit(&self) -> bool {
        i64::from(self.requested.get()) > self.limit.allowance(self.held)
    }
}

/// Adds `user`'s order `lines` (product, quantity) of the products that have a limit to the
/// shopper's counts, for the API's synchronous strategies, inside the order's transaction and
/// after its stock update (so the products' rows are locked by it). Returns the lines counted;
/// the caller rolls back when one is [`Counted::over_limit`], and records the others' reserves
/// as counted.
pub async fn count_order(
    conn: &mut PgConnection,
    user: UserId,
    lines: &[(ProductId, Quantity)],
) -> Result<Vec<Counted>, sqlx::Error> {
    let rows: Vec<(i64, i32, i32, i32)> = sqlx::query_as(
        "WITH lim AS (
             SELECT v.p, v.q, pr.max_per_shopper AS m
             FROM UNNEST($1::BIGINT[], $2::INT[]) AS v(p, q)
             CROSS JOIN LATERAL (SELECT max_per_shopper FROM products WHERE id = v.p OFFSET 0) pr
             WHERE pr.max_per_shopper IS NOT NULL
         ), counted AS (
             INSERT INTO shopper_units (product_id, user_id, units)
             SELECT p, $3, q FROM lim
             ON CONFLICT ON CONSTRAINT shopper_units_pkey
             DO UPDATE SET units = shopper_units.units + EXCLUDED.units
             RETURNING product_id, units
         )
         SELECT lim.p, lim.q, counted.units - lim.q, lim.m
         FROM lim JOIN counted ON counted.product_id = lim.p ORDER BY lim.p",
    )
    .bind(lines.iter().map(|l| l.0.get()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| i32::from(l.1)).collect::<Vec<_>>())
    .bind(user.get())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(product, requested, held, limit)| {
            Ok(Counted {
                product: ProductId::new(product).map_err(decode_error)?,
                requested: Quantity::new(requested.into()).map_err(decode_error)?,
                held: held.into(),
                limit: ShopperLimit::new(limit.into()).map_err(decode_error)?,
            })
        })
        .collect()
}
