use reqwest::StatusCode;
use serde_json::json;
use shop_testkit::{expect_error, expect_json, TestApp, TestUser};

/// An app with a seller, a shopper and one product of the seller's (10 in stock).
async fn shop_with_a_product(price: i64) -> (TestApp, TestUser, TestUser, i64) {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let shopper = app.new_user().await;
    let id = app.new_product(&seller, "home", price, 10).await["id"]
        .as_i64()
        .expect("id");
    (app, seller, shopper, id)
}

#[tokio::test]
async fn add_update_remove_with_totals() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let shopper = app.new_user().await;
    let kettle = app.new_product(&seller, "home", 2500, 10).await["id"]
        .as_i64()
        .expect("id");
    let mug = app.new_product(&seller, "home", 799, 10).await["id"]
        .as_i64()
        .expect("id");
    let empty = app.cart(&shopper.token).await;
    assert_eq!(empty, json!({"items": [], "total_cents": 0}));

    expect_json(
        app.cart_add(&shopper.token, kettle, 1).await,
        StatusCode::OK,
    )
    .await;
    let cart = expect_json(app.cart_add(&shopper.token, mug, 2).await, StatusCode::OK).await;
    assert_eq!(cart["total_cents"], 2500 + 2 * 799);
    assert_eq!(cart["items"][1]["line_total_cents"], 1598);
    assert_eq!(cart["items"][1]["unit_price_cents"], 799);
    assert!(cart["items"][0]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("Product")));

    let cart = expect_json(
        app.cart_add(&shopper.token, kettle, 2).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"][0]["quantity"], 3, "adds to the existing line");
    let cart = expect_json(
        app.cart_update(&shopper.token, kettle, 1).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart["items"][0]["quantity"], 1, "update sets the quantity");
    let cart = expect_json(
        app.cart_update(&shopper.token, mug, 0).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        cart["items"].as_array().map(Vec::len),
        Some(1),
        "0 removes the line"
    );
    let cart = expect_json(
        app.cart_remove(&shopper.token, kettle).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cart, json!({"items": [], "total_cents": 0}));
    // Removing again is harmless.
    expect_json(
        app.cart_remove(&shopper.token, kettle).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn cart_prices_follow_the_catalog() {
    let (app, seller, shopper, id) = shop_with_a_product(1000).await;
    app.cart_add(&shopper.token, id, 2).await;
    app.patch(
        &format!("/products/{id}"),
        Some(&seller.token),
        &json!({"price_cents": 1200}),
    )
    .await;
    assert_eq!(app.cart(&shopper.token).await["total_cents"], 2400);
}

#[tokio::test]
async fn bad_lines_are_refused() {
    let (app, _seller, shopper, id) = shop_with_a_product(1000).await;
    expect_error(
        app.cart_add(&shopper.token, 999_999, 1).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.cart_update(&shopper.token, 999_999, 1).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.cart_remove(&shopper.token, 999_999).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.cart_add(&shopper.token, 0, 1).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for quantity in [0, -1, 101] {
        expect_error(
            app.cart_add(&shopper.token, id, quantity).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
        )
        .await;
    }
    expect_error(
        app.cart_update(&shopper.token, id, -2).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_quantity",
    )
    .await;
    expect_json(app.cart_add(&shopper.token, id, 60).await, StatusCode::OK).await;
    expect_error(
        app.cart_add(&shopper.token, id, 41).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "quantity_too_large",
    )
    .await;
    assert_eq!(
        app.cart(&shopper.token).await["items"][0]["quantity"],
        60,
        "a refused add changes nothing"
    );
    let not_a_number = json!({"product_id": id, "quantity": "lots"});
    expect_error(
        app.post("/cart/add", Some(&shopper.token), &not_a_number)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
}

#[tokio::test]
async fn parallel_adds_to_one_line_never_lose_an_update() {
    let (app, _seller, shopper, id) = shop_with_a_product(100).await;
    let adds = 40;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..adds {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/cart/add"),
            shopper.token.clone(),
        );
        tasks.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"product_id": id, "quantity": 2}))
                .send()
                .await
                .map(|r| r.status())
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        let status = result.expect("task").expect("request");
        assert_eq!(status, StatusCode::OK);
        ok += 1;
    }
    assert_eq!(ok, adds);
    let cart = app.cart(&shopper.token).await;
    assert_eq!(
        cart["items"][0]["quantity"],
        2 * adds,
        "the exact sum of every add"
    );
}

#[tokio::test]
async fn carts_are_private_and_survive_restarts_and_a_flushed_redis() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let shopper = app.new_user().await;
    let other = app.new_user().await;
    let id = app.new_product(&seller, "home", 100, 10).await["id"]
        .as_i64()
        .expect("id");
    app.cart_add(&shopper.token, id, 3).await;
    assert_eq!(
        app.cart(&other.token).await["items"],
        json!([]),
        "another user's cart is separate"
    );

    app.flush_redis().await;
    expect_error(
        app.get("/cart", Some(&shopper.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // A second API process on the same stores, as after a restart.
    let restarted = TestApp::start(app.settings.clone(), app.id.clone()).await;
    let token = restarted.sign_in_by_code(&shopper).await;
    assert_eq!(restarted.cart(&token).await["items"][0]["quantity"], 3);
}
