//! The catalog: keyset-paged listing, cached reads, and sellers' writes.
//!
//! Any signed-in user may list products for sale and becomes their seller; only the seller may
//! change a product. Reads go through Redis (cache-aside, versioned, see `shop_infra::cache`);
//! every write refreshes the cached copy. The available quantity changes with every checkout, so
//! it is cached apart (`stock:<id>`, kept by the checkout worker) and laid over the cached product
//! when it is newer. In front of Redis, each process keeps answers for up to
//! `PRODUCT_LOCAL_CACHE_MS` ([`crate::local_cache`]). The stock is written only by the product's
//! lane: a seller's restock and absolute stock are commands on it ([`lane`]). A product as stored
//! and answered is in [`store`]; request bodies in [`fields`], search in `search`, drawn images in
//! [`image`], restocks in [`restock`].

pub(crate) mod fields;
pub(crate) mod image;
pub(crate) mod lane;
pub(crate) mod restock;
mod search;
pub(crate) mod store;

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Json, Path, Query},
    idempotency,
    metrics::cache_lookup,
    paging::{next_page, page_limit, Cursor},
    products::{
        fields::{CreateProduct, NewProduct, ProductChanges, UpdateProduct},
        store::{find, not_seller, product_in_path, Product, COLUMNS},
    },
    sessions::CurrentUser,
    state::AppState,
};
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde::{Deserialize, Serialize};
use shop_domain::{messages::InventoryCommand, OrderId, ProductId, UserId};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(list).post(create))
        .route("/products/{id}", get(show).patch(update))
        .route("/products/{id}/image.svg", get(image::drawn))
        .route("/products/{id}/restock", post(restock::restock))
        .route("/categories", get(categories))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Full-text search over name and description: every word matches as a prefix
    /// (`kett` finds kettles), a word typed with a typo still finds the name, results ranked
    /// best first; the pages end after the first 2,000 matches. 1 to 100 characters; one
    /// without a letter or digit matches nothing.
    #[param(min_length = 1, max_length = 100)]
    q: Option<String>,
    /// Only products of this category slug.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
    category: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductPage {
    items: Vec<Product>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /products?q=&category=&limit=&cursor=`: products in id order; with `q`, the matches
/// ranked best first. In id order a cursor marks the last id seen, so products added while a
/// client pages never shift or repeat what it has seen; a search cursor counts the results seen.
#[utoipa::path(get, path = "/products", tag = "catalog", params(ListQuery), responses(
    (status = 200, description = "One page of products", body = ProductPage),
    (status = 400, description = "`invalid_cursor` or `invalid_query`", body = ErrorBody),
    (status = 422, description = "`invalid_limit`, `invalid_category` or `invalid_search`", body = ErrorBody),
))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let category = query
        .category
        .as_deref()
        .map(fields::category)
        .transpose()?;
    if let Some(q) = query.q.as_deref() {
        let seen = Cursor::seen(query.cursor.as_deref())?;
        let mut items = search::run(&state.db, q, category.as_deref(), seen, limit + 1).await?;
        let next_cursor = next_page(&mut items, limit, |_| Cursor::Seen(seen + limit));
        return Ok(Json(ProductPage { items, next_cursor }));
    }
    let after = Cursor::after_id(query.cursor.as_deref())?;
    // Two statements, not one with `$1 IS NULL OR …`: each keeps its own index plan.
    let mut items: Vec<Product> = match category {
        Some(category) => {
            sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM products WHERE category = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
            .bind(category)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(&state.db)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(after)
            .bind(limit + 1)
            .fetch_all(&state.db)
            .await?
        }
    };
    let next_cursor = next_page(&mut items, limit, |p| Cursor::After(p.id));
    Ok(Json(ProductPage { items, next_cursor }))
}

/// A category and how many of its products there are.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub(crate) struct CategoryCount {
    /// The slug, as `GET /products?category=` takes it.
    category: String,
    /// Products with at least one unit available.
    in_stock: i64,
    /// All its products, sold out or not.
    products: i64,
}

/// `GET /categories`: every category, in name order, with its number of products in stock.
///
/// Counting reads every product (18 ms at 100,000, BENCHMARKS.md), and the storefront asks with
/// every page it shows, so each process keeps the answer for `PRODUCT_LOCAL_CACHE_MS`; a product
/// listed or changed through this process drops it at once.
#[utoipa::path(get, path = "/categories", tag = "catalog", responses(
    (status = 200, description = "Every category", body = [CategoryCount]),
))]
pub(crate) async fn categories(State(state): State<AppState>) -> Result<Response, ApiError> {
    if let Some(json) = state.local_categories.get(CATEGORIES) {
        return Ok(json_response(StatusCode::OK, json));
    }
    let counts: Vec<CategoryCount> = sqlx::query_as(
        "SELECT category, count(*) FILTER (WHERE available_quantity > 0) AS in_stock,
                count(*) AS products
         FROM products GROUP BY category ORDER BY category",
    )
    .fetch_all(&state.db)
    .await?;
    let json = serde_json::to_vec(&counts).map_err(|e| ApiError::Internal(e.into()))?;
    let json = axum::body::Bytes::from(json);
    state.local_categories.put(CATEGORIES, json.clone());
    Ok(json_response(StatusCode::OK, json))
}

/// The key of the one entry in `AppState::local_categories`.
const CATEGORIES: i64 = 0;

fn json_response(status: StatusCode, json: impl Into<axum::body::Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json.into(),
    )
        .into_response()
}

/// `GET /products/{id}`: from Redis when cached, else from PostgreSQL (then cached). Redis being
/// down slows this path but does not fail it.
#[utoipa::path(get, path = "/products/{id}", tag = "catalog", params(("id" = i64, Path, description = "Product id", minimum = 1)), responses(
    (status = 200, description = "The product, with its available quantity", body = Product),
    crate::error::responses::NoSuchProduct,
))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = product_in_path(&id)?;
    if let Some(json) = state.local_products.get(id.get()) {
        cache_lookup("local");
        return Ok(json_response(StatusCode::OK, json));
    }
    let json = read_through(&state, id).await?;
    let json = axum::body::Bytes::from(json);
    state.local_products.put(id.get(), json.clone());
    Ok(json_response(StatusCode::OK, json))
}

/// The product's JSON from Redis when cached there, else from PostgreSQL (then cached).
async fn read_through(state: &AppState, id: ProductId) -> Result<String, ApiError> {
    let keys = [state.keys.product(id.get()), state.keys.stock(id.get())];
    let (cached, stock) = match state.cache.get_many(&keys).await {
        Ok(mut found) => {
            let stock = found.pop().flatten();
            (found.pop().flatten(), stock)
        }
        Err(error) => {
            cache_lookup("error");
            shop_infra::metrics::client_error("redis", "cache_read");
            tracing::warn!(%error, "product cache read failed; reading PostgreSQL");
            (None, None)
        }
    };
    if let Some(entry) = cached {
        cache_lookup("hit");
        let json = match stock.filter(|s| s.version > entry.version) {
            None => entry.value,
            Some(stock) => {
                let mut product: Product =
                    serde_json::from_str(&entry.value).map_err(|e| ApiError::Internal(e.into()))?;
                product.available_quantity =
                    stock.value.parse().unwrap_or(product.available_quantity);
                product.version = stock.version;
                serde_json::to_string(&product).map_err(|e| ApiError::Internal(e.into()))?
            }
        };
        return Ok(json);
    }
    cache_lookup("miss");
    let product = find(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    publish(state, &product).await
}

/// Serialises a product and offers it, and its stock, to the cache at its version (this
/// process's copy is dropped, to be read afresh). Returns the JSON.
async fn publish(state: &AppState, product: &Product) -> Result<String, ApiError> {
    state.local_products.remove(product.id);
    let json = serde_json::to_string(product).map_err(|e| ApiError::Internal(e.into()))?;
    let entries = [
        (
            state.keys.product(product.id),
            product.version,
            json.clone(),
        ),
        (
            state.keys.stock(product.id),
            product.version,
            product.available_quantity.to_string(),
        ),
    ];
    if let Err(error) = state.cache.put_many_if_newer(&entries).await {
        shop_infra::metrics::client_error("redis", "cache_write");
        tracing::warn!(%error, product_id = product.id, "product cache write failed");
    }
    Ok(json)
}

/// `POST /products`: the signed-in user lists a product and becomes its seller, maybe as a drop:
/// on sale from `sale_starts_at`, at most `max_per_shopper` units to each shopper.
#[utoipa::path(post, path = "/products", tag = "catalog", security(("session" = [])), request_body = CreateProduct, responses(
    (status = 201, description = "Listed", body = Product,
        headers(("Location" = String, description = "The product's URL"))),
    crate::error::responses::NoSession,
    (status = 422, description = "A field failed validation", body = ErrorBody),
))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateProduct>,
) -> Result<Response, ApiError> {
    let new = NewProduct::try_from(body)?;
    let product: Product = sqlx::query_as(&format!(
        "INSERT INTO products (name, description, price_cents, available_quantity, image_url, category,
                               seller_id, sale_starts_at, max_per_shopper)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    ))
    .bind(&new.name)
    .bind(&new.description)
    .bind(new.price.minor_units())
    .bind(new.available_quantity)
    .bind(&new.image_url)
    .bind(&new.category)
    .bind(user.id.get())
    .bind(new.sale_starts_at)
    .bind(new.max_per_shopper.map(i32::from))
    .fetch_one(&state.db)
    .await?;
    state.local_categories.remove(CATEGORIES);
    let location = format!("/products/{}", product.id);
    let json = publish(&state, &product).await?;
    let mut response = json_response(StatusCode::CREATED, json);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Where a new `available_quantity` stands when `PATCH /products/{id}` answers without the
/// product's lane having applied it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StockUpdate {
    /// Queued on the product's lane, not applied yet (the lane is busy or down): the stock shown
    /// is the one before it (202).
    Pending,
    /// The lane did not apply it: a newer count reached the lane first. The stock shown is the
    /// one the lane left (200).
    Superseded,
}

/// `PATCH /products/{id}` when its new stock was not applied: the product after the other
/// changes, and where the new stock stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StockPending {
    #[serde(flatten)]
    product: Product,
    stock_update: StockUpdate,
}

/// `PATCH /products/{id}`: the seller changes any of the fields (price, stock, sale start,
/// per-shopper limit, …; `null` clears the last two). With `expected_version`, the change applies
/// only if nobody changed the product since (else 409).
///
/// A new `available_quantity` is the seller's count of the shelf. It is not written here: it is
/// queued, in the same transaction as the other changes, as a `set` command on the product's lane
/// (the checkout worker that applies every change of its stock), and the request waits up to 3 s
/// for the lane: 200 with the product as the lane left it, or 202 with `stock_update: PENDING`
/// (the other changes are made; the stock shown is the one before). The lane orders the count by
/// when it was queued, not by when it arrives: a buyer's cancelled units or a restock queued
/// before it are in the count (they do not come on top of it, even when they reach the lane after
/// it), and checkouts and restocks queued after it keep their effect on top of it (the stock never
/// goes below 0). A checkout queued before the count that had not taken its units yet takes them
/// from the count: the lane cannot know whether the count held them, and never sells a unit twice.
/// A count queued before another one that the lane applied first changes nothing: 200 with the
/// stock as the lane left it and `stock_update: SUPERSEDED`. No
/// `expected_version` is needed for the stock: it guards nothing the lane does not. A repeated
/// `Idempotency-Key` queues the same count once (adding units is `POST /products/{id}/restock`).
#[utoipa::path(patch, path = "/products/{id}", tag = "catalog", security(("session" = [])),
    params(
        ("id" = i64, Path, description = "Product id", minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters; repeating a change of \
                `available_quantity` with the same key sets the stock once"),
    ),
    request_body = UpdateProduct, responses(
    (status = 200, description = "The product after the change; with `available_quantity`, after the product's lane applied the new stock (among the checkouts, releases and restocks queued around it), or with `stock_update: SUPERSEDED` when the lane applied a newer count first and left this one unapplied (the stock shown is as the lane left it)", body = Product),
    (status = 202, description = "The other changes are made and the new `available_quantity` is queued on the product's lane, which has not applied it within 3 s: the product as it is now (its stock the one before), with `stock_update: PENDING`", body = StockPending),
    (status = 400, description = "`invalid_idempotency_key`, `malformed_json`", body = ErrorBody),
    crate::error::responses::NoSession,
    crate::error::responses::NotSeller,
    crate::error::responses::NoSuchProduct,
    (status = 409, description = "`version_conflict`, or `idempotency_key_reused` (the key set another stock)", body = ErrorBody),
    (status = 422, description = "A field failed validation", body = ErrorBody),
))]
pub(crate) async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<UpdateProduct>,
) -> Result<Response, ApiError> {
    let id = product_in_path(&id)?;
    let key = idempotency::key(&headers)?;
    let changes = ProductChanges::try_from(body)?;
    let set = changes.available_quantity.map(|count| {
        let set_id = idempotency::derived_id("stock-set", user.id, id, key.as_ref());
        InventoryCommand::set(OrderId::from_uuid(set_id), id, count)
    });
    if let Some(set) = set.filter(|_| key.is_some()) {
        if let Some(earlier) = lane::decision(&state, &set)
            .await?
            .filter(|d| d.quantity != i32::from(set.quantity))
        {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                format!(
                    "this Idempotency-Key already set the stock to {}; use a new key",
                    earlier.quantity
                ),
            ));
        }
    }
    // The fields and the set commit together: a refused change queues nothing.
    let mut tx = state.db.begin().await?;
    let Some(product) = write_changes(&mut tx, id, user.id, &changes).await? else {
        drop(tx);
        return Err(why_unchanged(&state, id, user.id, changes.expected_version).await?);
    };
    if let Some(set) = &set {
        lane::queue(&mut tx, set).await?;
    }
    tx.commit().await?;
    state.local_categories.remove(CATEGORIES);
    let json = publish(&state, &product).await?;
    let Some(set) = set else {
        return Ok(json_response(StatusCode::OK, json));
    };
    let Some(decided) = lane::wait_for_lane(&state, &set).await? else {
        let pending = StockPending {
            product,
            stock_update: StockUpdate::Pending,
        };
        return Ok((StatusCode::ACCEPTED, axum::Json(pending)).into_response());
    };
    // As the lane left it (the categories' counts may have moved with the stock).
    state.local_categories.remove(CATEGORIES);
    let now = find(&state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    let json = publish(&state, &now).await?;
    if decided.applied {
        return Ok(json_response(StatusCode::OK, json));
    }
    let superseded = StockPending {
        product: now,
        stock_update: StockUpdate::Superseded,
    };
    Ok((StatusCode::OK, axum::Json(superseded)).into_response())
}

/// Writes the changed fields but the stock (see [`update`]) and raises the version (so two
/// changes decided from one version cannot both apply), if `seller` sells the product and it is
/// still at `expected_version` (when given). `None` when not.
async fn write_changes(
    conn: &mut PgConnection,
    id: ProductId,
    seller: UserId,
    changes: &ProductChanges,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE products SET
            name = COALESCE($3, name),
            description = COALESCE($4, description),
            price_cents = COALESCE($5, price_cents),
            image_url = COALESCE($6, image_url),
            category = COALESCE($7, category),
            sale_starts_at = CASE WHEN $9 THEN $10 ELSE sale_starts_at END,
            max_per_shopper = CASE WHEN $11 THEN $12 ELSE max_per_shopper END,
            version = version + 1,
            updated_at = now()
         WHERE id = $1 AND seller_id = $2 AND ($8::BIGINT IS NULL OR version = $8)
         RETURNING {COLUMNS}"
    ))
    .bind(id.get())
    .bind(seller.get())
    .bind(&changes.name)
    .bind(&changes.description)
    .bind(changes.price.map(|p| p.minor_units()))
    .bind(&changes.image_url)
    .bind(&changes.category)
    .bind(changes.expected_version)
    .bind(changes.sale_starts_at.is_some())
    .bind(changes.sale_starts_at.flatten())
    .bind(changes.max_per_shopper.is_some())
    .bind(changes.max_per_shopper.flatten().map(i32::from))
    .fetch_optional(conn)
    .await
}

/// Why [`write_changes`] changed nothing: no such product (404), someone else's (403), or a
/// version other than `expected` (409).
async fn why_unchanged(
    state: &AppState,
    id: ProductId,
    user: UserId,
    expected: Option<i64>,
) -> Result<ApiError, ApiError> {
    let existing = find(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    Ok(if existing.seller_id != user.get() {
        not_seller()
    } else {
        ApiError::conflict(
            "version_conflict",
            format!(
                "the product changed since version {}; it is now at version {}",
                expected.unwrap_or_default(),
                existing.version
            ),
        )
    })
}
