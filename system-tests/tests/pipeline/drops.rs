//! Flash-sale drops through the pipeline: a shopper firing twenty checkouts at a product limited
//! to 2 per shopper gets 2 units, the other orders rejected with `limit_exceeded`; a cancel gives
//! counted units back once its release is applied, so a later order succeeds (whether the
//! counted order went through a lane or a synchronous strategy); and a checkout before the sale
//! starts is refused, then accepted and confirmed once the database's clock passes the start.
//! (The API's side, validation and the invariant checker: `api/tests/api/drops.rs`.)

use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_api::checkout::Strategy;
use shop_testkit::{eventually, expect_error, expect_json, TestApp, TestUser};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// A seller's product with `stock` units and the extra `fields`; its id.
async fn drop_of(app: &TestApp, stock: i64, fields: Value) -> i64 {
    let seller = app.new_user().await;
    app.new_product_with(&seller, stock, fields).await["id"]
        .as_i64()
        .expect("id")
}

/// Sets the shopper's line of `product` to `quantity` and checks out, again until the checkout
/// is answered with an order (a concurrent checkout of the same cart may take the line first:
/// 409 `cart_changed` or 422 `empty_cart`). Returns the order id.
async fn order_of(app: &TestApp, shopper: &TestUser, product: i64, quantity: i64) -> String {
    for _ in 0..200 {
        expect_json(
            app.cart_update(&shopper.token, product, quantity).await,
            StatusCode::OK,
        )
        .await;
        let key = uuid::Uuid::new_v4().to_string();
        let response = app.checkout(&shopper.token, Some(&key)).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        match status {
            StatusCode::ACCEPTED | StatusCode::CREATED => {
                return body["order_id"].as_str().expect("id").to_owned()
            }
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
                let code = &body["error"]["code"];
                assert!(code == "cart_changed" || code == "empty_cart", "{body}");
            }
            other => panic!("unexpected checkout answer {other}: {body}"),
        }
    }
    panic!("no order after 200 checkouts");
}

/// The order's single line, asserted REJECTED for being over the shopper's limit.
fn assert_over_limit(order: &Value) {
    assert_eq!(order["status"], "REJECTED", "{order}");
    let line = &order["items"][0];
    assert_eq!(
        (&line["status"], &line["reason_code"]),
        (&json!("SHORT"), &json!("limit_exceeded")),
        "{order}"
    );
    assert!(
        line["reason"].as_str().is_some_and(|r| r.contains("limit")),
        "{order}"
    );
}

/// Twenty checkouts fired at once by one shopper (and twenty by another) at a product limited to
/// 2 per shopper, all accepted before the worker runs, so its lane decides them together: each
/// shopper gets exactly 2 units, every other order is rejected with `limit_exceeded`, and the
/// shoppers' counts agree with the ledger.
#[tokio::test]
async fn twenty_checkouts_of_one_shopper_get_the_limit_and_no_more() {
    let app = TestApp::spawn_with(Strategy::Queue).await;
    let product = drop_of(&app, 100, json!({"max_per_shopper": 2})).await;
    let initial = app.stock().await;
    let shoppers = [app.new_user().await, app.new_user().await];
    let mut orders: Vec<Vec<String>> = Vec::new();
    for shopper in &shoppers {
        let fired = (0..20).map(|_| order_of(&app, shopper, product, 1));
        orders.push(futures_util::future::join_all(fired).await);
    }
    let worker = app.spawn_worker().await;
    app.wait_until_settled(SETTLE).await;
    for (shopper, orders) in shoppers.iter().zip(&orders) {
        let mut confirmed_units = 0;
        for id in orders {
            let order = app.order(&shopper.token, id).await;
            assert_eq!(order["items"][0]["quantity"], 1, "{order}");
            if order["status"] == "CONFIRMED" {
                confirmed_units += 1;
            } else {
                assert_over_limit(&order);
            }
        }
        assert_eq!(confirmed_units, 2, "exactly the limit, to each shopper");
    }
    assert_eq!(app.stock().await[&product], 96);
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

/// A shopper at the limit is refused more (the queue rejects the order; a synchronous strategy
/// answers 409); cancelling an order gives its counted units back once the release is applied,
/// and a later order of the shopper succeeds.
async fn a_cancel_gives_counted_units_back(strategy: Strategy) {
    let app = TestApp::spawn_with(strategy).await;
    let worker = app.spawn_worker().await;
    let product = drop_of(&app, 50, json!({"max_per_shopper": 2})).await;
    let initial = app.stock().await;
    let shopper = app.new_user().await;
    let first = order_of(&app, &shopper, product, 2).await;
    let confirmed = app.wait_for_terminal(&shopper.token, &first, SETTLE).await;
    assert_eq!(confirmed["status"], "CONFIRMED", "{confirmed}");
    if strategy == Strategy::Queue {
        let more = order_of(&app, &shopper, product, 1).await;
        assert_over_limit(&app.wait_for_terminal(&shopper.token, &more, SETTLE).await);
    } else {
        expect_json(
            app.cart_update(&shopper.token, product, 1).await,
            StatusCode::OK,
        )
        .await;
        expect_error(
            app.checkout(&shopper.token, None).await,
            StatusCode::CONFLICT,
            "limit_exceeded",
        )
        .await;
    }
    expect_json(app.cancel(&shopper.token, &first).await, StatusCode::OK).await;
    app.wait_until_settled(SETTLE).await;
    let counted: i32 = sqlx::query_scalar(
        "SELECT units FROM shopper_units WHERE product_id = $1 AND user_id = $2",
    )
    .bind(product)
    .bind(shopper.id)
    .fetch_one(&app.db)
    .await
    .expect("the shopper's count");
    assert_eq!(counted, 0, "the cancelled order's units were given back");
    let later = order_of(&app, &shopper, product, 2).await;
    let again = app.wait_for_terminal(&shopper.token, &later, SETTLE).await;
    assert_eq!(again["status"], "CONFIRMED", "{again}");
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_cancel_gives_counted_units_back_through_the_lane() {
    a_cancel_gives_counted_units_back(Strategy::Queue).await;
}

#[tokio::test]
async fn a_cancel_gives_units_counted_by_a_synchronous_strategy_back() {
    a_cancel_gives_counted_units_back(Strategy::RowLock).await;
}

/// Before its start (by the database's clock) a drop's checkout is 409 `not_on_sale_yet` with
/// the start; moved to two seconds ahead, the same cart is accepted once that clock passes it,
/// and the order is confirmed.
#[tokio::test]
async fn a_drop_is_refused_before_its_start_and_accepted_after() {
    let app = TestApp::spawn_with(Strategy::Queue).await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let starts_at = app.database_time_in(Duration::from_secs(3600)).await;
    let drop = app
        .new_product_with(&seller, 5, json!({ "sale_starts_at": starts_at }))
        .await;
    let product = drop["id"].as_i64().expect("id");
    let shopper = app.new_user().await;
    expect_json(
        app.cart_add(&shopper.token, product, 1).await,
        StatusCode::OK,
    )
    .await;
    let refused = expect_error(
        app.checkout(&shopper.token, None).await,
        StatusCode::CONFLICT,
        "not_on_sale_yet",
    )
    .await;
    assert!(refused["error"]["sale_starts_at"].is_string(), "{refused}");

    let soon = json!({ "sale_starts_at": app.database_time_in(Duration::from_secs(2)).await });
    expect_json(
        app.patch(&format!("/products/{product}"), Some(&seller.token), &soon)
            .await,
        StatusCode::OK,
    )
    .await;
    let (app_ref, token) = (&app, shopper.token.as_str());
    let order = eventually(Duration::from_secs(15), "the sale opened", || async move {
        let response = app_ref.checkout(token, None).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        match status {
            StatusCode::ACCEPTED => Ok(body["order_id"].as_str().expect("id").to_owned()),
            StatusCode::CONFLICT if body["error"]["code"] == "not_on_sale_yet" => Err(body),
            other => panic!("unexpected checkout answer {other}: {body}"),
        }
    })
    .await;
    let decided = app.wait_for_terminal(&shopper.token, &order, SETTLE).await;
    assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    worker.stop().await;
}
