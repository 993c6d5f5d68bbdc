//! What the sign-in and registration tests share: a second client at another address, the
//! requests it sends, and the answers they check.

use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};
use shop_testkit::{expect_error, TestApp};
use std::{net::IpAddr, time::Duration};

/// A client that connects from `ip` (any of 127/8 is this machine), to play a second person.
pub fn client_at(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .expect("client")
}

/// `POST path` with the JSON `body` from `client`.
pub async fn post_from(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    body: &Value,
) -> Response {
    client
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("sent")
}

/// `POST /sessions/verify` with `address` and `code` from `client`.
pub async fn verify_from(
    app: &TestApp,
    client: &reqwest::Client,
    address: &Value,
    code: &str,
) -> Response {
    let mut body = address.clone();
    body["code"] = json!(code);
    post_from(app, client, "/sessions/verify", &body).await
}

/// Status, body and `Retry-After` of an answer.
pub async fn answer(response: Response) -> (StatusCode, Value, Option<String>) {
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (
        response.status(),
        response.json().await.expect("JSON"),
        retry,
    )
}

/// The answer to a code that proves nothing (wrong, used, dead or bound elsewhere): 401
/// `invalid_code`.
pub async fn expect_invalid_code(response: Response) {
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_code").await;
}

/// The answer to a session token that is not (or no longer) valid: 401 `unauthorized`.
pub async fn expect_unauthorized(response: Response) {
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

/// The answer to a code request past a budget: 429 `too_many_code_requests`, with a
/// `Retry-After` of a second or more.
pub async fn expect_too_many_code_requests(response: Response) {
    let (status, body, retry) = answer(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_code_requests");
    assert!(retry.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
}

/// The API with code-sending budgets of `per_account` codes for an address and `per_ip` for a
/// client address, each an hour long.
pub async fn with_send_budgets(per_account: u32, per_ip: u32) -> TestApp {
    TestApp::spawn_configured(|s| {
        s.sign_in_sends_per_account = per_account;
        s.sign_in_send_window = Duration::from_secs(3600);
        s.sign_in_sends_per_ip = per_ip;
        s.sign_in_send_ip_window = Duration::from_secs(3600);
    })
    .await
}
