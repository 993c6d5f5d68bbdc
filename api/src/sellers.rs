//! What a seller sees of their own products: stock and sales per product, and the order lines
//! that bought them, newest first (read through `shop_infra::orders::view`). A seller is any user
//! who listed a product.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Json, Query},
    paging::{next_page, page_limit, Cursor},
    sessions::CurrentUser,
    state::AppState,
};
use axum::{extract::State, routing::get, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_domain::{LineStatus, OrderStatus};
use shop_infra::orders::view;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sellers/me/products", get(products))
        .route("/sellers/me/orders", get(orders))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One of the seller's products with its stock and sales.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub(crate) struct SellerProduct {
    id: i64,
    name: String,
    category: String,
    price_cents: i64,
    /// Units that can still be bought.
    available_quantity: i32,
    /// Units of CONFIRMED orders.
    units_sold: i64,
    /// Units taken by orders still PENDING (their other lines are being decided).
    units_reserved: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SellerProductPage {
    items: Vec<SellerProduct>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /sellers/me/products`: the signed-in seller's products in id order.
#[utoipa::path(get, path = "/sellers/me/products", tag = "sellers", security(("session" = [])), params(PageQuery), responses(
    (status = 200, description = "One page of the seller's products", body = SellerProductPage),
    (status = 400, description = "`invalid_cursor` or `invalid_query`", body = ErrorBody),
    crate::error::responses::NoSession,
    (status = 422, description = "`invalid_limit`", body = ErrorBody),
))]
pub(crate) async fn products(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<SellerProductPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = Cursor::after_id(query.cursor.as_deref())?;
    let mut items: Vec<SellerProduct> =
        view::seller_products(&state.db, user.id, after, limit + 1).await?;
    let next_cursor = next_page(&mut items, limit, |p| Cursor::After(p.id));
    Ok(Json(SellerProductPage { items, next_cursor }))
}

/// One order line for one of the seller's products.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub(crate) struct SellerOrderLine {
    order_id: Uuid,
    #[sqlx(try_from = "String")]
    order_status: OrderStatus,
    ordered_at: DateTime<Utc>,
    product_id: i64,
    product_name: String,
    quantity: i32,
    unit_price_cents: i64,
    /// `PENDING` (not decided yet), `RESERVED` (units taken), `SHORT`, `RELEASED` (units given
    /// back after a rejection or a cancel) or `CANCELLED` (cancelled before it was decided).
    #[sqlx(try_from = "String")]
    line_status: LineStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SellerOrderPage {
    items: Vec<SellerOrderLine>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    line_id: i64,
    #[sqlx(flatten)]
    line: SellerOrderLine,
}

/// `GET /sellers/me/orders`: the order lines of the signed-in seller's products, newest first.
#[utoipa::path(get, path = "/sellers/me/orders", tag = "sellers", security(("session" = [])), params(PageQuery), responses(
    (status = 200, description = "One page of order lines", body = SellerOrderPage),
    (status = 400, description = "`invalid_cursor` or `invalid_query`", body = ErrorBody),
    crate::error::responses::NoSession,
    (status = 422, description = "`invalid_limit`", body = ErrorBody),
))]
pub(crate) async fn orders(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<SellerOrderPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before = Cursor::before_id(query.cursor.as_deref())?;
    let mut rows: Vec<LineRow> = view::seller_lines(&state.db, user.id, before, limit + 1).await?;
    let next_cursor = next_page(&mut rows, limit, |r| Cursor::Before(r.line_id));
    Ok(Json(SellerOrderPage {
        items: rows.into_iter().map(|r| r.line).collect(),
        next_cursor,
    }))
}
