//! What every strategy shares once the order is built: the one interface through which checkout
//! drives them ([`TakeStock`]), the answer ([`Placed`]), and the answer when writing the order
//! (`shop_infra::orders::place`) wrote nothing because of the Idempotency-Key or a changed cart
//! ([`replay`]).

use crate::{checkout::strategy::Strategy, error::ApiError, idempotency, state::AppState};
use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use shop_domain::OrderStatus;
use shop_infra::orders::place::{KeyedOrder, NewOrder, Written};
use utoipa::ToSchema;
use uuid::Uuid;

/// How a strategy takes an order's stock: it writes the order (alone, or in the intake's batch)
/// and takes the stock, or hands the taking to the pipeline, and says how the order stands.
pub(crate) trait TakeStock {
    async fn place(&self, state: &AppState, order: &NewOrder) -> Result<Placed, ApiError>;
}

/// How a checkout ended, for the response.
pub struct Placed {
    pub order_id: Uuid,
    pub status: OrderStatus,
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
    /// The order placed now, by this request.
    pub fn new(order: &NewOrder, status: OrderStatus) -> Self {
        Self {
            order_id: order.id.as_uuid(),
            status,
            replayed: false,
        }
    }

    pub fn into_response(self, strategy: Strategy) -> Response {
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

    /// The `shop_api_checkouts_total` outcome of a checkout.
    pub fn outcome(strategy: Strategy, result: &Result<Placed, ApiError>) -> &'static str {
        match result {
            Ok(placed) if placed.replayed => "replayed",
            Ok(_) if strategy == Strategy::Queue => "accepted",
            Ok(_) => "confirmed",
            Err(ApiError::OutOfStock(_)) => "out_of_stock",
            Err(ApiError::NotOnSaleYet { .. }) => "not_on_sale_yet",
            Err(ApiError::LimitExceeded(_)) => "limit_exceeded",
            Err(ApiError::Client {
                code: "contention", ..
            }) => "contention",
            Err(_) => "error",
        }
    }
}

impl From<KeyedOrder> for Placed {
    /// The order an earlier request with the same Idempotency-Key placed.
    fn from(order: KeyedOrder) -> Self {
        Self {
            order_id: order.id,
            status: order.status,
            replayed: true,
        }
    }
}

/// After writing `order` wrote nothing: the order that took its key, or 409 when the cart
/// changed under this checkout, or a product in it is not on sale yet, with no order for its key.
pub(crate) async fn replay(
    state: &AppState,
    order: &NewOrder,
    written: Written,
) -> Result<Placed, ApiError> {
    if let Some(key) = order.idempotency_key.as_deref() {
        if let Some(placed) = idempotency::placed(state, order.user, key).await? {
            return Ok(placed.into());
        }
    }
    match written {
        Written::CartChanged => Err(ApiError::conflict(
            "cart_changed",
            "the cart changed during checkout (another checkout may have taken it); see GET /orders and GET /cart",
        )),
        Written::NotOnSaleYet { product, starts_at } => {
            Err(ApiError::NotOnSaleYet { product, starts_at })
        }
        Written::Placed | Written::KeyTaken => Err(ApiError::Internal(
            "idempotency conflict without an order".into(),
        )),
    }
}
