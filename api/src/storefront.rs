//! The storefront page (`storefront/`), served by the API itself: no CDN, no build step. The
//! files are embedded at compile time; its script is `app.js`, a module that imports `core.js`
//! and `drops.js`.

use crate::{extract::Json, security::STOREFRONT_CSP, state::AppState};
use axum::{
    extract::State,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
    Router,
};
use serde::Serialize;
use utoipa::ToSchema;

const INDEX: &str = include_str!("../../storefront/index.html");
const APP_JS: &str = include_str!("../../storefront/app.js");
const CORE_JS: &str = include_str!("../../storefront/core.js");
const DROPS_JS: &str = include_str!("../../storefront/drops.js");
const STYLE_CSS: &str = include_str!("../../storefront/style.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/storefront/app.js", get(app_js))
        .route("/storefront/core.js", get(core_js))
        .route("/storefront/drops.js", get(drops_js))
        .route("/storefront/style.css", get(style_css))
        .route("/storefront/config.json", get(config))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontConfig {
    /// The development mail sink's page (`DEV_MAILBOX_URL`), which the sign-in form links to;
    /// null in production.
    dev_mailbox_url: Option<String>,
}

/// What the storefront's script needs to know of this deployment.
#[utoipa::path(get, path = "/storefront/config.json", tag = "storefront",
    responses((status = 200, description = "The storefront's settings", body = StorefrontConfig)))]
pub(crate) async fn config(State(state): State<AppState>) -> Json<StorefrontConfig> {
    let url = &state.settings.dev_mailbox_url;
    Json(StorefrontConfig {
        dev_mailbox_url: (!url.is_empty()).then(|| url.clone()),
    })
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

/// The storefront's script (a module).
#[utoipa::path(get, path = "/storefront/app.js", tag = "storefront",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub(crate) async fn app_js() -> impl IntoResponse {
    asset(JAVASCRIPT, APP_JS)
}

/// What the storefront's modules share: its state, the API client, notices, elements.
#[utoipa::path(get, path = "/storefront/core.js", tag = "storefront",
    responses((status = 200, description = "JavaScript module", body = String, content_type = "text/javascript")))]
pub(crate) async fn core_js() -> impl IntoResponse {
    asset(JAVASCRIPT, CORE_JS)
}

/// The storefront's flash-sale drops: countdowns, limits, the place in line, the seller's fields.
#[utoipa::path(get, path = "/storefront/drops.js", tag = "storefront",
    responses((status = 200, description = "JavaScript module", body = String, content_type = "text/javascript")))]
pub(crate) async fn drops_js() -> impl IntoResponse {
    asset(JAVASCRIPT, DROPS_JS)
}

/// The storefront's style sheet.
#[utoipa::path(get, path = "/storefront/style.css", tag = "storefront",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub(crate) async fn style_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

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
