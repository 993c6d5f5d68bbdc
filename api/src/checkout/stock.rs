//! What checkout knows of stock: which lines are short, the early refusal from the stock read with
//! the cart, and the statements of the synchronous strategies that read and take products' stock.

use crate::error::ApiError;
use shop_domain::messages::ShortLine;
use shop_infra::orders::place::{CartLine, Line};
use sqlx::PgConnection;
use std::collections::HashMap;

/// The lines whose product has less than the line asks for; `stock` maps product ids to their
/// available quantity (a product missing from it has none).
pub(crate) fn short_lines(lines: &[Line], stock: &HashMap<i64, i64>) -> Vec<ShortLine> {
    lines
        .iter()
        .filter_map(|line| {
            let available = stock.get(&line.product.get()).copied().unwrap_or(0);
            (available < i64::from(line.quantity.get())).then_some(ShortLine {
                product_id: line.product,
                requested: line.quantity.get(),
                available,
            })
        })
        .collect()
}

/// The cart's lines, or 409 `out_of_stock` at once, writing nothing, if a product has less than
/// its line asks for by the stock read with the cart: what the product's lane last committed
/// (or, for the synchronous strategies, the last order's transaction). A line with enough goes to
/// the strategy, which makes the real decision.
///
/// Read with the cart, the stock costs nothing more: the same lookup fetches the price. (It was
/// once read from the hot inventory in Redis and, for a product that looked short there,
/// confirmed by a second PostgreSQL read: three more round trips for every refusal of a sold-out
/// drop; BENCHMARKS.md, "A flash-sale drop".)
pub(crate) fn refuse_short(cart: &[CartLine]) -> Result<Vec<Line>, ApiError> {
    let lines = cart
        .iter()
        .map(|&row| Line::try_from(row))
        .collect::<Result<Vec<_>, _>>()?;
    let stock: HashMap<i64, i64> = cart
        .iter()
        .map(|row| (row.product_id, i64::from(row.available_quantity)))
        .collect();
    let short = short_lines(&lines, &stock);
    if short.is_empty() {
        Ok(lines)
    } else {
        Err(ApiError::OutOfStock(short))
    }
}

/// How a synchronous strategy reads the products' stock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Read {
    /// A plain read of each product's stock and version.
    Plain,
    /// `SELECT … FOR NO KEY UPDATE` in product-id order (`FOR UPDATE` would also block the
    /// key-share locks that the same transaction's order lines take on their products, and two
    /// checkouts would deadlock).
    Locked,
}

/// What the stock update requires of each product row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Guard {
    /// Its version is still the one read (optimistic).
    Version,
    /// It still has the units (behind a lock, or under one taken elsewhere).
    Available,
}

/// A product's stock as a synchronous strategy reads it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct StockRow {
    pub id: i64,
    pub available: i32,
    pub version: i64,
    /// Whether it has a per-shopper limit (whose count the strategy then keeps).
    pub limited: bool,
}

/// Each product's stock, version, and whether it has a per-shopper limit.
pub(crate) async fn read(
    tx: &mut PgConnection,
    ids: &[i64],
    how: Read,
) -> Result<Vec<StockRow>, sqlx::Error> {
    let read = match how {
        Read::Locked => {
            "SELECT id, available_quantity AS available, version, max_per_shopper IS NOT NULL AS limited
             FROM products WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"
        }
        Read::Plain => {
            "SELECT id, available_quantity AS available, version, max_per_shopper IS NOT NULL AS limited
             FROM products WHERE id = ANY($1)"
        }
    };
    sqlx::query_as(read).bind(ids).fetch_all(tx).await
}

/// Takes `quantities` of the products `ids` (with the `versions` read) where `guard` holds;
/// returns the rows it changed, `(id, available quantity, version)`.
pub(crate) async fn take(
    tx: &mut PgConnection,
    ids: &[i64],
    quantities: &[i32],
    versions: &[i64],
    guard: Guard,
) -> Result<Vec<(i64, i32, i64)>, sqlx::Error> {
    let guard = match guard {
        Guard::Version => "p.version = v.version",
        Guard::Available => "p.available_quantity >= v.quantity",
    };
    sqlx::query_as(&format!(
        "UPDATE products p
         SET available_quantity = p.available_quantity - v.quantity, version = p.version + 1,
             updated_at = now()
         FROM UNNEST($1::BIGINT[], $2::INT[], $3::BIGINT[]) AS v(id, quantity, version)
         WHERE p.id = v.id AND {guard}
         RETURNING p.id, p.available_quantity, p.version"
    ))
    .bind(ids)
    .bind(quantities)
    .bind(versions)
    .fetch_all(tx)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_domain::{Money, ProductId, Quantity};

    fn line(product: i64, quantity: i64) -> Line {
        Line {
            product: ProductId::new(product).expect("id"),
            quantity: Quantity::new(quantity).expect("quantity"),
            price: Money::new(100).expect("price"),
        }
    }

    #[test]
    fn short_lines_name_each_line_that_asks_for_more_than_there_is() {
        let stock = HashMap::from([(1, 5), (2, 1)]);
        let short = short_lines(&[line(1, 5), line(2, 2), line(3, 1)], &stock);
        let named: Vec<_> = short
            .iter()
            .map(|s| (s.product_id.get(), s.requested, s.available))
            .collect();
        assert_eq!(named, [(2, 2, 1), (3, 1, 0)]);
    }
}
