use reqwest::StatusCode;
use serde_json::json;
use shop_testkit::{expect_error, expect_json, unique_contact, TestApp};

#[tokio::test]
async fn register_returns_the_normalised_user_and_a_working_token() {
    let app = TestApp::spawn().await;
    let response = app
        .register("  Ana.Lopez@Example.COM ", "+1 (415) 555-0100")
        .await;
    let body = expect_json(response, StatusCode::CREATED).await;
    assert_eq!(body["user"]["email"], "ana.lopez@example.com");
    assert_eq!(body["user"]["phone_number"], "+14155550100");
    assert_eq!(body["user"]["status"], "active");
    assert!(body["user"]["last_login_at"].is_string());
    let token = body["session_token"].as_str().expect("token");
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    expect_json(app.get("/cart", Some(token)).await, StatusCode::OK).await;
}

#[tokio::test]
async fn session_tokens_are_stored_hashed_with_a_ttl() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut conn = app.redis.clone();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{}s:*", app.settings.redis_key_prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert!(
        !key.windows(user.token.len())
            .any(|w| w == user.token.as_bytes()),
        "the raw token must not be a Redis key"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert!(
        ttl > 0 && ttl <= app.settings.session_ttl.as_secs() as i64,
        "ttl {ttl}"
    );
}

#[tokio::test]
async fn duplicate_email_or_phone_is_a_conflict() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (other_email, other_phone) = unique_contact();
    let same_email_other_case = user.email.to_uppercase();
    expect_error(
        app.register(&same_email_other_case, &other_phone).await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    expect_error(
        app.register(&other_email, &user.phone_number).await,
        StatusCode::CONFLICT,
        "phone_number_taken",
    )
    .await;
}

#[tokio::test]
async fn invalid_contacts_are_unprocessable() {
    let app = TestApp::spawn().await;
    expect_error(
        app.register("not-an-email", "+14155550100").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
    )
    .await;
    expect_error(
        app.register("a@example.com", "4155550100").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_number",
    )
    .await;
}

#[tokio::test]
async fn malformed_bodies_get_precise_json_errors() {
    let app = TestApp::spawn().await;
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/users/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send("{\"email\":".into(), "application/json")
        .await
        .expect("sent");
    expect_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    let response = send("{\"email\":\"a@example.com\"}".into(), "application/json")
        .await
        .expect("sent");
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let response = send(
        "{\"email\":3,\"phone_number\":[]}".into(),
        "application/json",
    )
    .await
    .expect("sent");
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let response = send("email=a".into(), "text/plain").await.expect("sent");
    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = format!(
        "{{\"email\":\"{}\"}}",
        "a".repeat(app.settings.max_body_bytes + 1)
    );
    let response = send(huge, "application/json").await.expect("sent");
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn sign_out_revokes_the_token() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response = app.sign_out(&user.token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/cart", Some(&user.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn missing_malformed_or_unknown_tokens_are_unauthorized() {
    let app = TestApp::spawn().await;
    let response = app.get("/cart", None).await;
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    expect_error(
        app.get("/cart", Some("short")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let unknown = "A".repeat(43);
    expect_error(
        app.get("/cart", Some(&unknown)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let body = json!({"product_id": 1, "quantity": 1});
    expect_error(
        app.post("/cart/add", Some(&unknown), &body).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}
