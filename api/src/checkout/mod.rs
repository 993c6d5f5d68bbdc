//! `POST /orders/checkout`: the cart becomes an order.
//!
//! Every strategy shares what happens before stock is taken (the request, the Idempotency-Key,
//! the cart snapshot, the hot inventory's early refusal) and how an order and its lines are
//! written. `CHECKOUT_STRATEGY` picks how stock is taken:
//! - `queue` (the default, [`queue`]): the order is recorded PENDING with its reserve commands in
//!   the outbox, answered 202, and decided by the checkout worker that owns each product's
//!   partition;
//! - `optimistic`, `redis-lock`, `row-lock` ([`locking`]): the order is decided in the request
//!   and answered 201 CONFIRMED, or 409 with the short lines.

mod intake;
mod locking;
mod queue;

pub use intake::Intake;

use crate::{
    error::{ApiError, ErrorBody},
    extract::RawBody,
    metrics,
    sessions::CurrentUser,
    startup::AppState,
};
use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shop_domain::{
    messages::{EventLine, OrderEvent, OrderStatus, ShortLine},
    IdempotencyKey, Money, OrderId, ProductId, Quantity, UserId,
};
use shop_infra::outbox::{self, Columns};
use sqlx::PgConnection;
use std::{collections::HashMap, fmt, str::FromStr};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/orders/checkout", post(checkout))
}

/// How checkout takes stock (`CHECKOUT_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The Kafka pipeline: asynchronous, 202.
    Queue,
    /// Read the version, update `WHERE version = $v`, retry with jitter.
    Optimistic,
    /// A Redis lock per product (in id order), the stock change still guarded in PostgreSQL.
    RedisLock,
    /// `SELECT … FOR NO KEY UPDATE` in product-id order.
    RowLock,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Queue,
        Strategy::Optimistic,
        Strategy::RedisLock,
        Strategy::RowLock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Optimistic => "optimistic",
            Self::RedisLock => "redis-lock",
            Self::RowLock => "row-lock",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| "expected queue, optimistic, redis-lock or row-lock".to_owned())
    }
}

const MAX_ADDRESS_LEN: usize = 1000;

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct CheckoutRequest {
    /// 1 to 1000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    delivery_address: Option<String>,
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters
/// ([`IdempotencyKey`]), else 400 `invalid_idempotency_key`.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = IdempotencyKey::parse(value.as_bytes())
        .map_err(|error| ApiError::bad_request("invalid_idempotency_key", error.to_string()))?;
    Ok(Some(key.into_string()))
}

/// The body is optional: no body means no delivery address.
fn checkout_request(body: &Bytes) -> Result<CheckoutRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CheckoutRequest::default());
    }
    // `null` is no body too.
    let request: Option<CheckoutRequest> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable("invalid_body", e.to_string())
        } else {
            ApiError::bad_request("malformed_json", e.to_string())
        }
    })?;
    let request = request.unwrap_or_default();
    if let Some(address) = &request.delivery_address {
        if address.trim().is_empty()
            || address.chars().count() > MAX_ADDRESS_LEN
            || address.contains('\0')
        {
            return Err(ApiError::unprocessable(
                "invalid_delivery_address",
                "delivery_address must be 1 to 1000 characters, not all blank, without NUL",
            ));
        }
    }
    Ok(request)
}

#[derive(Debug, sqlx::FromRow)]
struct CartSnapshotLine {
    product_id: i64,
    quantity: i32,
    price_cents: i64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    product: ProductId,
    quantity: Quantity,
    price: Money,
}

impl TryFrom<CartSnapshotLine> for Line {
    type Error = ApiError;
    fn try_from(row: CartSnapshotLine) -> Result<Self, ApiError> {
        Ok(Self {
            product: ProductId::new(row.product_id)?,
            quantity: Quantity::new(row.quantity.into())?,
            price: Money::new(row.price_cents)?,
        })
    }
}

/// The lines whose product has less than the line asks for; `stock` maps product ids to their
/// available quantity (a product missing from it has none).
pub(crate) fn short_lines(lines: &[Line], stock: &HashMap<i64, i64>) -> Vec<ShortLine> {
    lines
        .iter()
        .filter_map(|line| {
            let available = stock.get(&line.product.get()).copied().unwrap_or(0);
            (available < i64::from(line.quantity.get())).then_some(ShortLine {
                product_id: line.product,
                requested: line.quantity.get(),
                available,
            })
        })
        .collect()
}

/// An order about to be written: the cart's lines (sorted by product id) at today's prices.
#[derive(Clone)]
pub(crate) struct NewOrder {
    id: OrderId,
    user: UserId,
    total: Money,
    delivery_address: Option<String>,
    idempotency_key: Option<String>,
    lines: Vec<Line>,
}

/// What [`NewOrder::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The order, its lines and its outbox rows are written, and its lines left the cart.
    Placed,
    /// The user already has an order with this idempotency key; nothing was written.
    KeyTaken,
    /// The cart no longer holds the snapshot's lines (another checkout took them, or the
    /// shopper changed them meanwhile); nothing was written.
    CartChanged,
}

impl Written {
    /// From what the statement saw: whether it inserted the order, and how many of the order's
    /// `lines` it found unchanged in the cart.
    fn from_outcome(inserted: bool, in_cart: i64, lines: i64) -> Self {
        if inserted {
            Self::Placed
        } else if in_cart == lines {
            Self::KeyTaken
        } else {
            Self::CartChanged
        }
    }
}

impl NewOrder {
    /// Writes the order with `status`, its lines and `messages` (its outbox rows), and takes its
    /// lines out of the cart ([`NewOrder::insert_all`] for one order): atomic on its own or within
    /// the caller's transaction.
    async fn insert(
        &self,
        conn: &mut PgConnection,
        status: OrderStatus,
        messages: &Columns,
    ) -> Result<Written, ApiError> {
        let outcomes = Self::insert_all(conn, &[(self, messages)], status).await?;
        outcomes
            .first()
            .map(|&(_, written)| written)
            .ok_or_else(|| ApiError::Internal("the insert lost its order".into()))
    }

    /// Writes `orders` with `status`, each with its lines and its outbox rows, and takes their
    /// lines out of their carts, in one statement: one round trip, one commit for all of them.
    /// Per order, the cart's lines are locked first and must still be the snapshot's, so two
    /// checkouts of one cart make one order; the unique constraint on the idempotency key settles
    /// concurrent retries. A rejected order's lines go back to the cart
    /// (`fulfilment::return_to_carts`). PENDING orders wake the relays (`NOTIFY` at commit); the
    /// synchronous strategies' events wait for a relay's next look. Returns each order's outcome.
    pub(super) async fn insert_all(
        conn: &mut PgConnection,
        orders: &[(&NewOrder, &Columns)],
        status: OrderStatus,
    ) -> Result<Vec<(Uuid, Written)>, sqlx::Error> {
        let lines: Vec<(Uuid, &Line)> = orders
            .iter()
            .flat_map(|(o, _)| o.lines.iter().map(move |l| (o.id.as_uuid(), l)))
            .collect();
        // The order each outbox row belongs to.
        let message_orders: Vec<Uuid> = orders
            .iter()
            .flat_map(|(o, m)| m.streams.iter().map(|_| o.id.as_uuid()))
            .collect();
        let message = |f: fn(&Columns) -> &Vec<String>| -> Vec<String> {
            orders
                .iter()
                .flat_map(|(_, m)| f(m).iter().cloned())
                .collect()
        };
        let rows: Vec<(Uuid, bool, i64, i32)> = sqlx::query_as(
            "WITH ord AS (
                 SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::INT[])
                     AS o(id, user_id, total, address, idem, n)
             ), l AS (
                 SELECT * FROM UNNEST($7::UUID[], $8::BIGINT[], $9::INT[], $10::BIGINT[]) AS l(o, p, q, c)
             ), cart AS (
                 SELECT ord.id AS o, c.user_id, c.product_id
                 FROM ord JOIN l ON l.o = ord.id
                 JOIN cart_items c ON c.user_id = ord.user_id AND c.product_id = l.p AND c.quantity = l.q
                 FOR UPDATE OF c
             ), matched AS (
                 SELECT ord.*, (SELECT count(*) FROM cart WHERE cart.o = ord.id) AS in_cart FROM ord
             ), o AS (
                 INSERT INTO orders (id, user_id, total_cents, delivery_address, idempotency_key,
                                     pending_lines, status, completed_at)
                 SELECT id, user_id, total, address, idem, CASE WHEN $16 = 'PENDING' THEN n ELSE 0 END,
                        $16, CASE WHEN $16 = 'PENDING' THEN NULL ELSE now() END
                 FROM matched WHERE in_cart = n
                 ON CONFLICT ON CONSTRAINT orders_user_idempotency_key DO NOTHING
                 RETURNING id
             ), lines AS (
                 INSERT INTO order_items (order_id, product_id, quantity, price_at_purchase, status)
                 SELECT l.o, l.p, l.q, l.c, CASE WHEN $16 = 'PENDING' THEN 'PENDING' ELSE 'RESERVED' END
                 FROM l JOIN o ON o.id = l.o
             ), messages AS (
                 INSERT INTO outbox (stream, message_key, payload)
                 SELECT m.s, m.k, m.p
                 FROM UNNEST($11::UUID[], $12::TEXT[], $13::TEXT[], $14::TEXT[]) AS m(o, s, k, p)
                 JOIN o ON o.id = m.o
             ), taken AS (
                 DELETE FROM cart_items c USING cart JOIN o ON o.id = cart.o
                 WHERE c.user_id = cart.user_id AND c.product_id = cart.product_id
             ), wake AS (
                 SELECT pg_notify($15, '') WHERE $16 = 'PENDING' AND EXISTS (SELECT 1 FROM o)
             )
             SELECT matched.id, o.id IS NOT NULL, matched.in_cart, matched.n
             FROM matched LEFT JOIN o ON o.id = matched.id, (SELECT count(*) FROM wake) AS woken",
        )
        .bind(orders.iter().map(|(o, _)| o.id.as_uuid()).collect::<Vec<_>>())
        .bind(orders.iter().map(|(o, _)| o.user.get()).collect::<Vec<_>>())
        .bind(orders.iter().map(|(o, _)| o.total.minor_units()).collect::<Vec<_>>())
        .bind(
            orders
                .iter()
                .map(|(o, _)| o.delivery_address.as_deref().map(str::trim))
                .collect::<Vec<_>>(),
        )
        .bind(
            orders
                .iter()
                .map(|(o, _)| o.idempotency_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(orders.iter().map(|(o, _)| o.lines.len() as i32).collect::<Vec<_>>())
        .bind(lines.iter().map(|(o, _)| *o).collect::<Vec<_>>())
        .bind(lines.iter().map(|(_, l)| l.product.get()).collect::<Vec<_>>())
        .bind(lines.iter().map(|(_, l)| i32::from(l.quantity)).collect::<Vec<_>>())
        .bind(lines.iter().map(|(_, l)| l.price.minor_units()).collect::<Vec<_>>())
        .bind(&message_orders)
        .bind(message(|c| &c.streams))
        .bind(message(|c| &c.keys))
        .bind(message(|c| &c.payloads))
        .bind(outbox::WRITTEN_CHANNEL)
        .bind(status.as_str())
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, placed, in_cart, lines)| {
                (id, Written::from_outcome(placed, in_cart, lines.into()))
            })
            .collect())
    }

    fn created_event(&self) -> OrderEvent {
        let lines = self
            .lines
            .iter()
            .map(|l| EventLine {
                product_id: l.product,
                quantity: l.quantity,
                price_cents: l.price.minor_units(),
            })
            .collect();
        OrderEvent::created(
            self.id,
            self.user,
            self.total.minor_units(),
            lines,
            Utc::now().timestamp_millis(),
        )
    }
}

/// How a checkout ended, for the response.
pub struct Placed {
    order_id: Uuid,
    status: OrderStatus,
    /// An earlier request with the same Idempotency-Key placed this order.
    pub replayed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlacedBody {
    order_id: Uuid,
    /// PENDING (queue) or CONFIRMED (the synchronous strategies); a replay shows the current one.
    status: OrderStatus,
    status_url: String,
    events_url: String,
}

impl Placed {
    fn into_response(self, strategy: Strategy) -> Response {
        let code = match strategy {
            Strategy::Queue => StatusCode::ACCEPTED,
            _ => StatusCode::CREATED,
        };
        let status_url = format!("/orders/{}", self.order_id);
        let body = PlacedBody {
            order_id: self.order_id,
            status: self.status,
            events_url: format!("{status_url}/events"),
            status_url: status_url.clone(),
        };
        let mut response = (code, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(location) = status_url.parse() {
            headers.insert(header::LOCATION, location);
        }
        if self.replayed {
            headers.insert(
                "idempotent-replayed",
                header::HeaderValue::from_static("true"),
            );
        }
        response
    }
}

/// The user's order placed earlier with this idempotency key, if any.
async fn existing_order(
    state: &AppState,
    user: UserId,
    key: &str,
) -> Result<Option<Placed>, ApiError> {
    let row: Option<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM orders WHERE user_id = $1 AND idempotency_key = $2")
            .bind(user.get())
            .bind(key)
            .fetch_optional(&state.db)
            .await?;
    row.map(|(order_id, status)| {
        Ok(Placed {
            order_id,
            status: OrderStatus::try_from(status)?,
            replayed: true,
        })
    })
    .transpose()
}

/// After [`NewOrder::insert`] wrote nothing: the order that took the key, or 409 when the cart
/// changed under this checkout with no order for its key.
async fn replay(state: &AppState, order: &NewOrder, written: Written) -> Result<Placed, ApiError> {
    if let Some(key) = order.idempotency_key.as_deref() {
        if let Some(placed) = existing_order(state, order.user, key).await? {
            return Ok(placed);
        }
    }
    match written {
        Written::CartChanged => Err(ApiError::conflict(
            "cart_changed",
            "the cart changed during checkout (another checkout may have taken it); see GET /orders and GET /cart",
        )),
        _ => Err(ApiError::Internal(
            "idempotency conflict without an order".into(),
        )),
    }
}

/// The cart's lines at today's prices (none when it is empty).
///
/// Each line's product is looked up by its key (`OFFSET 0` keeps the planner from turning the
/// lookup into a join): a plain join let PostgreSQL hash the whole `products` table for every
/// checkout while the catalog was small — a seq scan of a table whose stock rows the worker
/// rewrites all the time, 22 buffers a call instead of 6 (`pg_stat_statements`, bench run).
async fn cart_snapshot(state: &AppState, user: UserId) -> Result<Vec<Line>, ApiError> {
    let rows: Vec<CartSnapshotLine> = sqlx::query_as(
        "SELECT c.product_id, c.quantity, p.price_cents
         FROM cart_items c
         CROSS JOIN LATERAL (SELECT price_cents FROM products WHERE id = c.product_id OFFSET 0) p
         WHERE c.user_id = $1 ORDER BY c.product_id",
    )
    .bind(user.get())
    .fetch_all(&state.db)
    .await?;
    rows.into_iter().map(Line::try_from).collect()
}

/// Refuses at once (409) a line whose product is short. The hot inventory view in Redis only
/// nominates suspects: its entries may lag or be stale (a lost write, an older version), so a
/// refusal is confirmed against PostgreSQL's stock, which also repairs the view. An unknown
/// stock passes, and the strategy makes the real decision.
async fn refuse_known_shortages(state: &AppState, lines: &[Line]) -> Result<(), ApiError> {
    let keys: Vec<String> = lines
        .iter()
        .map(|l| state.keys.stock(l.product.get()))
        .collect();
    let cached = match state.cache.get_many(&keys).await {
        Ok(cached) => cached,
        Err(error) => {
            tracing::warn!(%error, "hot inventory unavailable; leaving the decision to the strategy");
            return Ok(());
        }
    };
    let known: HashMap<i64, i64> = lines
        .iter()
        .zip(cached)
        .filter_map(|(line, entry)| Some((line.product.get(), entry?.value.parse().ok()?)))
        .collect();
    let suspects: Vec<i64> = short_lines(lines, &known)
        .iter()
        .map(|s| s.product_id.get())
        .filter(|id| known.contains_key(id))
        .collect();
    if suspects.is_empty() {
        return Ok(());
    }
    let rows: Vec<(i64, i32, i64)> =
        sqlx::query_as("SELECT id, available_quantity, version FROM products WHERE id = ANY($1)")
            .bind(&suspects)
            .fetch_all(&state.db)
            .await?;
    if let Err(error) = state.cache.put_stock(&state.keys, &rows).await {
        tracing::warn!(%error, "cannot repair the hot inventory");
    }
    let stock: HashMap<i64, i64> = rows
        .iter()
        .map(|&(id, available, _)| (id, i64::from(available)))
        .collect();
    let suspect_lines: Vec<Line> = lines
        .iter()
        .filter(|l| suspects.contains(&l.product.get()))
        .copied()
        .collect();
    let short = short_lines(&suspect_lines, &stock);
    if short.is_empty() {
        return Ok(());
    }
    Err(ApiError::OutOfStock(short))
}

/// `POST /orders/checkout`: the cart becomes an order. With the default `queue` strategy the
/// answer is 202 with the order PENDING: poll `status_url` or follow `events_url`.
#[utoipa::path(post, path = "/orders/checkout", tag = "orders", security(("session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
        description = "1 to 255 visible ASCII characters; the same key again answers with the same order")),
    request_body(content = Option<CheckoutRequest>, description = "Optional; an empty body means no delivery address"),
    responses(
    (status = 202, description = "Accepted: the pipeline decides the order (queue strategy)", body = PlacedBody,
        headers(("Location" = String, description = "The order's URL"),
                ("Idempotent-Replayed" = String, description = "`true` when an earlier request with this key placed the order"))),
    (status = 201, description = "Decided in the request and CONFIRMED (synchronous strategies)", body = PlacedBody,
        headers(("Location" = String, description = "The order's URL"),
                ("Idempotent-Replayed" = String, description = "`true` when an earlier request with this key placed the order"))),
    (status = 400, description = "`invalid_idempotency_key` or `malformed_json`", body = ErrorBody),
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 409, description = "`out_of_stock` (with `short_lines`), `contention`, `cart_changed` (another checkout took the cart's lines), or `checkout_in_progress` (a request with this Idempotency-Key is still being decided); a refusal is answered again to every retry with its Idempotency-Key", body = ErrorBody),
    (status = 422, description = "`empty_cart`, `invalid_delivery_address` or `invalid_body`", body = ErrorBody),
))]
pub(crate) async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let strategy = state.settings.checkout_strategy;
    let result = place(&state, strategy, user.id, &headers, &body).await;
    metrics::checkout(strategy, &result);
    Ok(result?.into_response(strategy))
}

async fn place(
    state: &AppState,
    strategy: Strategy,
    user: UserId,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Placed, ApiError> {
    let idempotency_key = idempotency_key(headers)?;
    let request = checkout_request(body)?;
    let id = OrderId::generate();
    let Some(key) = idempotency_key else {
        return decide(state, strategy, user, id, request, None).await;
    };
    match claim_key(state, user, &key, id).await? {
        KeyClaim::Mine => {}
        KeyClaim::Placed(placed) => return Ok(placed),
        KeyClaim::Refused(refusal) => return Err(refusal),
        KeyClaim::InProgress => {
            return Err(ApiError::conflict(
                "checkout_in_progress",
                "a checkout with this Idempotency-Key is still being decided; retry shortly",
            ))
        }
    }
    let result = decide(state, strategy, user, id, request, Some(key.clone())).await;
    if let Err(error) = &result {
        settle_refused_key(state, user, &key, id, error).await;
    }
    result
}

/// Takes the cart's lines into an order `id`, or refuses.
async fn decide(
    state: &AppState,
    strategy: Strategy,
    user: UserId,
    id: OrderId,
    request: CheckoutRequest,
    idempotency_key: Option<String>,
) -> Result<Placed, ApiError> {
    let lines = cart_snapshot(state, user).await?;
    if lines.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_cart",
            "the cart is empty; add products before checking out",
        ));
    }
    refuse_known_shortages(state, &lines).await?;
    let order = NewOrder {
        id,
        user,
        total: Money::sum(lines.iter().map(|l| l.price.times(l.quantity))),
        delivery_address: request.delivery_address,
        idempotency_key,
        lines,
    };
    match strategy {
        Strategy::Queue => queue::hand_off(state, &order).await,
        locking => locking::decide(state, locking, &order).await,
    }
}

/// Who answers for an Idempotency-Key.
enum KeyClaim {
    /// This request claimed the key: it decides, and a refusal it ends with is recorded.
    Mine,
    /// A request with the key placed this order.
    Placed(Placed),
    /// A request with the key was refused: the same answer again.
    Refused(ApiError),
    /// A request with the key is still being decided.
    InProgress,
}

/// Claims `key` for the order `id` before anything is answered (`checkout_keys`). A claim left
/// undecided by a request that can no longer be alive (older than the request timeout) is taken
/// over.
async fn claim_key(
    state: &AppState,
    user: UserId,
    key: &str,
    id: OrderId,
) -> Result<KeyClaim, ApiError> {
    let stale_after = state.settings.request_timeout + std::time::Duration::from_secs(5);
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO checkout_keys (user_id, idempotency_key, order_id) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT checkout_keys_pkey DO UPDATE
         SET order_id = EXCLUDED.order_id, claimed_at = now()
         WHERE checkout_keys.refusal IS NULL
           AND checkout_keys.claimed_at < now() - make_interval(secs => $4)
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = $1 AND o.idempotency_key = $2)
         RETURNING order_id",
    )
    .bind(user.get())
    .bind(key)
    .bind(id.as_uuid())
    .bind(stale_after.as_secs_f64())
    .fetch_optional(&state.db)
    .await?;
    if claimed.is_some() {
        return Ok(KeyClaim::Mine);
    }
    if let Some(placed) = existing_order(state, user, key).await? {
        return Ok(KeyClaim::Placed(placed));
    }
    let refusal: Option<(Option<i16>, Option<String>)> = sqlx::query_as(
        "SELECT refusal_status, refusal FROM checkout_keys WHERE user_id = $1 AND idempotency_key = $2",
    )
    .bind(user.get())
    .bind(key)
    .fetch_optional(&state.db)
    .await?;
    let replayed = refusal.and_then(|(status, body)| {
        let status = StatusCode::from_u16(u16::try_from(status?).ok()?).ok()?;
        let body = serde_json::from_str(&body?).ok()?;
        Some(ApiError::Replayed { status, body })
    });
    Ok(replayed.map_or(KeyClaim::InProgress, KeyClaim::Refused))
}

/// After the claiming request for `key` failed: a refusal ("no order") is recorded, to be
/// answered again to every retry; after a server error the claim is let go, so a retry decides
/// afresh. Best effort: a claim left behind is taken over once stale.
async fn settle_refused_key(
    state: &AppState,
    user: UserId,
    key: &str,
    id: OrderId,
    error: &ApiError,
) {
    let settled = match error.client_answer() {
        Some((status, body)) => {
            sqlx::query(
                "UPDATE checkout_keys SET refusal_status = $4, refusal = $5
             WHERE user_id = $1 AND idempotency_key = $2 AND order_id = $3",
            )
            .bind(user.get())
            .bind(key)
            .bind(id.as_uuid())
            .bind(i16::try_from(status.as_u16()).unwrap_or(i16::MAX))
            .bind(body.to_string())
            .execute(&state.db)
            .await
        }
        None => {
            sqlx::query(
                "DELETE FROM checkout_keys
             WHERE user_id = $1 AND idempotency_key = $2 AND order_id = $3 AND refusal IS NULL",
            )
            .bind(user.get())
            .bind(key)
            .bind(id.as_uuid())
            .execute(&state.db)
            .await
        }
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "cannot settle an idempotency key claim; it is taken over once stale");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    proptest! {
        #[test]
        fn idempotency_keys_are_1_to_255_visible_ascii_characters(key in "[ -~\t]{0,300}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = key.parse() {
                headers.insert("idempotency-key", value);
                let accepted = idempotency_key(&headers);
                let valid = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
                prop_assert_eq!(accepted.ok().flatten().is_some(), valid);
            }
        }

        #[test]
        fn any_checkout_body_is_parsed_or_refused_with_a_client_error(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match checkout_request(&Bytes::from(body)) {
                Ok(request) => if let Some(address) = request.delivery_address {
                    prop_assert!((1..=1000).contains(&address.chars().count()));
                },
                Err(error) => prop_assert!(error.into_response().status().is_client_error()),
            }
        }

        #[test]
        fn json_addresses_are_accepted_exactly_when_1_to_1000_characters(address in "\\PC{0,1100}") {
            let body = serde_json::json!({ "delivery_address": address }).to_string();
            let valid = !address.trim().is_empty() && address.chars().count() <= 1000 && !address.contains('\0');
            prop_assert_eq!(checkout_request(&Bytes::from(body)).is_ok(), valid);
        }
    }

    fn line(product: i64, quantity: i64) -> Line {
        Line {
            product: ProductId::new(product).expect("id"),
            quantity: Quantity::new(quantity).expect("quantity"),
            price: Money::new(100).expect("price"),
        }
    }

    #[test]
    fn strategies_parse_from_their_names_only() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
        }
        assert!("Queue".parse::<Strategy>().is_err());
        assert!("".parse::<Strategy>().is_err());
    }

    #[test]
    fn short_lines_name_each_line_that_asks_for_more_than_there_is() {
        let stock = HashMap::from([(1, 5), (2, 1)]);
        let short = short_lines(&[line(1, 5), line(2, 2), line(3, 1)], &stock);
        let named: Vec<_> = short
            .iter()
            .map(|s| (s.product_id.get(), s.requested, s.available))
            .collect();
        assert_eq!(named, [(2, 2, 1), (3, 1, 0)]);
    }
}
