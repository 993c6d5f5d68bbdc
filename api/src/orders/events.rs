//! `GET /orders/{id}/events`: the order's status pushed over Server-Sent Events as it changes,
//! from this process's announcements (`crate::announcements`) and a periodic re-read; while it
//! is PENDING, also its place in line ([`crate::orders::place`]) when that changes.

use crate::{
    error::{ApiError, ErrorBody},
    extract::Path,
    orders::{
        place::{PlaceEvent, PlaceWatch},
        view::{order_id, owned_order, products_of},
    },
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
use tokio::{sync::broadcast, time::Instant};
use uuid::Uuid;

/// How often an SSE stream re-reads the order, in case a pub/sub announcement was missed.
const SSE_RECHECK: Duration = Duration::from_secs(2);

/// How often an SSE stream reads a PENDING order's place in line (from Redis).
const PLACE_RECHECK: Duration = Duration::from_millis(500);

struct Watch {
    state: AppState,
    user: UserId,
    order: Uuid,
    updates: broadcast::Receiver<OrderStatusChanged>,
    sent: Option<OrderStatus>,
    /// When PostgreSQL is read next, whatever else is announced meanwhile.
    recheck_at: Instant,
    /// The order's place in line, followed while it is PENDING (`None` when it was decided
    /// before the stream began).
    place: Option<PlaceWatch>,
    /// When the place is read next.
    place_at: Instant,
}

/// What a stream sends next.
enum Next {
    Status(OrderStatus),
    Place(PlaceEvent),
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

    /// The next event to send: the current status first, then each change until a terminal one;
    /// meanwhile, while the order is PENDING, its place whenever it changed.
    async fn next(&mut self) -> Option<Next> {
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
                let follow_place = self.sent == Some(OrderStatus::Pending) && self.place.is_some();
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
                        self.recheck_at = Instant::now() + SSE_RECHECK;
                        self.current().await
                    }
                    () = tokio::time::sleep_until(self.place_at), if follow_place => {
                        if let Some(event) = self.place_changed().await {
                            return Some(Next::Place(event));
                        }
                        None
                    }
                }
            };
            if let Some(status) = status.filter(|s| Some(*s) != self.sent) {
                self.sent = Some(status);
                return Some(Next::Status(status));
            }
        }
    }

    /// Reads the place in line; the event to send if it changed.
    async fn place_changed(&mut self) -> Option<PlaceEvent> {
        self.place_at = Instant::now() + PLACE_RECHECK;
        let watch = self.place.as_mut()?;
        watch.check(&self.state).await
    }
}

/// `GET /orders/{id}/events`: Server-Sent Events, one `status` event per status the order
/// reaches (starting with the current one); the stream ends once the order is decided
/// (CONFIRMED, REJECTED, or CANCELLED before that). While the order is PENDING, the stream also
/// sends `place` events (its place in line, looked at every 500 ms, sent when it changed):
/// `{"order_id":…,"ahead":12,"lines":[{"product_id":42,"remaining":300}]}`, where `ahead` is as
/// in `GET /orders/{id}` but never more than a `place` event of the same stream said before, and
/// `remaining` is each line's product stock as its lane last published it (`null` while unknown).
#[utoipa::path(get, path = "/orders/{id}/events", tag = "orders", security(("session" = [])),
    params(("id" = String, Path, description = "Order id (a UUID)")), responses(
    (status = 200, description = "`event: status` with `data: {\"order_id\":…,\"status\":…}`, once \
        per status; while PENDING, `event: place` with `data: {\"order_id\":…,\"ahead\":12,\
        \"lines\":[{\"product_id\":42,\"remaining\":300}]}` when the place in line changed",
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
    let place = if order.status == OrderStatus::Pending {
        Some(PlaceWatch::new(
            order.id,
            products_of(&state, order.id).await?,
        ))
    } else {
        None
    };
    let watch = Watch {
        updates: state.order_updates.subscribe(),
        state,
        user: user.id,
        order: order.id,
        sent: None,
        recheck_at: Instant::now() + SSE_RECHECK,
        place,
        place_at: Instant::now(),
    };
    let stream = stream::unfold(watch, |mut watch| async move {
        let event = match watch.next().await? {
            Next::Status(status) => {
                let data =
                    serde_json::json!({ "order_id": watch.order, "status": status.as_str() });
                Event::default().event("status").data(data.to_string())
            }
            Next::Place(place) => Event::default()
                .event("place")
                .json_data(&place)
                .unwrap_or_else(|_| Event::default().comment("place not encoded")),
        };
        Some((Ok(event), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
