//! Security headers on every kind of answer.

use reqwest::{header, StatusCode};
use shop_testkit::TestApp;

#[tokio::test]
async fn the_storefront_allows_only_its_own_scripts_and_cannot_be_framed() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/storefront/app.js",
        "/storefront/core.js",
        "/storefront/drops.js",
        "/storefront/style.css",
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp} lacks {directive}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn json_answers_and_errors_are_not_sniffed_or_framed() {
    let app = TestApp::spawn().await;
    for (path, status) in [
        ("/products", StatusCode::OK),
        ("/cart", StatusCode::UNAUTHORIZED),
        ("/no-such-page", StatusCode::NOT_FOUND),
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), status, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
    }
}
