//! Secrets and personal data stay out of the logs: with every log of the API's own crates, of
//! its HTTP tracing and of sqlx at TRACE, a session's whole life (registration, proving the phone,
//! sign-in by code, cart, checkout, refusals, sign-out) never writes a session token, its digest, a sign-in code, an
//! email address or a phone number. (Tokens are stored in Redis only as their SHA-256 digest; see `sessions`.)
//!
//! Its own test binary: it installs the process's log subscriber.

use reqwest::StatusCode;
use serde_json::json;
use shop_testkit::{expect_error, expect_json, TestApp};
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_emails_and_phone_numbers_are_never_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("warn,shop_api=trace,shop_infra=trace,tower_http=trace,sqlx=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let product = app.new_product(&seller, "kitchen", 900, 5).await;
    let shopper = app.new_user().await;
    expect_json(
        app.request_code(&json!({ "email": shopper.email })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.verify_phone(&shopper).await;
    let code = app.issue_text_code(shopper.id).await;
    let signed_in = expect_json(
        app.verify_code(&json!({ "phone_number": shopper.phone_number }), &code)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let second_token = signed_in["session_token"].as_str().expect("token");
    app.cart_add(second_token, product["id"].as_i64().expect("id"), 1)
        .await;
    app.checkout_accepted(second_token).await;
    // A registration of the same addresses: answered as any, and its code signs in.
    expect_json(
        app.register(&shopper.email, &shopper.phone_number).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let registration_code = app.registration_code(&shopper.email).await;
    expect_json(
        app.verify_code(&json!({ "email": shopper.email }), &registration_code)
            .await,
        StatusCode::CREATED,
    )
    .await;
    // Refusals that name the contact details.
    expect_error(
        app.verify_code(&json!({ "email": shopper.email }), &code)
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let bad_email = format!("not-an-email-{}", shopper.phone_number);
    app.post(
        "/users/register",
        None,
        &json!({"email": bad_email, "phone_number": shopper.phone_number}),
    )
    .await;
    app.sign_out(&shopper.token).await;

    let text = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf-8");
    assert!(
        text.contains("user registered") && text.contains("checkout accepted"),
        "the API's logs were not captured"
    );
    let secrets = [
        shopper.email.as_str(),
        shopper.phone_number.as_str(),
        &shopper.phone_number[1..],
        shopper.token.as_str(),
        second_token,
        seller.token.as_str(),
        code.as_str(),
        registration_code.as_str(),
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "logged: {secret}");
    }
}
