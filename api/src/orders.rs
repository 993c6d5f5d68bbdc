//! Checkout and orders.
//!
//! `POST /orders/checkout` snapshots the cart and, in one transaction, records the order as
//! PENDING with one `reserve` command per line and an `OrderCreated` event in the outbox. Once
//! that commits the order cannot be lost: the relay in the checkout worker moves the outbox to
//! Kafka whether or not this process is still alive. The answer is 202; the client polls
//! `GET /orders/{id}` or watches `GET /orders/{id}/events` (Server-Sent Events).

use crate::{
    error::ApiError,
    extract::{Path, Query},
    metrics,
    sessions::CurrentUser,
    startup::AppState,
};
use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use shop_domain::{
    messages::{
        CommandKind, EventLine, InventoryCommand, OrderEvent, OrderStatus, OrderStatusChanged,
    },
    Money, OrderId, ProductId, Quantity, UserId,
};
use shop_infra::outbox::{self, Outbox, OutboxError};
use std::{convert::Infallible, time::Duration};
use tokio::sync::broadcast;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders/checkout", post(checkout))
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/events", get(events))
}

const MAX_KEY_LEN: usize = 255;
const MAX_ADDRESS_LEN: usize = 1000;

#[derive(Debug, Default, Deserialize)]
struct CheckoutRequest {
    delivery_address: Option<String>,
}

#[derive(Debug, Serialize)]
struct Accepted {
    order_id: Uuid,
    status: String,
    status_url: String,
    events_url: String,
}

fn accepted(order_id: Uuid, status: &str, replayed: bool) -> Response {
    let status_url = format!("/orders/{order_id}");
    let body = Accepted {
        order_id,
        status: status.to_owned(),
        events_url: format!("{status_url}/events"),
        status_url: status_url.clone(),
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = status_url.parse() {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    response
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The body is optional: no body means no delivery address.
fn checkout_request(body: &Bytes) -> Result<CheckoutRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CheckoutRequest::default());
    }
    let request: CheckoutRequest = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable("invalid_body", e.to_string())
        } else {
            ApiError::bad_request("malformed_json", e.to_string())
        }
    })?;
    if let Some(address) = &request.delivery_address {
        if address.trim().is_empty() || address.chars().count() > MAX_ADDRESS_LEN {
            return Err(ApiError::unprocessable(
                "invalid_delivery_address",
                "delivery_address must be 1 to 1000 characters",
            ));
        }
    }
    Ok(request)
}

/// What the pipeline is handed for an order: one reserve command per line, and OrderCreated.
fn checkout_messages(
    order_id: OrderId,
    user: UserId,
    total: Money,
    lines: &[Line],
) -> Result<Outbox, ApiError> {
    let encode = |e: OutboxError| ApiError::Internal(e.into());
    let mut messages = Outbox::default();
    for line in lines {
        let command =
            InventoryCommand::new(CommandKind::Reserve, order_id, line.product, line.quantity);
        messages
            .push(outbox::INVENTORY, line.product.to_string(), &command)
            .map_err(encode)?;
    }
    let event_lines = lines
        .iter()
        .map(|l| EventLine {
            product_id: l.product,
            quantity: l.quantity,
            price_cents: l.price.minor_units(),
        })
        .collect();
    let created = OrderEvent::created(
        order_id,
        user,
        total.minor_units(),
        event_lines,
        Utc::now().timestamp_millis(),
    );
    messages
        .push(outbox::ORDER_EVENTS, order_id.to_string(), &created)
        .map_err(encode)?;
    Ok(messages)
}

#[derive(Debug, sqlx::FromRow)]
struct CartSnapshotLine {
    product_id: i64,
    quantity: i32,
    price_cents: i64,
}

struct Line {
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

async fn existing_order(
    state: &AppState,
    user: UserId,
    key: &str,
) -> Result<Option<(Uuid, String)>, ApiError> {
    Ok(
        sqlx::query_as("SELECT id, status FROM orders WHERE user_id = $1 AND idempotency_key = $2")
            .bind(user.get())
            .bind(key)
            .fetch_optional(&state.db)
            .await?,
    )
}

/// Refuses at once (409) a line whose product the hot inventory view knows to be short.
/// The view may lag behind; the worker makes the real decision, so an unknown stock passes.
async fn refuse_known_shortages(state: &AppState, lines: &[Line]) -> Result<(), ApiError> {
    let keys: Vec<String> = lines
        .iter()
        .map(|l| state.keys.stock(l.product.get()))
        .collect();
    let stock = match state.cache.get_many(&keys).await {
        Ok(stock) => stock,
        Err(error) => {
            tracing::warn!(%error, "hot inventory unavailable; leaving the decision to the worker");
            return Ok(());
        }
    };
    let short: Vec<String> = lines
        .iter()
        .zip(stock)
        .filter_map(|(line, stock)| {
            let available: i64 = stock?.value.parse().ok()?;
            (available < i64::from(line.quantity.get())).then(|| {
                format!(
                    "product {}: {} requested, {} available",
                    line.product,
                    line.quantity.get(),
                    available
                )
            })
        })
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    metrics::checkout_rejected_early();
    Err(ApiError::conflict(
        "out_of_stock",
        format!("not enough stock: {}", short.join("; ")),
    ))
}

/// `POST /orders/checkout`: 202 with the order id; the order is decided asynchronously.
async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let request = checkout_request(&body)?;
    if let Some(key) = &key {
        if let Some((id, status)) = existing_order(&state, user.id, key).await? {
            return Ok(accepted(id, &status, true));
        }
    }
    let rows: Vec<CartSnapshotLine> = sqlx::query_as(
        "SELECT c.product_id, c.quantity, p.price_cents
         FROM cart_items c JOIN products p ON p.id = c.product_id
         WHERE c.user_id = $1 ORDER BY c.product_id",
    )
    .bind(user.id.get())
    .fetch_all(&state.db)
    .await?;
    if rows.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_cart",
            "the cart is empty; add products before checking out",
        ));
    }
    let lines = rows
        .into_iter()
        .map(Line::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    refuse_known_shortages(&state, &lines).await?;

    let order_id = OrderId::generate();
    let total = Money::sum(lines.iter().map(|l| l.price.times(l.quantity)));
    let messages = checkout_messages(order_id, user.id, total, &lines)?;

    let mut tx = state.db.begin().await?;
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO orders (id, user_id, total_cents, delivery_address, idempotency_key, pending_lines)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT orders_user_idempotency_key DO NOTHING
         RETURNING id",
    )
    .bind(order_id.as_uuid())
    .bind(user.id.get())
    .bind(total.minor_units())
    .bind(request.delivery_address.as_deref().map(str::trim))
    .bind(&key)
    .bind(lines.len() as i32)
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_none() {
        // A concurrent request with the same key won the race; answer with its order.
        tx.rollback().await?;
        let key = key.unwrap_or_default();
        let (id, status) = existing_order(&state, user.id, &key)
            .await?
            .ok_or_else(|| ApiError::Internal("idempotency conflict without an order".into()))?;
        return Ok(accepted(id, &status, true));
    }
    sqlx::query(
        "INSERT INTO order_items (order_id, product_id, quantity, price_at_purchase)
         SELECT $1, * FROM UNNEST($2::BIGINT[], $3::INT[], $4::BIGINT[])",
    )
    .bind(order_id.as_uuid())
    .bind(lines.iter().map(|l| l.product.get()).collect::<Vec<_>>())
    .bind(
        lines
            .iter()
            .map(|l| i32::from(l.quantity))
            .collect::<Vec<_>>(),
    )
    .bind(
        lines
            .iter()
            .map(|l| l.price.minor_units())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    messages.insert(&mut tx).await.map_err(|e| match e {
        OutboxError::Database(e) => ApiError::from(e),
        OutboxError::Encode(e) => ApiError::Internal(e.into()),
    })?;
    tx.commit().await?;
    metrics::checkout_accepted();
    tracing::info!(order_id = %order_id, lines = lines.len(), "checkout accepted");
    Ok(accepted(
        order_id.as_uuid(),
        OrderStatus::Pending.as_str(),
        false,
    ))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    pub id: Uuid,
    pub status: String,
    pub total_cents: i64,
    pub delivery_address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i32,
    pub price_at_purchase_cents: i64,
    /// PENDING, RESERVED, SHORT (with `reason`), or RELEASED after a rejection.
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderSummary,
    pub items: Vec<OrderLine>,
}

const SUMMARY_COLUMNS: &str = "id, status, total_cents, delivery_address, created_at, completed_at";

/// An order id from a path; anything else names no order.
fn order_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("order"))
}

/// The order, if it belongs to `user`. Someone else's order is indistinguishable from none (404).
async fn owned_order(state: &AppState, user: UserId, id: Uuid) -> Result<OrderSummary, ApiError> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user.get())
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::not_found("order"))
}

/// `GET /orders/{id}`: the order with its lines (owner only).
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    let order = owned_order(&state, user.id, order_id(&id)?).await?;
    let items = sqlx::query_as(
        "SELECT product_id, quantity, price_at_purchase AS price_at_purchase_cents, status, reason
         FROM order_items WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(order.id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OrderDetail { order, items }))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct OrderPage {
    items: Vec<OrderSummary>,
    next_cursor: Option<String>,
}

/// `GET /orders?limit=&cursor=`: the user's orders, newest first (order ids sort by time).
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let limit = crate::products::page_limit(query.limit)?;
    let before: Option<Uuid> = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse().map_err(|_| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API issued")
            })
        })
        .transpose()?;
    let mut items: Vec<OrderSummary> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM orders
         WHERE user_id = $1 AND ($2::UUID IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(user.id.get())
    .bind(before)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|o| o.id.to_string())
    } else {
        None
    };
    Ok(Json(OrderPage { items, next_cursor }))
}

/// How often an SSE stream re-reads the order, in case a pub/sub announcement was missed.
const SSE_RECHECK: Duration = Duration::from_secs(2);

struct Watch {
    state: AppState,
    user: UserId,
    order: Uuid,
    updates: broadcast::Receiver<OrderStatusChanged>,
    sent: Option<OrderStatus>,
}

impl Watch {
    async fn current(&self) -> Option<OrderStatus> {
        let status = owned_order(&self.state, self.user, self.order)
            .await
            .ok()?
            .status;
        OrderStatus::parse(&status)
    }

    /// The next status to send: the current one first, then each change until a terminal one.
    async fn next_status(&mut self) -> Option<OrderStatus> {
        if self.sent.is_some_and(OrderStatus::is_terminal) {
            return None;
        }
        loop {
            let status = if self.sent.is_none() {
                let status = self.current().await;
                if status.is_none() {
                    // PostgreSQL did not answer: try again shortly, not in a tight loop.
                    tokio::time::sleep(SSE_RECHECK).await;
                }
                status
            } else {
                tokio::select! {
                    update = self.updates.recv() => match update {
                        Ok(u) if u.order_id.as_uuid() == self.order => Some(u.status),
                        Ok(_) => None,
                        // Missed announcements or a lost hub: ask PostgreSQL.
                        Err(_) => self.current().await,
                    },
                    () = tokio::time::sleep(SSE_RECHECK) => self.current().await,
                }
            };
            if let Some(status) = status.filter(|s| Some(*s) != self.sent) {
                self.sent = Some(status);
                return Some(status);
            }
        }
    }
}

/// `GET /orders/{id}/events`: Server-Sent Events, one `status` event per status the order
/// reaches (starting with the current one); the stream ends after CONFIRMED or REJECTED.
async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let order = owned_order(&state, user.id, order_id(&id)?).await?;
    let watch = Watch {
        updates: state.order_updates.subscribe(),
        state,
        user: user.id,
        order: order.id,
        sent: None,
    };
    let stream = stream::unfold(watch, |mut watch| async move {
        let status = watch.next_status().await?;
        let data = serde_json::json!({ "order_id": watch.order, "status": status.as_str() });
        let event = Event::default().event("status").data(data.to_string());
        Some((Ok(event), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Forwards order status announcements from Redis pub/sub to this process's SSE streams,
/// reconnecting whenever Redis goes away. Streams also re-read PostgreSQL, so an announcement
/// lost during a reconnect delays a push by at most [`SSE_RECHECK`].
pub async fn forward_status_announcements(
    redis_url: String,
    channel: String,
    sender: broadcast::Sender<OrderStatusChanged>,
) {
    loop {
        if let Err(error) = forward_until_disconnected(&redis_url, &channel, &sender).await {
            tracing::warn!(%error, "order status subscription lost; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn forward_until_disconnected(
    redis_url: &str,
    channel: &str,
    sender: &broadcast::Sender<OrderStatusChanged>,
) -> redis::RedisResult<()> {
    use futures_util::StreamExt;
    let mut pubsub = redis::Client::open(redis_url)?.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        match serde_json::from_str(&payload) {
            // No receivers is fine: nobody is watching right now.
            Ok(update) => drop(sender.send(update)),
            Err(error) => tracing::warn!(%error, "ignoring a malformed order status announcement"),
        }
    }
    Ok(())
}
