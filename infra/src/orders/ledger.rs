//! The inventory ledger's writes: one row per inventory change of an order (or per seller's
//! restock or set), which the pipeline's lanes (`lane`) and the API's synchronous strategies
//! share, so an order ends the same way whichever strategy decided it.

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
    /// False for a reserve that found too little stock (nothing was taken), a restock past the
    /// most a stock may hold, a release that held nothing, and a set older than the product's
    /// last.
    pub applied: bool,
    /// Whether it changed the shopper's count of the product (`shopper_units`): a reserve applied
    /// while the product had a per-shopper limit, or the release of such a reserve. A release
    /// takes units off the count exactly when its reserve was counted.
    pub counted: bool,
}

/// Where a lane's command stood in the queue and what it did to the stock (see `lane`). The API's
/// synchronous strategies have neither: both are NULL in their rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// The id of the outbox row the command was written in, if its record carried it.
    pub queued: Option<i64>,
    /// For a reserve, the product's set position (`stock_set_at_outbox_id`) when it was applied:
    /// a release queued before that set still gives its units back.
    pub reserved_under: Option<i64>,
    /// What it added to the product's stock (negative: took away); 0 for a command that changed
    /// nothing.
    pub stock_delta: Option<i32>,
}

/// Records the entries, without a [`Placement`]. A change recorded before violates the ledger's
/// primary key: that is how a change is never applied twice.
pub async fn record_ledger(
    conn: &mut PgConnection,
    entries: &[LedgerEntry],
) -> Result<(), sqlx::Error> {
    let unplaced: Vec<(LedgerEntry, Placement)> =
        entries.iter().map(|&e| (e, Placement::default())).collect();
    record_placed(conn, &unplaced).await
}

/// Records the entries with their placement, as [`record_ledger`] does.
pub async fn record_placed(
    conn: &mut PgConnection,
    entries: &[(LedgerEntry, Placement)],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_ledger
             (order_id, product_id, kind, quantity, applied, counted, queued, stock_delta,
              reserved_under)
         SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::INT[], $5::BOOL[],
                              $6::BOOL[], $7::BIGINT[], $8::INT[], $9::BIGINT[])",
    )
    .bind(entries.iter().map(|e| e.0.order_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.0.product_id).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.0.kind.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|e| e.0.quantity).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.0.applied).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.0.counted).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.1.queued).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.1.stock_delta).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.1.reserved_under)
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
