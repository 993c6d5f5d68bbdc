//! An order as its buyer sees it (its summary, its lines), read through
//! `shop_infra::orders::view`, with its place in line while PENDING ([`crate::orders::place`]),
//! and what every order endpoint needs: the order id from a path and the rule that someone else's
//! order is indistinguishable from none.

use crate::{error::ApiError, orders::place, state::AppState};
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
    /// While the order is PENDING: the product's available units as its lane last published them
    /// (this line's reserve not yet taken if it is still to be decided). `null` once the order is
    /// decided or cancelled, and while unknown.
    #[schema(minimum = 0)]
    pub remaining: Option<i64>,
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
            remaining: None,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderSummary,
    pub items: Vec<OrderLine>,
    /// While the order is PENDING: how many inventory commands (other shoppers' reserves,
    /// releases, sellers' restocks) stand before this order's lines in their products' lanes, as
    /// the lanes last published their progress; for lines in several lanes, the most. 0 once its
    /// lines are next or being decided. `null` once the order is decided or cancelled, and while
    /// unknown (just accepted and not yet queued, or the place cannot be read).
    #[schema(minimum = 0)]
    pub ahead: Option<i64>,
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

/// The order with its lines, if it belongs to `user`; while it is PENDING, with its place in
/// line as Redis has it (unknown when Redis does not answer).
pub(crate) async fn show_order(
    state: &AppState,
    user: UserId,
    id: Uuid,
) -> Result<OrderDetail, ApiError> {
    let order = owned_order(state, user, id).await?;
    let mut items: Vec<OrderLine> = view::lines(&state.db, order.id).await?;
    let mut ahead = None;
    if order.status == OrderStatus::Pending {
        let products: Vec<i64> = items.iter().map(|line| line.product_id).collect();
        if let Some(found) = place::read(state, order.id, &products).await {
            ahead = found.ahead;
            for (line, remaining) in items.iter_mut().zip(found.remaining) {
                line.remaining = remaining;
            }
        }
    }
    Ok(OrderDetail {
        order,
        items,
        ahead,
    })
}

/// The products of order `id`'s lines, in product-id order.
pub(crate) async fn products_of(state: &AppState, id: Uuid) -> Result<Vec<i64>, ApiError> {
    let lines: Vec<OrderLine> = view::lines(&state.db, id).await?;
    Ok(lines.into_iter().map(|line| line.product_id).collect())
}
