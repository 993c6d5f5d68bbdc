//! Writes that every checkout strategy makes when it takes stock for an order: the pipeline's
//! worker and the API's synchronous strategies share them, so an order ends the same way
//! whichever strategy decided it.

use sqlx::PgConnection;
use uuid::Uuid;

/// One inventory change of an order, as `inventory_ledger` records it.
#[derive(Debug, Clone, Copy)]
pub struct LedgerEntry {
    pub order_id: Uuid,
    pub product_id: i64,
    /// `reserve` or `release`.
    pub kind: &'static str,
    pub quantity: i32,
    /// False for a reserve that found too little stock (nothing was taken).
    pub applied: bool,
}

/// Records the entries. A change recorded before violates the ledger's primary key: that is how
/// a change is never applied twice.
pub async fn record_ledger(
    conn: &mut PgConnection,
    entries: &[LedgerEntry],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_ledger (order_id, product_id, kind, quantity, applied)
         SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::INT[], $5::BOOL[])",
    )
    .bind(entries.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.product_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.kind).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.quantity).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.applied).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// The quantities of confirmed orders leave their buyers' carts (a line added to since keeps
/// the difference).
pub async fn remove_bought_from_carts(
    conn: &mut PgConnection,
    confirmed: &[Uuid],
) -> Result<(), sqlx::Error> {
    if confirmed.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH bought AS (
             SELECT o.user_id, oi.product_id, SUM(oi.quantity) AS quantity
             FROM orders o JOIN order_items oi ON oi.order_id = o.id
             WHERE o.id = ANY($1) GROUP BY o.user_id, oi.product_id
         ), emptied AS (
             DELETE FROM cart_items c USING bought b
             WHERE c.user_id = b.user_id AND c.product_id = b.product_id AND c.quantity <= b.quantity
         )
         UPDATE cart_items c SET quantity = c.quantity - b.quantity
         FROM bought b
         WHERE c.user_id = b.user_id AND c.product_id = b.product_id AND c.quantity > b.quantity",
    )
    .bind(confirmed)
    .execute(conn)
    .await?;
    Ok(())
}
