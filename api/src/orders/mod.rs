//! Orders: a user's history and one order with its lines ([`view`]), its status and its place in
//! line ([`place`]) pushed over Server-Sent Events while the pipeline decides it ([`events`]),
//! and cancelling it ([`cancel`]). Checkout itself is in [`crate::checkout`].

pub(crate) mod cancel;
pub(crate) mod events;
pub(crate) mod place;
pub(crate) mod view;

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Path, Query},
    orders::view::{order_id, show_order, OrderDetail, OrderSummary},
    paging::page_limit,
    sessions::CurrentUser,
    state::AppState,
};
use axum::{
    extract::State,
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/events", get(events::events))
        .route("/orders/{id}/cancel", post(cancel::cancel))
}

/// `GET /orders/{id}`: the order with its lines (owner only).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("session" = [])),
    params(("id" = String, Path, description = "Order id (a UUID)")), responses(
    (status = 200, description = "The order and its lines; while PENDING, its place in line \
        (`ahead`, and each line's `remaining`)", body = OrderDetail),
    crate::error::responses::NoSession,
    (status = 404, description = "No such order among this user's", body = ErrorBody),
))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    Ok(Json(show_order(&state, user.id, order_id(&id)?).await?))
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
    crate::error::responses::NoSession,
    (status = 422, description = "`invalid_limit`", body = ErrorBody),
))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before: Option<Uuid> = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse().map_err(|_| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API issued")
            })
        })
        .transpose()?;
    let mut items: Vec<OrderSummary> =
        shop_infra::orders::view::orders_of(&state.db, user.id, before, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|o| o.id.to_string())
    } else {
        None
    };
    Ok(Json(OrderPage { items, next_cursor }))
}
