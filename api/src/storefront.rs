//! The storefront page (`storefront/`), served by the API itself: no CDN, no build step. The
//! files are embedded at compile time.

use crate::{security::STOREFRONT_CSP, startup::AppState};
use axum::{
    http::header,
    response::{Html, IntoResponse},
    routing::get,
    Router,
};

const INDEX: &str = include_str!("../../storefront/index.html");
const APP_JS: &str = include_str!("../../storefront/app.js");
const STYLE_CSS: &str = include_str!("../../storefront/style.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/storefront/app.js", get(app_js))
        .route("/storefront/style.css", get(style_css))
}

/// The storefront: browse, sign in, cart, checkout.
#[utoipa::path(get, path = "/", tag = "storefront",
    responses((status = 200, description = "The storefront page", body = String, content_type = "text/html")))]
pub(crate) async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_SECURITY_POLICY, STOREFRONT_CSP)],
        Html(INDEX),
    )
}

/// The storefront's script.
#[utoipa::path(get, path = "/storefront/app.js", tag = "storefront",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub(crate) async fn app_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The storefront's style sheet.
#[utoipa::path(get, path = "/storefront/style.css", tag = "storefront",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub(crate) async fn style_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, STOREFRONT_CSP),
        ],
        body,
    )
}
