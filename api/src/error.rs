//! The API's one error type, and the one place where errors become HTTP responses.
//!
//! Client errors carry a stable `code` and a message written for people. Server errors answer
//! with an opaque body and log their cause chain inside the request's span.

use axum::{
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use shop_domain::{messages::ShortLine, ProductId, ValidationError, MAX_LINE_QUANTITY};
use shop_infra::{orders::cancel::CancelError, outbox::OutboxError};
use utoipa::ToSchema;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A value in the request failed domain validation: 422.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Any other client error, with its status.
    #[error("{message}")]
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Checkout found lines short of stock: 409 naming each of them.
    #[error("not enough stock for {} of the order's lines", .0.len())]
    OutOfStock(Vec<ShortLine>),
    /// Checkout found lines over their product's per-shopper limit (a synchronous strategy;
    /// the pipeline rejects such an order instead): 409 naming each of them.
    #[error("{} of the order's lines would take more than you may hold of the product", .0.len())]
    LimitExceeded(Vec<ShortLine>),
    /// A product in the cart is not on sale yet, by the database's clock: 409 with the product
    /// whose sale starts last, and when.
    #[error("product {product} is not on sale until {}", starts_at.to_rfc3339_opts(SecondsFormat::AutoSi, true))]
    NotOnSaleYet {
        product: ProductId,
        starts_at: DateTime<Utc>,
    },
    /// 429 with `Retry-After` in whole seconds (at least one).
    #[error("{message}")]
    TooMany {
        code: &'static str,
        message: &'static str,
        retry_after_secs: u64,
    },
    #[error("a valid session token is required: send `Authorization: Bearer <token>`; sign in with POST /sessions and POST /sessions/verify")]
    Unauthorized,
    /// PostgreSQL or Redis could not be reached in time: 503, the client may retry.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// An earlier request with the same Idempotency-Key was refused: its answer, again.
    #[error("an earlier request with this Idempotency-Key was refused")]
    Replayed {
        status: StatusCode,
        body: serde_json::Value,
    },
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        Self::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, message)
    }

    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Client {
            status,
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Invalid(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
            Self::Client { status, code, .. } => (*status, code),
            Self::OutOfStock(_) => (StatusCode::CONFLICT, "out_of_stock"),
            Self::LimitExceeded(_) => (StatusCode::CONFLICT, "limit_exceeded"),
            Self::NotOnSaleYet { .. } => (StatusCode::CONFLICT, "not_on_sale_yet"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::TooMany { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Replayed { status, .. } => (*status, "replayed"),
        }
    }

    /// A client error's status and JSON body, exactly as it is answered; `None` for server
    /// errors (their bodies are opaque and not worth keeping).
    pub fn client_answer(&self) -> Option<(StatusCode, serde_json::Value)> {
        let (status, code) = self.status_and_code();
        if !status.is_client_error() {
            return None;
        }
        if let Self::Replayed { body, .. } = self {
            return Some((status, body.clone()));
        }
        let message = self.to_string();
        serde_json::to_value(self.body(code, &message))
            .ok()
            .map(|body| (status, body))
    }

    /// The error's body: its code and message, and the fields some errors carry beside them.
    fn body<'a>(&'a self, code: &'a str, message: &'a str) -> ErrorBody<'a> {
        let mut error = ErrorDetail::new(code, message);
        match self {
            Self::OutOfStock(lines) | Self::LimitExceeded(lines) => {
                error.short_lines = Some(lines);
            }
            Self::NotOnSaleYet { product, starts_at } => {
                error.product_id = Some(product.get());
                error.sale_starts_at = Some(*starts_at);
            }
            _ => {}
        }
        ErrorBody { error }
    }
}

/// The body of every error answer: `{"error":{"code":…,"message":…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    #[schema(inline)]
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable and machine-readable, such as `out_of_stock` or `invalid_email`.
    pub code: &'a str,
    /// Written for people; may change.
    pub message: &'a str,
    /// With `out_of_stock` and `limit_exceeded` only: each line that could not be had, what it
    /// asked for and what was left (of the stock, or of what the product's `max_per_shopper`
    /// still allowed you).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_lines: Option<&'a [ShortLine]>,
    /// With `not_on_sale_yet` only: the product in the cart whose sale starts last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<i64>,
    /// With `not_on_sale_yet` only: when that product's sale starts (RFC 3339), by the
    /// database's clock, which decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_starts_at: Option<DateTime<Utc>>,
}

impl<'a> ErrorDetail<'a> {
    /// A code and a message, and nothing beside them.
    pub fn new(code: &'a str, message: &'a str) -> Self {
        Self {
            code,
            message,
            short_lines: None,
            product_id: None,
            sale_starts_at: None,
        }
    }
}

/// The OpenAPI responses that many operations share, written once: name one in an operation's
/// `responses(…)` in place of its `(status = …)` entry. Each one's doc comment is its
/// description, word for word.
pub mod responses {
    use super::ErrorBody;

    /// No valid session token
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401, description = "No valid session token")]
    pub struct NoSession(pub ErrorBody<'static>);

    /// No such product
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404, description = "No such product")]
    pub struct NoSuchProduct(pub ErrorBody<'static>);

    /// `not_seller`
    #[derive(utoipa::IntoResponses)]
    #[response(status = 403, description = "`not_seller`")]
    pub struct NotSeller(pub ErrorBody<'static>);
}

/// Renders the error body every endpoint uses.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let error = ErrorDetail::new(code, message);
    (status, axum::Json(ErrorBody { error })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let mut response = match &self {
            Self::Replayed { body, .. } => (status, axum::Json(body)).into_response(),
            _ => {
                let message = self.to_string();
                (status, axum::Json(self.body(code, &message))).into_response()
            }
        };
        match self {
            Self::Unauthorized => {
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            Self::TooMany {
                retry_after_secs, ..
            } => {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after_secs.max(1)),
                );
            }
            _ => {}
        }
        response
    }
}

/// Database errors: constraint violations that a client caused become precise 4xx answers;
/// the rest is a 503 when the database cannot serve now (out of reach, restarting, or a demoted
/// primary in a failover: `shop_infra::db::unavailable`) and a 500 otherwise.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        let constraint = match &err {
            sqlx::Error::Database(db) => db.constraint(),
            _ => None,
        };
        match constraint {
            Some("users_email_key") => {
                return Self::conflict("email_taken", "an account with this email already exists")
            }
            Some("users_verified_phone_number_key") => {
                return Self::conflict(
                    "phone_number_taken",
                    "another account proved this phone number at the same moment; try again",
                )
            }
            Some("cart_items_product_id_fkey") => return Self::not_found("product"),
            Some("products_max_per_shopper_positive") => {
                return Self::unprocessable("invalid_field", "max_per_shopper must be at least 1")
            }
            Some("cart_items_quantity_range") => {
                return Self::unprocessable(
                    "quantity_too_large",
                    format!("a cart line holds at most {MAX_LINE_QUANTITY} units"),
                )
            }
            _ => {}
        }
        if shop_infra::db::unavailable(&err) {
            Self::Unavailable(err.into())
        } else {
            Self::Internal(err.into())
        }
    }
}

impl From<OutboxError> for ApiError {
    fn from(err: OutboxError) -> Self {
        match err {
            OutboxError::Database(e) => e.into(),
            OutboxError::Encode(e) => Self::Internal(e.into()),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(err: CancelError) -> Self {
        match err {
            CancelError::Database(e) => e.into(),
            CancelError::Outbox(e) => e.into(),
            // What the order's rows hold is ours, not the client's: a fault.
            CancelError::Stored(e) => Self::Internal(e.into()),
            CancelError::Status(e) => e.into(),
        }
    }
}

/// A status PostgreSQL holds that no `OrderStatus` names: a fault of ours, not the client's.
impl From<shop_domain::messages::UnknownStatus> for ApiError {
    fn from(err: shop_domain::messages::UnknownStatus) -> Self {
        Self::Internal(err.into())
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(err: redis::RedisError) -> Self {
        shop_infra::metrics::client_error("redis", "request");
        Self::Unavailable(err.into())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "malformed_json",
        };
        Self::client(status, code, rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "unreadable_body"
        };
        Self::client(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}
