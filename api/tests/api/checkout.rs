//! Checkout against the API alone (no worker): what is accepted, what is refused, what the cart
//! holds afterwards, and how a watcher learns the decision.

use reqwest::StatusCode;
use shop_domain::{
    messages::{OrderStatus, OrderStatusChanged},
    OrderId,
};
use shop_testkit::{eventually, expect_json, TestApp};
use std::time::Duration;

/// A product with `stock` units, and a shopper whose cart holds `quantity` of it.
async fn shopper_with(app: &TestApp, stock: i64, quantity: i64) -> (i64, shop_testkit::TestUser) {
    let seller = app.new_user().await;
    let id = app.new_product(&seller, "home", 1000, stock).await["id"]
        .as_i64()
        .expect("id");
    let shopper = app.new_user().await;
    expect_json(
        app.cart_add(&shopper.token, id, quantity).await,
        StatusCode::OK,
    )
    .await;
    (id, shopper)
}

/// Checkout refuses from the stock read with the cart in PostgreSQL, never from the hot
/// inventory in Redis: an entry there that says "sold out" (as a lost or reordered write would
/// leave) refuses nothing.
#[tokio::test]
async fn a_stale_sold_out_entry_in_the_hot_inventory_never_refuses() {
    let app = TestApp::spawn().await;
    let (short, shopper) = shopper_with(&app, 10, 2).await;
    let (id, other) = shopper_with(&app, 10, 2).await;
    let key = format!("{}stock:{id}", app.settings.redis_key_prefix);
    let mut redis = app.redis.clone();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("999|0")
        .query_async(&mut redis)
        .await
        .expect("set");
    expect_json(app.checkout(&other.token, None).await, StatusCode::ACCEPTED).await;
    // And a product that PostgreSQL says is short is refused at once, with no order written.
    sqlx::query("UPDATE products SET available_quantity = 1 WHERE id = $1")
        .bind(short)
        .execute(&app.db)
        .await
        .expect("sell down");
    let refused = shop_testkit::expect_error(
        app.checkout(&shopper.token, None).await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    assert_eq!(
        refused["error"]["short_lines"][0]["available"], 1,
        "{refused}"
    );
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE user_id = $1")
        .bind(shopper.id)
        .fetch_one(&app.db)
        .await
        .expect("orders");
    assert_eq!(orders, 0);
}

#[tokio::test]
async fn two_checkouts_of_one_cart_make_one_order() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let (_, shopper) = shopper_with(&app, 100, 2).await;
        let (a, b) = tokio::join!(
            app.checkout(&shopper.token, None),
            app.checkout(&shopper.token, None)
        );
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(statuses[0], StatusCode::ACCEPTED, "round {round}");
        assert!(
            matches!(
                statuses[1],
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "round {round}: the second checkout is refused, not a second order: {statuses:?}"
        );
        let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE user_id = $1")
            .bind(shopper.id)
            .fetch_one(&app.db)
            .await
            .expect("orders");
        assert_eq!(orders, 1, "round {round}");
        let items = app.cart(&shopper.token).await["items"].clone();
        assert_eq!(
            items.as_array().map(Vec::len),
            Some(0),
            "the order took the lines"
        );
    }
}

#[tokio::test]
async fn a_watcher_whose_announcement_was_lost_still_sees_the_decision_under_traffic() {
    let app = TestApp::spawn().await;
    let (_, shopper) = shopper_with(&app, 10, 1).await;
    let order = app.checkout_accepted(&shopper.token).await;
    let mut stream = app
        .get(&format!("/orders/{order}/events"), Some(&shopper.token))
        .await;
    let mut text = String::new();
    while !text.contains("PENDING") {
        let chunk = stream.chunk().await.expect("stream").expect("a chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Other orders are announced all the time; this order's decision is written, and its
    // announcement lost.
    let channel = format!("{}order-status", app.settings.redis_key_prefix);
    let mut redis = app.redis.clone();
    let noise = tokio::spawn(async move {
        loop {
            let other = OrderStatusChanged {
                order_id: OrderId::generate(),
                status: OrderStatus::Pending,
            };
            let payload = serde_json::to_string(&other).expect("json");
            let _: Result<i64, _> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async(&mut redis)
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    sqlx::query(
        "UPDATE orders SET status = $2, pending_lines = 0, completed_at = now() WHERE id = $1::UUID",
    )
    .bind(&order)
    .bind(OrderStatus::Confirmed.as_str())
    .execute(&app.db)
    .await
    .expect("decide");
    let read = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(chunk) = stream.chunk().await.expect("stream") {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    noise.abort();
    assert!(
        read.is_ok(),
        "no terminal status within the re-check interval: {text}"
    );
    assert!(text.contains("CONFIRMED"), "{text}");
}

#[tokio::test]
async fn an_idempotency_key_never_gets_no_order_before_an_order() {
    let app = TestApp::spawn().await;
    let (id, shopper) = shopper_with(&app, 10, 2).await;

    // The first request passes the sold-out check, then stalls (here: on the cart's lock).
    let mut blocker = app.db.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM cart_items WHERE user_id = $1 FOR UPDATE")
        .bind(shopper.id)
        .execute(&mut *blocker)
        .await
        .expect("lock the cart");
    let first = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/orders/checkout"),
            shopper.token.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "k1")
                .send()
                .await
                .expect("sent")
        })
    };
    let db = &app.db;
    eventually(
        Duration::from_secs(10),
        "the first request stalled (sessions waiting on a lock)",
        || async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(db)
            .await
            .expect("activity");
            if waiting > 0 {
                Ok(())
            } else {
                Err(waiting)
            }
        },
    )
    .await;
    // Meanwhile the product sells out, and the hot inventory knows it.
    let version: i64 = sqlx::query_scalar(
        "UPDATE products SET available_quantity = 0, version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("sell out");
    let mut redis = app.redis.clone();
    let _: () = redis::cmd("SET")
        .arg(format!("{}stock:{id}", app.settings.redis_key_prefix))
        .arg(format!("{version}|0"))
        .query_async(&mut redis)
        .await
        .expect("set");
    // A retry with the key is told the checkout is under way, not "no order".
    shop_testkit::expect_error(
        app.checkout(&shopper.token, Some("k1")).await,
        StatusCode::CONFLICT,
        "checkout_in_progress",
    )
    .await;
    blocker.rollback().await.expect("let the first go");
    let placed = expect_json(first.await.expect("first"), StatusCode::ACCEPTED).await;
    let again = app.checkout(&shopper.token, Some("k1")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = expect_json(again, StatusCode::ACCEPTED).await;
    assert_eq!(again["order_id"], placed["order_id"]);

    // A key whose first answer was "no order" keeps that answer, even once there is stock.
    expect_json(app.cart_add(&shopper.token, id, 1).await, StatusCode::OK).await;
    let refused = shop_testkit::expect_error(
        app.checkout(&shopper.token, Some("k2")).await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    sqlx::query("UPDATE products SET available_quantity = 5, version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("restock");
    let replayed = shop_testkit::expect_error(
        app.checkout(&shopper.token, Some("k2")).await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    assert_eq!(replayed, refused);
}

#[tokio::test]
async fn checkouts_that_arrive_together_share_a_statement_and_each_ends_once() {
    // One writer: while it writes, the others queue up and go together.
    let app = TestApp::spawn_configured(|s| s.intake_writers = 1).await;
    let mut shoppers = Vec::new();
    for _ in 0..24 {
        shoppers.push(shopper_with(&app, 100, 2).await.1);
    }
    // Every shopper checks out twice at once: one order each, the other refused.
    let answers = futures_util::future::join_all(
        shoppers
            .iter()
            .flat_map(|s| [app.checkout(&s.token, None), app.checkout(&s.token, None)]),
    )
    .await;
    let accepted = answers
        .iter()
        .filter(|a| a.status() == StatusCode::ACCEPTED)
        .count();
    // 409 when the other took the cart's lines under it, 422 when the cart was empty already.
    let refused = answers
        .iter()
        .filter(|a| {
            matches!(
                a.status(),
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            )
        })
        .count();
    assert_eq!((accepted, refused), (24, 24));
    let (orders, lines, outbox, carts): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE status = $1),
                (SELECT count(*) FROM order_items WHERE quantity = 2),
                (SELECT count(*) FROM outbox),
                (SELECT count(*) FROM cart_items)",
    )
    .bind(OrderStatus::Pending.as_str())
    .fetch_one(&app.db)
    .await
    .expect("counts");
    assert_eq!((orders, lines, outbox, carts), (24, 24, 24, 0));
    // Rows written by one statement (and its commit) share their transaction id.
    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT xmin::TEXT) FROM orders")
        .fetch_one(&app.db)
        .await
        .expect("transactions");
    assert!(transactions < 24, "24 orders in {transactions} statements");
}

#[tokio::test]
async fn a_checkout_that_fails_its_batch_fails_alone() {
    let app = TestApp::spawn_configured(|s| s.intake_writers = 1).await;
    // A fault only one order meets, inside the batch's statement.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'boom'; END $$;
         CREATE TRIGGER refuse_boom BEFORE INSERT ON orders FOR EACH ROW
         WHEN (NEW.delivery_address = 'boom') EXECUTE FUNCTION refuse_boom();",
    )
    .execute(&app.db)
    .await
    .expect("trigger");
    let mut shoppers = Vec::new();
    for _ in 0..16 {
        shoppers.push(shopper_with(&app, 100, 1).await.1);
    }
    let answers = futures_util::future::join_all(shoppers.iter().enumerate().map(|(i, s)| {
        let address = if i % 4 == 0 { "boom" } else { "here" };
        app.client
            .post(app.url("/orders/checkout"))
            .bearer_auth(&s.token)
            .json(&serde_json::json!({ "delivery_address": address }))
            .send()
    }))
    .await;
    for (i, answer) in answers.into_iter().enumerate() {
        let status = answer.expect("answered").status();
        if i % 4 == 0 {
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "shopper {i}");
        } else {
            assert_eq!(
                status,
                StatusCode::ACCEPTED,
                "shopper {i}: not failed by another's order"
            );
        }
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.db)
        .await
        .expect("orders");
    assert_eq!(orders, 12);
}

#[tokio::test]
async fn an_accepted_checkout_wakes_the_relays() {
    let app = TestApp::spawn().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.db)
        .await
        .expect("listener");
    listener
        .listen(shop_infra::outbox::WRITTEN_CHANNEL)
        .await
        .expect("listen");
    let (_, shopper) = shopper_with(&app, 10, 1).await;
    app.checkout_accepted(&shopper.token).await;
    let woken = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await;
    assert!(
        matches!(woken, Ok(Ok(_))),
        "no NOTIFY on {}: {woken:?}",
        shop_infra::outbox::WRITTEN_CHANNEL
    );
}
