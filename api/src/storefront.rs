//! The storefront page (`storefront/`), served by the API itself: no CDN, no build step. The
//! files are embedded at compile time.

use crate::startup::AppState;
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
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/storefront/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/storefront/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
