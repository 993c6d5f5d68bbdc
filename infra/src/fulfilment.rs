//! Writes of deciding an order: the ledger, which the pipeline's worker and the API's synchronous
//! strategies share (so an order ends the same way whichever strategy decided it), and the return
//! of a rejected order's lines to the cart, which only the pipeline needs (a synchronous strategy
//! that refuses rolls back the statement that took them).

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

/// Rejected orders' lines go back to their buyers' carts (checkout took them out); a line the
/// buyer added again meanwhile, or that several rejected orders share, grows by each order's
/// quantity, up to the line limit.
pub async fn return_to_carts(
    conn: &mut PgConnection,
    rejected: &[Uuid],
) -> Result<(), sqlx::Error> {
    if rejected.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO cart_items (user_id, product_id, quantity)
         SELECT o.user_id, oi.product_id, LEAST(sum(oi.quantity), $2)
         FROM orders o JOIN order_items oi ON oi.order_id = o.id
         WHERE o.id = ANY($1)
         GROUP BY o.user_id, oi.product_id
         ON CONFLICT ON CONSTRAINT cart_items_pkey DO UPDATE
         SET quantity = LEAST(cart_items.quantity + EXCLUDED.quantity, $2)",
    )
    .bind(rejected)
    .bind(i32::try_from(shop_domain::MAX_LINE_QUANTITY).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}
