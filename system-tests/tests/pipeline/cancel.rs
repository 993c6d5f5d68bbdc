//! Cancelling orders and restocking products through the lanes: units come back once, whatever
//! a cancel races; restocks add to stock that checkouts are taking at the same moment; and the
//! conservation invariant (initial + restocks = available + units on CONFIRMED orders) holds.

use crate::{buyer, checkout_all, post_as, product, shop_with_buyers, status_counts};
use reqwest::StatusCode;
use shop_api::checkout::Strategy;
use shop_domain::OrderStatus;
use shop_infra::orders::audit;
use shop_testkit::{expect_error, expect_json, TestApp};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// A confirmed order, cancelled: 200 CANCELLED (twice, the same), its units
/// back; others' orders are 404 and a rejected one 409. (Its mail: `mail.rs`.)
#[tokio::test]
async fn a_cancel_gives_the_units_back_once() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let (kettle, mug) = (
        product(&app, &seller, 5).await,
        product(&app, &seller, 1).await,
    );
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(kettle, 2), (mug, 1)]).await;
    // A rival for the last mug, accepted too before the worker decides either.
    let rival = buyer(&app, &[(mug, 1)]).await;
    let confirmed = app.checkout_accepted(&shopper.token).await;
    let rejected = app.checkout_accepted(&rival.token).await;
    let worker = app.spawn_worker().await;
    let order = app
        .wait_for_terminal(&shopper.token, &confirmed, SETTLE)
        .await;
    let (confirmed, rejected, shopper, rival) = if order["status"] == "CONFIRMED" {
        (confirmed, rejected, shopper, rival)
    } else {
        // The rival's order came first: swap roles (its mug line is the only one).
        (rejected, confirmed, rival, shopper)
    };
    let lost = app.wait_for_terminal(&rival.token, &rejected, SETTLE).await;
    assert_eq!(lost["status"], "REJECTED", "one mug for two orders");
    expect_error(
        app.cancel(&rival.token, &rejected).await,
        StatusCode::CONFLICT,
        "not_cancellable",
    )
    .await;
    app.wait_until_settled(SETTLE).await;
    let before_cancel = app.stock().await;

    let stranger = app.new_user().await;
    expect_error(
        app.cancel(&stranger.token, &confirmed).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.cancel(&shopper.token, "not-an-order").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let cancelled = expect_json(app.cancel(&shopper.token, &confirmed).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert!(cancelled["cancelled_at"].is_string(), "{cancelled}");
    let again = expect_json(app.cancel(&shopper.token, &confirmed).await, StatusCode::OK).await;
    assert_eq!(
        (&again["status"], &again["cancelled_at"]),
        (&cancelled["status"], &cancelled["cancelled_at"]),
        "cancelling twice is the same answer"
    );
    app.wait_until_settled(SETTLE).await;
    assert_eq!(app.stock().await, initial, "every unit came back, once");
    assert_ne!(before_cancel, initial, "the order had taken units");
    let lines = app.order(&shopper.token, &confirmed).await;
    for line in lines["items"].as_array().expect("items") {
        assert_eq!(line["status"], "RELEASED", "{lines}");
    }
    app.assert_invariants(&initial).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"shop_api_orders_cancelled_total{from="CONFIRMED"}"#),
        "{metrics}"
    );
    worker.stop().await;
}

/// Orders cancelled the moment they are accepted, while the worker decides them: each ends
/// CANCELLED with none of its units kept, or was decided first (a REJECTED order refuses the
/// cancel), and stock is conserved.
#[tokio::test]
async fn cancels_racing_decisions_end_consistent() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let (_, buyers) = shop_with_buyers(&app, (0..6).map(|i| 4 + i % 3), 36, |i, products| {
        (0..1 + i % 3)
            .map(|j| {
                (
                    products[(i * 5 + j * 2) % products.len()],
                    1 + (i % 2) as i64,
                )
            })
            .collect()
    })
    .await;
    let initial = app.stock().await;
    let orders = checkout_all(&app, &buyers).await;
    // Every other accepted order is cancelled at once, concurrently.
    let mut cancels = tokio::task::JoinSet::new();
    for (buyer, order) in buyers.iter().zip(&orders).step_by(2) {
        let Some(order) = order.clone() else { continue };
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/orders/{order}/cancel")),
            buyer.token.clone(),
        );
        cancels.spawn(async move {
            let (status, body) = post_as(&client, &url, &token).await;
            match status {
                StatusCode::OK => assert_eq!(body["status"], "CANCELLED", "{body}"),
                StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "not_cancellable"),
                other => panic!("unexpected cancel answer {other}: {body}"),
            }
        });
    }
    while let Some(done) = cancels.join_next().await {
        done.expect("cancel task");
    }
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    let counts = status_counts(&app).await;
    assert!(
        counts
            .get(OrderStatus::Cancelled.as_str())
            .is_some_and(|&n| n > 0),
        "{counts:?}"
    );
    worker.stop().await;
}

/// A cancel accepted before any worker runs: the releases may reach a lane before the reserves
/// they cancel, and still nothing is taken.
#[tokio::test]
async fn a_cancel_before_the_decision_takes_nothing() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let (a, b) = (
        product(&app, &seller, 3).await,
        product(&app, &seller, 3).await,
    );
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(a, 2), (b, 3)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    let cancelled = expect_json(app.cancel(&shopper.token, &order).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "CANCELLED");
    let worker = app.spawn_worker().await;
    app.wait_until_settled(SETTLE).await;
    assert_eq!(app.stock().await, initial);
    let order = app.order(&shopper.token, &order).await;
    assert_eq!(
        order["status"], "CANCELLED",
        "a later decision leaves it so"
    );
    for line in order["items"].as_array().expect("items") {
        assert!(
            ["RELEASED", "CANCELLED"].contains(&line["status"].as_str().unwrap_or_default()),
            "{order}"
        );
    }
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

/// The synchronous strategies' orders are cancelled through the lanes too.
#[tokio::test]
async fn a_row_lock_order_is_cancelled_through_the_lane() {
    let app = TestApp::spawn_with(Strategy::RowLock).await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 4).await;
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(id, 3)]).await;
    let placed = expect_json(
        app.checkout(&shopper.token, None).await,
        StatusCode::CREATED,
    )
    .await;
    let order = placed["order_id"].as_str().expect("id");
    assert_eq!(app.stock().await[&id], 1);
    expect_json(app.cancel(&shopper.token, order).await, StatusCode::OK).await;
    app.wait_until_settled(SETTLE).await;
    assert_eq!(app.stock().await, initial);
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

/// Restocks of a product while buyers take it: every restocked unit is added to what the
/// checkouts left, none overwritten; a repeated Idempotency-Key adds once; only the seller may
/// restock.
#[tokio::test]
async fn restocks_concurrent_with_checkouts_conserve_stock() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let hot = product(&app, &seller, 5).await;
    let initial = app.stock().await;
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(buyer(&app, &[(hot, 1)]).await);
    }
    let restocks = {
        let app = &app;
        let token = seller.token.clone();
        async move {
            let mut applied = 0;
            for i in 0..10 {
                let key = format!("restock-{}", i / 2);
                let response = app.restock(&token, hot, 2, Some(&key)).await;
                let body = expect_json(response, StatusCode::OK).await;
                assert_eq!(body["status"], "APPLIED", "{body}");
                applied += i64::from(i % 2 == 0) * 2;
            }
            applied
        }
    };
    let (_, added) = tokio::join!(checkout_all(&app, &buyers), restocks);
    assert_eq!(added, 10, "five distinct keys of two units");
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    let restocked: i64 = audit::applied_restocks(&app.db)
        .await
        .expect("restocked")
        .values()
        .sum();
    assert_eq!(restocked, 10, "a repeated key added its units once");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"shop_api_restocks_total{status="APPLIED"}"#),
        "{metrics}"
    );

    expect_error(
        app.restock(&seller.token, hot, 3, Some("restock-0")).await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    )
    .await;
    let stranger = app.new_user().await;
    expect_error(
        app.restock(&stranger.token, hot, 1, None).await,
        StatusCode::FORBIDDEN,
        "not_seller",
    )
    .await;
    expect_error(
        app.restock(&seller.token, 999_999, 1, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for bad in [0, -1, 1_000_001] {
        expect_error(
            app.restock(&seller.token, hot, bad, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
        )
        .await;
    }
    worker.stop().await;
}

/// The invariants' checker fires on a cancelled order that still holds its units.
#[tokio::test]
async fn the_invariants_catch_a_cancelled_order_holding_units() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 4).await;
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(id, 2)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    app.wait_for_terminal(&shopper.token, &order, SETTLE).await;
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    worker.stop().await;
    // Cancelled, but nothing given back: what a lost release would leave.
    sqlx::query("UPDATE orders SET status = $2, cancelled_at = now() WHERE id = $1::UUID")
        .bind(&order)
        .bind(OrderStatus::Cancelled.as_str())
        .execute(&app.db)
        .await
        .expect("corrupt");
    let app = std::sync::Arc::new(app);
    let check = {
        let app = app.clone();
        tokio::spawn(async move { app.assert_invariants(&initial).await })
    };
    let failed = check.await.expect_err("the checker must fire");
    assert!(failed.is_panic());
}

/// With no lane running a restock is recorded and answered 202; once a worker runs, asking
/// again with the same Idempotency-Key gets the result, and the units were added once.
#[tokio::test]
async fn a_restock_waits_for_its_lane_and_a_repeat_gets_its_result() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 3).await;
    let pending = expect_json(
        app.restock(&seller.token, id, 4, Some("wait-1")).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(pending["status"], "PENDING");
    assert!(pending["available_quantity"].is_null(), "{pending}");
    let worker = app.spawn_worker().await;
    app.wait_until_settled(SETTLE).await;
    let applied = expect_json(
        app.restock(&seller.token, id, 4, Some("wait-1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(applied["restock_id"], pending["restock_id"]);
    assert_eq!(
        (&applied["status"], applied["available_quantity"].as_i64()),
        (&"APPLIED".into(), Some(7)),
        "added once"
    );
    app.wait_until_settled(SETTLE).await;
    assert_eq!(app.stock().await[&id], 7);
    worker.stop().await;
}
