//! A product as stored and answered, and what every catalog handler needs of one: its id from a
//! path, reading it, and the refusal of a change by someone else than its seller.

use crate::{error::ApiError, state::AppState};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_domain::ProductId;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Integer minor units (cents).
    pub price_cents: i64,
    pub available_quantity: i32,
    pub image_url: Option<String>,
    pub category: String,
    pub seller_id: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the product goes on sale (RFC 3339); `null` when it is on sale. Carts may hold it
    /// before; a checkout with it is refused (409 `not_on_sale_yet`) until the database's clock,
    /// the one every API replica shares, reaches it.
    pub sale_starts_at: Option<DateTime<Utc>>,
    /// The most units one shopper may hold across their orders (cancelled and rejected orders
    /// give theirs back once their units are back in stock); `null` for no limit. An order
    /// asking for more is rejected, its line with `reason_code` `limit_exceeded`.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub max_per_shopper: Option<i32>,
}

pub(crate) const COLUMNS: &str =
    "id, name, description, price_cents, available_quantity, image_url, \
                       category, seller_id, version, created_at, updated_at, sale_starts_at, \
                       max_per_shopper";

/// A product id from a path: anything that is not a positive integer names no product.
pub fn product_id(raw: i64) -> Result<ProductId, ApiError> {
    ProductId::new(raw).map_err(|_| ApiError::not_found("product"))
}

/// A product id from a path segment: anything but a positive integer names no product (404).
pub(crate) fn product_in_path(raw: &str) -> Result<ProductId, ApiError> {
    product_id(raw.parse().map_err(|_| ApiError::not_found("product"))?)
}

pub async fn find(state: &AppState, id: ProductId) -> Result<Option<Product>, ApiError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(&state.db)
            .await?,
    )
}

pub(crate) fn not_seller() -> ApiError {
    ApiError::client(
        StatusCode::FORBIDDEN,
        "not_seller",
        "only the product's seller may change it",
    )
}
