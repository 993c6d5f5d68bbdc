//! Abuse limits: rate limits per address and per session, header size, slow clients, cart size.

use reqwest::StatusCode;
use shop_testkit::{eventually, expect_error, expect_json, TestApp};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `send` until one answer is 429 or the deadline passes; returns the answers before it
/// (each a 200) and the 429.
async fn until_limited<F, Fut>(send: F) -> (usize, reqwest::Response)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut sent = 0;
    let limited = eventually(Duration::from_secs(10), "rate limited", || {
        sent += 1;
        let answer = send();
        async move {
            let response = answer.await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                return Ok(response);
            }
            assert_eq!(response.status(), StatusCode::OK);
            Err(response.status())
        }
    })
    .await;
    (sent - 1, limited)
}

#[tokio::test]
async fn one_address_is_limited_with_429_and_retry_after_but_health_is_not() {
    let app = TestApp::spawn_configured(|s| s.rate_limit_per_ip = 5).await;
    let (passed, limited) = until_limited(|| app.get("/products", None)).await;
    // Requests of at most two one-second windows pass before the first refusal.
    assert!(passed <= 10, "{passed} requests passed a limit of 5/s");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!((1..=1).contains(&retry_after));
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    for _ in 0..20 {
        assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    }
    // The window passes and the address is served again.
    let app = &app;
    eventually(
        Duration::from_secs(5),
        "served again after the window",
        || async move {
            match app.get("/products", None).await.status() {
                StatusCode::OK => Ok(()),
                limited => Err(limited),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn one_session_is_limited_and_other_sessions_are_not() {
    let app = TestApp::spawn_configured(|s| s.rate_limit_per_session = 3).await;
    let busy = app.new_user().await;
    let calm = app.new_user().await;
    let (passed, limited) = until_limited(|| app.get("/cart", Some(&busy.token))).await;
    assert!(passed <= 6, "{passed} requests passed a limit of 3/s");
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    expect_json(app.get("/cart", Some(&calm.token)).await, StatusCode::OK).await;
}

#[tokio::test]
async fn oversized_headers_get_431_as_json() {
    let app = TestApp::spawn_configured(|s| s.max_header_bytes = 1024).await;
    let response = app
        .client
        .get(app.url("/products"))
        .header("x-padding", "a".repeat(2000))
        .send()
        .await
        .expect("sent");
    expect_error(
        response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    expect_json(app.get("/products", None).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = TestApp::spawn_configured(|s| s.header_read_timeout = Duration::from_secs(1)).await;
    let address = app.url("").trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"GET /products HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
        .await
        .expect("partial headers");
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;
    assert!(
        closed.is_ok(),
        "the connection stayed open past the header timeout"
    );
    // The server still serves everyone else.
    expect_json(app.get("/products", None).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_cart_holds_a_bounded_number_of_lines() {
    let app = TestApp::spawn_configured(|s| s.max_cart_lines = 2).await;
    let seller = app.new_user().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let product = app.new_product(&seller, "books", 100, 10).await;
        ids.push(product["id"].as_i64().expect("id"));
    }
    let shopper = app.new_user().await;
    for &id in &ids[..2] {
        expect_json(app.cart_add(&shopper.token, id, 1).await, StatusCode::OK).await;
    }
    expect_error(
        app.cart_add(&shopper.token, ids[2], 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_lines",
    )
    .await;
    // Lines already in the cart still change.
    let cart = expect_json(
        app.cart_add(&shopper.token, ids[0], 2).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"][0]["quantity"], 3);
    expect_error(
        app.cart_add(&shopper.token, ids[0], 100).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "quantity_too_large",
    )
    .await;
}

#[tokio::test]
async fn an_oversized_checkout_body_gets_413_as_json() {
    let app = TestApp::spawn_configured(|s| s.max_body_bytes = 1024).await;
    let shopper = app.new_user().await;
    let response = app
        .client
        .post(app.url("/orders/checkout"))
        .bearer_auth(&shopper.token)
        .body(format!(r#"{{"delivery_address":"{}"}}"#, "a".repeat(4096)))
        .send()
        .await
        .expect("sent");
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}
