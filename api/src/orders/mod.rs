//! Orders: a user's history, one order with its lines, its status pushed over Server-Sent
//! Events while the pipeline decides it, and cancelling it ([`cancel`]). Checkout itself is in
//! [`crate::checkout`].

pub(crate) mod cancel;

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Path, Query},
    sessions::CurrentUser,
    startup::AppState,
};
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use shop_domain::{
    messages::{OrderStatus, OrderStatusChanged},
    UserId,
};
use std::{convert::Infallible, time::Duration};
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/events", get(events))
        .route("/orders/{id}/cancel", post(cancel::cancel))
}

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

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i32,
    pub price_at_purchase_cents: i64,
    /// PENDING, RESERVED, SHORT (with `reason`), RELEASED (its units went back after a rejection
    /// or a cancel), or CANCELLED (its order was cancelled before the line was decided).
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderSummary,
    pub items: Vec<OrderLine>,
}

const SUMMARY_COLUMNS: &str =
    "id, status, total_cents, delivery_address, created_at, completed_at, cancelled_at";

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
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("session" = [])),
    params(("id" = String, Path, description = "Order id (a UUID)")), responses(
    (status = 200, description = "The order and its lines", body = OrderDetail),
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 404, description = "No such order among this user's", body = ErrorBody),
))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    Ok(Json(show_order(&state, user.id, order_id(&id)?).await?))
}

/// The order with its lines, if it belongs to `user`.
async fn show_order(state: &AppState, user: UserId, id: Uuid) -> Result<OrderDetail, ApiError> {
    let order = owned_order(state, user, id).await?;
    let items = sqlx::query_as(
        "SELECT product_id, quantity, price_at_purchase AS price_at_purchase_cents, status, reason
         FROM order_items WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(order.id)
    .fetch_all(&state.db)
    .await?;
    Ok(OrderDetail { order, items })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderPage {
    items: Vec<OrderSummary>,
    next_cursor: Option<String>,
}

/// `GET /orders?limit=&cursor=`: the user's orders, newest first (order ids sort by time).
#[utoipa::path(get, path = "/orders", tag = "orders", security(("session" = [])), params(ListQuery), responses(
    (status = 200, description = "One page of the user's orders", body = OrderPage),
    (status = 400, description = "`invalid_cursor` or `invalid_query`", body = ErrorBody),
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 422, description = "`invalid_limit`", body = ErrorBody),
))]
pub(crate) async fn list(
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
    /// When PostgreSQL is read next, whatever else is announced meanwhile.
    recheck_at: tokio::time::Instant,
}

impl Watch {
    async fn current(&self) -> Option<OrderStatus> {
        Some(
            owned_order(&self.state, self.user, self.order)
                .await
                .ok()?
                .status,
        )
    }

    /// The next status to send: the current one first, then each change until a terminal one.
    async fn next_status(&mut self) -> Option<OrderStatus> {
        if self.sent.is_some_and(OrderStatus::is_decided) {
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
                    // Shutting down: end the stream; the client reconnects to another replica.
                    () = self.state.shutting_down.cancelled() => return None,
                    update = self.updates.recv() => match update {
                        Ok(u) if u.order_id.as_uuid() == self.order => Some(u.status),
                        Ok(_) => None,
                        // Missed announcements or a lost hub: ask PostgreSQL.
                        Err(_) => self.current().await,
                    },
                    () = tokio::time::sleep_until(self.recheck_at) => {
                        self.recheck_at = tokio::time::Instant::now() + SSE_RECHECK;
                        self.current().await
                    }
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
/// reaches (starting with the current one); the stream ends once the order is decided
/// (CONFIRMED, REJECTED, or CANCELLED before that).
#[utoipa::path(get, path = "/orders/{id}/events", tag = "orders", security(("session" = [])),
    params(("id" = String, Path, description = "Order id (a UUID)")), responses(
    (status = 200, description = "`event: status` with `data: {\"order_id\":…,\"status\":…}`, once per status",
        body = Object, content_type = "text/event-stream"),
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 404, description = "No such order among this user's", body = ErrorBody),
))]
pub(crate) async fn events(
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
        recheck_at: tokio::time::Instant::now() + SSE_RECHECK,
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
