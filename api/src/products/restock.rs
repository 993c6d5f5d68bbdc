//! `POST /products/{id}/restock`: the seller adds units through the product's lane.
//!
//! The restock is a command on the product's partition of the inventory topic, applied by the
//! checkout worker that owns it between the reserves around it (`checkout_worker::batch`), so
//! it adds to whatever the stock is then and never overwrites a reservation made meanwhile. The
//! request waits briefly for the lane to apply it ([`lane`]): 200 with the new stock, or 202 when
//! the lane is slower than [`lane::WAIT`] (the restock is recorded and will be applied;
//! repeating the request with the same `Idempotency-Key` asks again for its result).

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Integer, Json, Path},
    idempotency, metrics,
    products::{
        lane,
        store::{find, not_seller, product_in_path},
    },
    sessions::CurrentUser,
    state::AppState,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shop_domain::{messages::InventoryCommand, OrderId, Units};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RestockRequest {
    /// Units to add: 1 to 1,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 1_000_000)]
    quantity: Integer,
}

/// Where a restock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum RestockStatus {
    /// Recorded, not applied yet: the product's lane is busy or down.
    Pending,
    /// The units were added (or, for a restock queued before a seller's count that the lane
    /// applied first, they are in that count).
    Applied,
    /// Nothing was added: the stock would pass 1,000,000,000 units.
    Refused,
}

impl RestockStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Applied => "APPLIED",
            Self::Refused => "REFUSED",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Restock {
    restock_id: Uuid,
    product_id: i64,
    quantity: u32,
    status: RestockStatus,
    /// The product's stock after the restock was applied or refused (absent while PENDING).
    available_quantity: Option<i32>,
}

/// `POST /products/{id}/restock`: adds units to the product's stock (its seller only).
#[utoipa::path(post, path = "/products/{id}/restock", tag = "catalog", security(("session" = [])),
    params(
        ("id" = i64, Path, description = "Product id", minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters; repeating a restock with the same \
                key adds its units once and answers with its result"),
    ),
    request_body = RestockRequest, responses(
    (status = 200, description = "Applied (or refused) by the product's lane", body = Restock),
    (status = 202, description = "Recorded; the lane has not applied it yet", body = Restock),
    (status = 400, description = "`invalid_idempotency_key`, `malformed_json`", body = ErrorBody),
    crate::error::responses::NoSession,
    crate::error::responses::NotSeller,
    crate::error::responses::NoSuchProduct,
    (status = 409, description = "`idempotency_key_reused`: the key restocked another quantity", body = ErrorBody),
    (status = 422, description = "`invalid_quantity`", body = ErrorBody),
))]
pub(crate) async fn restock(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RestockRequest>,
) -> Result<Response, ApiError> {
    let product = product_in_path(&id)?;
    let key = idempotency::key(&headers)?;
    let quantity = Units::new(body.quantity.0)?;
    let seller = find(&state, product)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?
        .seller_id;
    if seller != user.id.get() {
        return Err(not_seller());
    }
    let restock_id = idempotency::derived_id("restock", user.id, product, key.as_ref());
    let command = InventoryCommand::restock(OrderId::from_uuid(restock_id), product, quantity);
    // A repeated key whose restock is decided gets its result; nothing is sent again.
    let earlier = match key {
        Some(_) => lane::decision(&state, &command).await?,
        None => None,
    };
    let decided = match earlier {
        Some(decided) => Some(decided),
        None => {
            send(&state, &command).await?;
            lane::wait_for_lane(&state, &command).await?
        }
    };
    if let Some(earlier) = decided.filter(|d| d.quantity != i32::from(quantity)) {
        return Err(ApiError::conflict(
            "idempotency_key_reused",
            format!(
                "this Idempotency-Key already restocked {} units of this product; use a new key",
                earlier.quantity
            ),
        ));
    }
    let (status, available_quantity) = match decided {
        Some(d) if d.applied => (RestockStatus::Applied, Some(d.stock)),
        Some(d) => (RestockStatus::Refused, Some(d.stock)),
        None => (RestockStatus::Pending, None),
    };
    metrics::restocked(status.as_str());
    let answer = Restock {
        restock_id,
        product_id: product.get(),
        quantity: quantity.get(),
        status,
        available_quantity,
    };
    let code = match status {
        RestockStatus::Pending => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((code, axum::Json(answer)).into_response())
}

/// Puts the restock command in the outbox, for the product's lane, and wakes the relays.
async fn send(state: &AppState, command: &InventoryCommand) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    lane::queue(&mut tx, command).await?;
    tx.commit().await?;
    Ok(())
}
