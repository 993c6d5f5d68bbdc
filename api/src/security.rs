//! Security headers.
//!
//! Every answer carries `X-Content-Type-Options: nosniff` (a browser never runs JSON or text as
//! script or style), `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY`. JSON answers
//! also carry `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`; the
//! storefront's page and assets carry [`STOREFRONT_CSP`]: only the shop's own scripts and styles,
//! images from the shop or any https address (sellers' product images), no inline script, no
//! framing.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
};

/// The storefront's policy: its own origin only, no inline script or style, no plugins, no
/// framing, forms and `<base>` pinned.
pub const STOREFRONT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

const JSON_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if json && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(JSON_CSP),
        );
    }
    response
}
