//! A seller's view of their products and of the order lines that bought them.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_api::checkout::Strategy;
use shop_domain::OrderStatus;
use shop_testkit::{expect_error, expect_json, TestApp};

#[tokio::test]
async fn a_seller_sees_stock_sales_reservations_and_the_lines_that_bought_them() {
    // Decided in the request, so the test needs no worker.
    let app = TestApp::spawn_with(Strategy::RowLock).await;
    let seller = app.new_user().await;
    let other_seller = app.new_user().await;
    let kettle = app.new_product(&seller, "home", 2500, 10).await["id"]
        .as_i64()
        .expect("id");
    let mug = app.new_product(&seller, "home", 800, 5).await["id"]
        .as_i64()
        .expect("id");
    let theirs = app.new_product(&other_seller, "home", 100, 5).await["id"]
        .as_i64()
        .expect("id");

    let mut orders = Vec::new();
    for lines in [vec![(kettle, 2), (theirs, 1)], vec![(kettle, 1), (mug, 3)]] {
        let buyer = app.new_user().await;
        for (product, quantity) in lines {
            expect_json(
                app.cart_add(&buyer.token, product, quantity).await,
                StatusCode::OK,
            )
            .await;
        }
        let placed = expect_json(app.checkout(&buyer.token, None).await, StatusCode::CREATED).await;
        orders.push(placed["order_id"].as_str().expect("id").to_owned());
    }
    // The second order, caught while its lines are being decided: taken, not yet sold.
    sqlx::query("UPDATE orders SET status = $2, completed_at = NULL WHERE id = $1::UUID")
        .bind(&orders[1])
        .bind(OrderStatus::Pending.as_str())
        .execute(&app.db)
        .await
        .expect("order pending again");

    let page = expect_json(
        app.get("/sellers/me/products", Some(&seller.token)).await,
        StatusCode::OK,
    )
    .await;
    let figures: Vec<(i64, i64, i64, i64)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_i64().expect("number");
            (
                n("id"),
                n("available_quantity"),
                n("units_sold"),
                n("units_reserved"),
            )
        })
        .collect();
    assert_eq!(figures, vec![(kettle, 7, 2, 1), (mug, 2, 0, 3)]);

    let lines = expect_json(
        app.get("/sellers/me/orders", Some(&seller.token)).await,
        StatusCode::OK,
    )
    .await;
    let lines: Vec<(String, i64, i64, String)> = lines["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l: &Value| {
            (
                l["order_id"].as_str().expect("order").to_owned(),
                l["product_id"].as_i64().expect("product"),
                l["quantity"].as_i64().expect("quantity"),
                l["order_status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    // Newest first; the other seller's line is not shown.
    assert_eq!(
        lines,
        vec![
            (orders[1].clone(), mug, 3, "PENDING".to_owned()),
            (orders[1].clone(), kettle, 1, "PENDING".to_owned()),
            (orders[0].clone(), kettle, 2, "CONFIRMED".to_owned()),
        ]
    );

    // Pages of one line cover the same lines in the same order.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/sellers/me/orders?limit=1&cursor={c}"),
            None => "/sellers/me/orders?limit=1".to_owned(),
        };
        let page = expect_json(app.get(&path, Some(&seller.token)).await, StatusCode::OK).await;
        paged.push(page["items"][0]["product_id"].as_i64().expect("product"));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, vec![mug, kettle, kettle]);

    // Someone who sells nothing sees nothing; without a session, 401; a foreign cursor, 400.
    let buyer = app.new_user().await;
    let empty = expect_json(
        app.get("/sellers/me/products", Some(&buyer.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(empty, json!({"items": [], "next_cursor": null}));
    expect_error(
        app.get("/sellers/me/orders", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let by_id = page_cursor(&app, &seller.token).await;
    expect_error(
        app.get(
            &format!("/sellers/me/orders?cursor={by_id}"),
            Some(&seller.token),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
}

/// A cursor of the products list (id order), which the order lines must refuse.
async fn page_cursor(app: &TestApp, token: &str) -> String {
    let page = expect_json(
        app.get("/sellers/me/products?limit=1", Some(token)).await,
        StatusCode::OK,
    )
    .await;
    page["next_cursor"].as_str().expect("cursor").to_owned()
}
