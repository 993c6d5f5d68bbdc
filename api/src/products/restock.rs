//! `POST /products/{id}/restock`: the seller adds units through the product's lane.
//!
//! The restock is a command on the product's partition of the inventory topic, applied by the
//! checkout worker that owns it between the reserves around it (`checkout_worker::batch`), so
//! it adds to whatever the stock is then and never overwrites a reservation made meanwhile. The
//! request waits briefly for the lane to apply it: 200 with the new stock, or 202 when the lane
//! is slower than [`WAIT`] (the restock is recorded and will be applied; repeating the request
//! with the same `Idempotency-Key` asks again for its result).

use super::{find, product_in_path};
use crate::{
    checkout::idempotency_key,
    error::{ApiError, ErrorBody},
    extract::{Integer, Json, Path},
    metrics,
    sessions::CurrentUser,
    startup::AppState,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shop_domain::{messages::InventoryCommand, OrderId, ProductId, Units, UserId};
use shop_infra::outbox::{self, Outbox};
use std::time::Duration;
use tokio::time::Instant;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long a restock request waits for the lane before it answers 202.
const WAIT: Duration = Duration::from_secs(3);
/// How often it looks meanwhile.
const LOOK: Duration = Duration::from_millis(20);

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
    /// The units were added.
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
    (status = 401, description = "No valid session token", body = ErrorBody),
    (status = 403, description = "`not_seller`", body = ErrorBody),
    (status = 404, description = "No such product", body = ErrorBody),
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
    let key = idempotency_key(&headers)?;
    let quantity = Units::new(body.quantity.0)?;
    let seller = find(&state, product)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?
        .seller_id;
    if seller != user.id.get() {
        return Err(super::not_seller());
    }
    let restock_id = restock_id(user.id, product, key.as_deref());
    // A repeated key whose restock is decided gets its result; nothing is sent again.
    let earlier = match key {
        Some(_) => decision(&state, restock_id, product).await?,
        None => None,
    };
    let decided = match earlier {
        Some(decided) => Some(decided),
        None => {
            send(&state, restock_id, product, quantity).await?;
            wait_for_lane(&state, restock_id, product).await?
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

/// A fresh id, or with an Idempotency-Key the same id for every request of the seller's that
/// repeats the key for this product (the lane applies an id once).
fn restock_id(seller: UserId, product: ProductId, key: Option<&str>) -> Uuid {
    let Some(key) = key else {
        return Uuid::now_v7();
    };
    let digest = Sha256::digest(format!("restock\n{seller}\n{product}\n{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Puts the restock command in the outbox, for the product's lane, and wakes the relays.
async fn send(
    state: &AppState,
    restock_id: Uuid,
    product: ProductId,
    quantity: Units,
) -> Result<(), ApiError> {
    let mut messages = Outbox::default();
    messages.push(
        outbox::INVENTORY,
        product.to_string(),
        &InventoryCommand::restock(OrderId::from_uuid(restock_id), product, quantity),
    )?;
    let mut tx = state.db.begin().await?;
    messages.insert_and_wake(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// What the lane decided about a restock, with the product's stock now.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Decided {
    applied: bool,
    quantity: i32,
    stock: i32,
}

/// The lane's decision on the restock, if it has made it (its ledger row).
async fn decision(
    state: &AppState,
    restock_id: Uuid,
    product: ProductId,
) -> Result<Option<Decided>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT l.applied, l.quantity, p.available_quantity AS stock FROM inventory_ledger l
         JOIN products p ON p.id = l.product_id
         WHERE l.order_id = $1 AND l.product_id = $2 AND l.kind = 'restock'",
    )
    .bind(restock_id)
    .bind(product.get())
    .fetch_optional(&state.db)
    .await?)
}

/// Polls for the lane's decision until it comes or [`WAIT`] passes (`None`).
async fn wait_for_lane(
    state: &AppState,
    restock_id: Uuid,
    product: ProductId,
) -> Result<Option<Decided>, ApiError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let decided = decision(state, restock_id, product).await?;
        if decided.is_some() || Instant::now() >= deadline {
            return Ok(decided);
        }
        tokio::time::sleep(LOOK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_one_restock_per_seller_and_product() -> Result<(), Box<dyn std::error::Error>> {
        let (seller, product) = (UserId::new(1)?, ProductId::new(7)?);
        let id = restock_id(seller, product, Some("k-1"));
        assert_eq!(id, restock_id(seller, product, Some("k-1")));
        assert_ne!(id, restock_id(seller, product, Some("k-2")));
        assert_ne!(id, restock_id(UserId::new(2)?, product, Some("k-1")));
        assert_ne!(id, restock_id(seller, ProductId::new(8)?, Some("k-1")));
        assert_ne!(
            restock_id(seller, product, None),
            restock_id(seller, product, None)
        );
        Ok(())
    }
}
