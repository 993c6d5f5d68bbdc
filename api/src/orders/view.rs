//! An order as its buyer sees it (its summary, its lines), read through
//! `shop_infra::orders::view`, and what every order endpoint needs: the order id from a path and
//! the rule that someone else's order is indistinguishable from none.

use crate::{error::ApiError, state::AppState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shop_domain::{order::UnknownStatus, LineReason, LineStatus, OrderStatus, UserId};
use shop_infra::orders::view;
use sqlx::{postgres::PgRow, FromRow, Row};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct OrderSummary {
    pub id: Uuid,
    /// PENDING, then CONFIRMED or REJECTED; CANCELLED by the buyer (from PENDING or CONFIRMED).
    #[sqlx(try_from = "String")]
    pub status: OrderStatus,
    pub total_cents: i64,
    pub delivery_address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i32,
    pub price_at_purchase_cents: i64,
    /// PENDING, RESERVED, SHORT (refused, with `reason_code` and `reason`), RELEASED (its units
    /// went back after a rejection or a cancel), or CANCELLED (its order was cancelled before the
    /// line was decided).
    pub status: LineStatus,
    /// Why a SHORT line was refused: `insufficient_stock`, `limit_exceeded` (the product's
    /// `max_per_shopper`, counting your other orders), or `unprocessable`; `null` otherwise.
    pub reason_code: Option<LineReason>,
    /// The same, written for people; may change.
    pub reason: Option<String>,
}

/// Read by hand: sqlx's derive cannot convert an optional column (`reason_code`) to a domain
/// type.
impl<'r> FromRow<'r, PgRow> for OrderLine {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let decode = |e: UnknownStatus| sqlx::Error::Decode(Box::new(e));
        let status: String = row.try_get("status")?;
        let reason_code: Option<String> = row.try_get("reason_code")?;
        Ok(Self {
            product_id: row.try_get("product_id")?,
            quantity: row.try_get("quantity")?,
            price_at_purchase_cents: row.try_get("price_at_purchase_cents")?,
            status: LineStatus::try_from(status).map_err(decode)?,
            reason_code: reason_code
                .map(LineReason::try_from)
                .transpose()
                .map_err(decode)?,
            reason: row.try_get("reason")?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderSummary,
    pub items: Vec<OrderLine>,
}

/// An order id from a path; anything else names no order.
pub(crate) fn order_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("order"))
}

/// The order, if it belongs to `user`. Someone else's order is indistinguishable from none (404).
pub(crate) async fn owned_order(
    state: &AppState,
    user: UserId,
    id: Uuid,
) -> Result<OrderSummary, ApiError> {
    view::order(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))
}

/// The order with its lines, if it belongs to `user`.
pub(crate) async fn show_order(
    state: &AppState,
    user: UserId,
    id: Uuid,
) -> Result<OrderDetail, ApiError> {
    let order = owned_order(state, user, id).await?;
    let items = view::lines(&state.db, order.id).await?;
    Ok(OrderDetail { order, items })
}
