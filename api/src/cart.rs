//! The signed-in user's cart. It lives in PostgreSQL, so it survives API restarts and a flushed
//! Redis. Every change is one statement: concurrent adds to one line never lose an update, and
//! a line that would pass the per-line maximum is refused by the table's CHECK.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Integer, Json},
    products::store::product_id,
    sessions::CurrentUser,
    state::AppState,
};
use axum::{
    extract::State,
    routing::{get, post},
    Router,
};
use serde::{Deserialize, Serialize};
use shop_domain::{Money, Quantity, UserId};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(show))
        .route("/cart/add", post(add))
        .route("/cart/update", post(update))
        .route("/cart/remove", post(remove))
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct CartLine {
    pub product_id: i64,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i32,
    #[sqlx(skip)]
    pub line_total_cents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Cart {
    pub items: Vec<CartLine>,
    pub total_cents: i64,
}

impl Cart {
    fn from_lines(mut items: Vec<CartLine>) -> Result<Self, ApiError> {
        let mut totals = Vec::with_capacity(items.len());
        for line in &mut items {
            let price = Money::new(line.unit_price_cents)?;
            let total = price.times(Quantity::new(line.quantity.into())?);
            line.line_total_cents = total.minor_units();
            totals.push(total);
        }
        Ok(Self {
            items,
            total_cents: Money::sum(totals).minor_units(),
        })
    }
}

pub async fn load(state: &AppState, user: UserId) -> Result<Cart, ApiError> {
    let lines: Vec<CartLine> = sqlx::query_as(
        // Each line's product by its key, as in checkout's cart snapshot (a join hashed the
        // whole products table while the catalog was small).
        "SELECT c.product_id, p.name, p.price_cents AS unit_price_cents, c.quantity
         FROM cart_items c
         CROSS JOIN LATERAL (SELECT name, price_cents FROM products WHERE id = c.product_id OFFSET 0) p
         WHERE c.user_id = $1
         ORDER BY c.added_at, c.product_id",
    )
    .bind(user.get())
    .fetch_all(&state.db)
    .await?;
    Cart::from_lines(lines)
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LineChange {
    #[schema(value_type = i64, minimum = 1)]
    product_id: Integer,
    /// `/cart/add`: 1 to 100 units to add (the line may hold at most 100).
    #[schema(value_type = i64, minimum = 1, maximum = 100)]
    quantity: Integer,
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LineSet {
    #[schema(value_type = i64, minimum = 1)]
    product_id: Integer,
    /// `/cart/update`: the line's quantity, 0 to 100; 0 removes the line.
    #[schema(value_type = i64, minimum = 0, maximum = 100)]
    quantity: Integer,
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LineRef {
    #[schema(value_type = i64, minimum = 1)]
    product_id: Integer,
}

/// `GET /cart`: lines with product name, unit price, line total, and the cart total.
#[utoipa::path(get, path = "/cart", tag = "cart", security(("session" = [])), responses(
    (status = 200, description = "The signed-in user's cart", body = Cart),
    crate::error::responses::NoSession,
))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Cart>, ApiError> {
    Ok(Json(load(&state, user.id).await?))
}

/// How a change meets an existing line.
#[derive(Clone, Copy)]
enum Merge {
    /// `POST /cart/add`: add to the line's quantity.
    Add,
    /// `POST /cart/update`: replace it.
    Set,
}

/// Creates or changes a line in one statement. A sum past the per-line maximum violates
/// `cart_items_quantity_range` (422); an unknown product violates the foreign key (404).
async fn write_line(
    state: &AppState,
    user: UserId,
    product: i64,
    quantity: Quantity,
    merge: Merge,
) -> Result<Json<Cart>, ApiError> {
    let on_conflict = match merge {
        Merge::Add => "cart_items.quantity + EXCLUDED.quantity",
        Merge::Set => "EXCLUDED.quantity",
    };
    // A new line is written only while the cart has room for it (`MAX_CART_LINES`); two
    // concurrent adds of new lines by one user may pass the bound by one.
    let written = sqlx::query(&format!(
        "INSERT INTO cart_items (user_id, product_id, quantity)
         SELECT $1, $2, $3
         WHERE EXISTS (SELECT 1 FROM cart_items WHERE user_id = $1 AND product_id = $2)
            OR (SELECT count(*) FROM cart_items WHERE user_id = $1) < $4
         ON CONFLICT ON CONSTRAINT cart_items_pkey DO UPDATE SET quantity = {on_conflict}"
    ))
    .bind(user.get())
    .bind(product)
    .bind(i32::from(quantity))
    .bind(state.settings.max_cart_lines)
    .execute(&state.db)
    .await?
    .rows_affected();
    if written == 0 {
        return Err(ApiError::unprocessable(
            "too_many_lines",
            format!(
                "a cart holds at most {} different products",
                state.settings.max_cart_lines
            ),
        ));
    }
    Ok(Json(load(state, user).await?))
}

/// `POST /cart/add {product_id, quantity}`: adds to the line, creating it if needed.
#[utoipa::path(post, path = "/cart/add", tag = "cart", security(("session" = [])), request_body = LineChange, responses(
    (status = 200, description = "The cart after the change", body = Cart),
    crate::error::responses::NoSession,
    crate::error::responses::NoSuchProduct,
    (status = 422, description = "`invalid_quantity`, `quantity_too_large` or `too_many_lines`", body = ErrorBody),
))]
pub(crate) async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<LineChange>,
) -> Result<Json<Cart>, ApiError> {
    let quantity = Quantity::new(body.quantity.0)?;
    let product = product_id(body.product_id.0)?;
    write_line(&state, user.id, product.get(), quantity, Merge::Add).await
}

/// `POST /cart/update {product_id, quantity}`: sets the line's quantity; 0 removes the line.
#[utoipa::path(post, path = "/cart/update", tag = "cart", security(("session" = [])), request_body = LineSet, responses(
    (status = 200, description = "The cart after the change", body = Cart),
    crate::error::responses::NoSession,
    crate::error::responses::NoSuchProduct,
    (status = 422, description = "`invalid_quantity` or `too_many_lines`", body = ErrorBody),
))]
pub(crate) async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<LineSet>,
) -> Result<Json<Cart>, ApiError> {
    let product = product_id(body.product_id.0)?;
    if body.quantity.0 == 0 {
        return remove_line(&state, user.id, product.get()).await;
    }
    let quantity = Quantity::new(body.quantity.0)?;
    write_line(&state, user.id, product.get(), quantity, Merge::Set).await
}

/// `POST /cart/remove {product_id}`: removes the line. Removing a line that is not in the cart
/// is not an error; naming a product that does not exist is (404).
#[utoipa::path(post, path = "/cart/remove", tag = "cart", security(("session" = [])), request_body = LineRef, responses(
    (status = 200, description = "The cart after the change", body = Cart),
    crate::error::responses::NoSession,
    crate::error::responses::NoSuchProduct,
))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<LineRef>,
) -> Result<Json<Cart>, ApiError> {
    let product = product_id(body.product_id.0)?;
    remove_line(&state, user.id, product.get()).await
}

async fn remove_line(state: &AppState, user: UserId, product: i64) -> Result<Json<Cart>, ApiError> {
    let removed = sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2")
        .bind(user.get())
        .bind(product)
        .execute(&state.db)
        .await?
        .rows_affected();
    if removed == 0 {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)")
                .bind(product)
                .fetch_one(&state.db)
                .await?;
        if !exists {
            return Err(ApiError::not_found("product"));
        }
    }
    Ok(Json(load(state, user).await?))
}
