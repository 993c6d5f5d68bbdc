//! Access: every endpoint that needs a session refuses requests without one, and no endpoint
//! lets one user read or change another user's cart, orders, products or session.

use reqwest::{Method, StatusCode};
use shop_testkit::{expect_error, expect_json, TestApp};

#[tokio::test]
async fn every_endpoint_the_document_marks_as_needing_a_session_answers_401_without_one() {
    let app = TestApp::spawn().await;
    let doc = expect_json(app.get("/openapi.json", None).await, StatusCode::OK).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if operation.get("security").is_none() {
                continue;
            }
            let url = app.url(&path.replace("{id}", "0190b7f2-0000-7000-8000-000000000001"));
            let method: Method = method.to_uppercase().parse().expect("method");
            for token in [None, Some("A".repeat(43))] {
                let mut request = app.client.request(method.clone(), &url);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let response = request
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .expect("sent");
                let status = response.status();
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {token:?}"
                );
                assert_eq!(response.headers()["www-authenticate"], "Bearer");
                expect_error(response, status, "unauthorized").await;
            }
            checked += 1;
        }
    }
    assert!(checked >= 11, "only {checked} operations need a session");
}

#[tokio::test]
async fn no_endpoint_lets_a_user_touch_another_users_data() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let product = app.new_product(&seller, "garden", 700, 10).await;
    let id = product["id"].as_i64().expect("id");
    let owner = app.new_user().await;
    let other = app.new_user().await;
    expect_json(app.cart_add(&owner.token, id, 2).await, StatusCode::OK).await;
    let order = app.checkout_accepted(&owner.token).await;
    let before = expect_json(app.cart_add(&owner.token, id, 3).await, StatusCode::OK).await;

    // The other user's cart endpoints only ever see and change their own cart.
    let theirs = app.cart(&other.token).await;
    assert_eq!(theirs["items"], serde_json::json!([]));
    expect_json(app.cart_update(&other.token, id, 1).await, StatusCode::OK).await;
    expect_json(app.cart_remove(&other.token, id).await, StatusCode::OK).await;
    assert_eq!(app.cart(&owner.token).await, before);
    // Checking out uses the caller's (now empty) cart, never the owner's.
    expect_error(
        app.checkout(&other.token, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_cart",
    )
    .await;
    assert_eq!(app.cart(&owner.token).await, before);

    // Orders: someone else's is indistinguishable from none.
    for path in [
        format!("/orders/{order}"),
        format!("/orders/{order}/events"),
    ] {
        expect_error(
            app.get(&path, Some(&other.token)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    let listed = expect_json(app.get("/orders", Some(&other.token)).await, StatusCode::OK).await;
    assert_eq!(listed["items"], serde_json::json!([]));

    // Products: only the seller changes them.
    expect_error(
        app.patch(
            &format!("/products/{id}"),
            Some(&other.token),
            &serde_json::json!({"available_quantity": 0, "expected_version": 1}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_seller",
    )
    .await;

    // Signing out ends only the caller's session.
    let response = app.sign_out(&other.token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_json(app.get("/cart", Some(&owner.token)).await, StatusCode::OK).await;
    expect_error(
        app.get("/cart", Some(&other.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}
