//! Assertions on the API's answers.

use reqwest::{Response, StatusCode};
use serde_json::Value;

/// Asserts the status, then returns the body as JSON.
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(actual, status, "unexpected status; body: {body}");
    body
}

/// Asserts the status and the error code of a JSON error body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_json(response, status).await;
    assert_eq!(body["error"]["code"], code, "unexpected error body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
    body
}

/// A six-digit code that is not `code`.
pub fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
}
