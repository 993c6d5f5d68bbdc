//! `GET /orders/{id}/events`: the order's status pushed over Server-Sent Events as it changes,
//! from this process's announcements (`crate::announcements`) and a periodic re-read.

use crate::{
    error::{ApiError, ErrorBody},
    extract::Path,
    orders::view::{order_id, owned_order},
    sessions::CurrentUser,
    state::AppState,
};
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::stream::{self, Stream};
use shop_domain::{
    messages::{OrderStatus, OrderStatusChanged},
    UserId,
};
use std::{convert::Infallible, time::Duration};
use tokio::sync::broadcast;
use uuid::Uuid;

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
    crate::error::responses::NoSession,
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
