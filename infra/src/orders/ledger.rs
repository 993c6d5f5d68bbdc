//! The inventory ledger's writes: one row per inventory change of an order, which the pipeline's
//! lanes (`lane`) and the API's synchronous strategies share, so an order ends the same way
//! whichever strategy decided it.

use shop_domain::messages::CommandKind;
use sqlx::PgConnection;
use uuid::Uuid;

/// One inventory change of an order, as `inventory_ledger` records it.
#[derive(Debug, Clone, Copy)]
pub struct LedgerEntry {
    pub order_id: Uuid,
    pub product_id: i64,
    pub kind: CommandKind,
    pub quantity: i32,
    /// False for a reserve that found too little stock (nothing was taken).
    pub applied: bool,
    /// Whether it changed the shopper's count of the product (`shopper_units`): a reserve applied
    /// while the product had a per-shopper limit, or the release of such a reserve. A release
    /// takes units off the count exactly when its reserve was counted.
    pub counted: bool,
}

/// Records the entries. A change recorded before violates the ledger's primary key: that is how
/// a change is never applied twice.
pub async fn record_ledger(
    conn: &mut PgConnection,
    entries: &[LedgerEntry],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_ledger (order_id, product_id, kind, quantity, applied, counted)
         SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::INT[], $5::BOOL[], $6::BOOL[])",
    )
    .bind(entries.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.product_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.quantity).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.applied).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.counted).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}
