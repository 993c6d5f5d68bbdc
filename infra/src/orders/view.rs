//! Reading orders (the API's order and seller views, and the ledger entry of a seller's restock
//! or set). Each function names its columns and leaves the row's shape to the caller (any
//! [`sqlx::FromRow`] with fields of those names), so the API's JSON types are read directly.

use shop_domain::{messages::CommandKind, LineStatus, OrderStatus, ProductId, UserId};
use sqlx::{postgres::PgRow, FromRow, PgPool};
use uuid::Uuid;

/// The columns of an order's summary: `id, status, total_cents, delivery_address, created_at,
/// completed_at, cancelled_at`.
const SUMMARY_COLUMNS: &str =
    "id, status, total_cents, delivery_address, created_at, completed_at, cancelled_at";

/// The order `id`'s summary ([`SUMMARY_COLUMNS`]), if it belongs to `user`.
pub async fn order<T>(pool: &PgPool, user: UserId, id: Uuid) -> Result<Option<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user.get())
    .fetch_optional(pool)
    .await
}

/// The lines of order `id` in product-id order: `product_id, quantity, price_at_purchase_cents,
/// status, reason_code, reason`.
pub async fn lines<T>(pool: &PgPool, id: Uuid) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(
        "SELECT product_id, quantity, price_at_purchase AS price_at_purchase_cents, status,
                reason_code, reason
         FROM order_items WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Up to `limit` of `user`'s orders ([`SUMMARY_COLUMNS`]) older than `before`, newest first
/// (order ids sort by time).
pub async fn orders_of<T>(
    pool: &PgPool,
    user: UserId,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM orders
         WHERE user_id = $1 AND ($2::UUID IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(user.get())
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Up to `limit` of the seller's products after id `after`, in id order, with their sales: `id,
/// name, category, price_cents, available_quantity, units_sold` (reserved lines of CONFIRMED
/// orders), `units_reserved` (reserved lines of PENDING orders).
pub async fn seller_products<T>(
    pool: &PgPool,
    seller: UserId,
    after: i64,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(
        "SELECT p.id, p.name, p.category, p.price_cents, p.available_quantity,
                COALESCE(sum(oi.quantity) FILTER (WHERE oi.status = $4 AND o.status = $5), 0)::BIGINT AS units_sold,
                COALESCE(sum(oi.quantity) FILTER (WHERE oi.status = $4 AND o.status = $6), 0)::BIGINT AS units_reserved
         FROM (SELECT * FROM products WHERE seller_id = $1 AND id > $2 ORDER BY id LIMIT $3) p
         LEFT JOIN order_items oi ON oi.product_id = p.id
         LEFT JOIN orders o ON o.id = oi.order_id
         GROUP BY p.id, p.name, p.category, p.price_cents, p.available_quantity
         ORDER BY p.id",
    )
    .bind(seller.get())
    .bind(after)
    .bind(limit)
    .bind(LineStatus::Reserved.as_str())
    .bind(OrderStatus::Confirmed.as_str())
    .bind(OrderStatus::Pending.as_str())
    .fetch_all(pool)
    .await
}

/// Up to `limit` order lines of the seller's products with line ids below `before`, newest
/// first: `line_id, order_id, order_status, ordered_at, product_id, product_name, quantity,
/// unit_price_cents, line_status`.
pub async fn seller_lines<T>(
    pool: &PgPool,
    seller: UserId,
    before: i64,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(
        "SELECT oi.id AS line_id, oi.order_id, o.status AS order_status, o.created_at AS ordered_at,
                oi.product_id, p.name AS product_name, oi.quantity,
                oi.price_at_purchase AS unit_price_cents, oi.status AS line_status
         FROM order_items oi
         JOIN products p ON p.id = oi.product_id
         JOIN orders o ON o.id = oi.order_id
         WHERE p.seller_id = $1 AND oi.id < $2
         ORDER BY oi.id DESC LIMIT $3",
    )
    .bind(seller.get())
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What a product's lane decided about a seller's command `id` of `kind` on `product` (a
/// restock or a set: its ledger entry), with the product's stock now: `applied, quantity, stock`;
/// `None` until the lane has applied or refused it.
pub async fn seller_command<T>(
    pool: &PgPool,
    id: Uuid,
    product: ProductId,
    kind: CommandKind,
) -> Result<Option<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(
        "SELECT l.applied, l.quantity, p.available_quantity AS stock FROM inventory_ledger l
         JOIN products p ON p.id = l.product_id
         WHERE l.order_id = $1 AND l.product_id = $2 AND l.kind = $3",
    )
    .bind(id)
    .bind(product.get())
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await
}
