//! A seller's absolute stock (`PATCH /products/{id}` with `available_quantity`) is a `set`
//! command on the product's lane (issue 24): the lane orders it by its queue position (the id of
//! its outbox row) among the reserves, releases and restocks around it, whatever order their
//! records arrive in. A release queued before the count never comes on top of it; a restock
//! queued after it and applied first stays on top of it. Conservation then reads initial +
//! restocks + sellers' adjustments = available + units on CONFIRMED orders.

use crate::{buyer, product, take_queued};
use checkout_worker::{
    batch::{apply_batch, Outcome},
    dead_letter::Received,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_domain::{messages::InventoryCommand, OrderId, ProductId, Stock};
use shop_testkit::{eventually, expect_error, expect_json, TestApp, TestUser};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// The product's version in PostgreSQL.
async fn version(app: &TestApp, id: i64) -> i64 {
    sqlx::query_scalar("SELECT version FROM products WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("version")
}

/// The sets of product `id` the lanes have recorded in the ledger.
async fn sets_recorded(app: &TestApp, id: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM inventory_ledger WHERE product_id = $1 AND kind = 'set'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("sets")
}

/// Waits until the lanes have recorded `count` sets of product `id`.
async fn wait_for_sets(app: &TestApp, id: i64, count: i64) {
    eventually(SETTLE, "the sets recorded by the lane", || async move {
        match sets_recorded(app, id).await {
            n if n == count => Ok(()),
            other => Err(other),
        }
    })
    .await;
}

/// `PATCH /products/{id}` by `seller` with the stock `stock`, decided from version `seen`: the
/// answer's status and JSON.
async fn set_stock(
    app: &TestApp,
    seller: &TestUser,
    id: i64,
    stock: i64,
    seen: i64,
) -> (StatusCode, Value) {
    let body = json!({"available_quantity": stock, "expected_version": seen});
    let response = app
        .patch(&format!("/products/{id}"), Some(&seller.token), &body)
        .await;
    let status = response.status();
    (status, response.json().await.expect("json"))
}

/// The race, with the worker stopped so the release stays on its way: stock 5 sold out,
/// the buyer cancels, the seller counts the 5 units back on the shelf and sets 5 while the
/// release is still queued, then the worker comes back. Before the fix the API wrote 5 beside the
/// lane and the release then made it 10; now the stock ends at the seller's 5, whichever of the
/// two reaches the lane first.
#[tokio::test]
async fn a_count_made_while_a_release_is_on_its_way_is_the_stock() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let kettle = product(&app, &seller, 5).await;
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(kettle, 5)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    let decided = app.wait_for_terminal(&shopper.token, &order, SETTLE).await;
    assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    app.wait_until_settled(SETTLE).await;
    assert_eq!(app.stock().await[&kettle], 0, "sold out");

    // No worker runs now: what is queued stays in the outbox, on its way.
    worker.stop().await;
    expect_json(app.cancel(&shopper.token, &order).await, StatusCode::OK).await;
    let seen = version(&app, kettle).await;
    let (status, answer) = set_stock(&app, &seller, kettle, 5, seen).await;

    let worker = app.spawn_worker().await;
    // Settled: the release was applied (or absorbed by the count, applied first).
    app.wait_until_settled(SETTLE).await;
    assert_eq!(
        app.stock().await[&kettle],
        5,
        "the seller's count, not the count plus the release that was on its way"
    );
    wait_for_sets(&app, kettle, 1).await;
    assert_eq!(app.stock().await[&kettle], 5, "the count applied");
    app.assert_invariants(&initial).await;

    // The worker was stopped: the request answered before the set was applied, with the product
    // as it was (the release not back yet) and its version raised.
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["stock_update"], "PENDING", "{answer}");
    assert_eq!(answer["available_quantity"], 0, "{answer}");
    assert_eq!(answer["version"].as_i64(), Some(seen + 1), "{answer}");
    worker.stop().await;
}

/// With the worker running, a count answers 200 with the product as the lane left it (the other
/// fields changed with it); a stale version queues nothing; a count of 0 sells the product out.
#[tokio::test]
async fn a_count_answers_with_the_stock_the_lane_left() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let mug = product(&app, &seller, 5).await;
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(mug, 2)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    let decided = app.wait_for_terminal(&shopper.token, &order, SETTLE).await;
    assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    app.wait_until_settled(SETTLE).await;

    let seen = version(&app, mug).await;
    let path = format!("/products/{mug}");
    let body = json!({"available_quantity": 7, "price_cents": 1100, "expected_version": seen});
    let set = expect_json(
        app.patch(&path, Some(&seller.token), &body).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            set["available_quantity"].as_i64(),
            set["price_cents"].as_i64()
        ),
        (Some(7), Some(1100)),
        "{set}"
    );
    assert!(set.get("stock_update").is_none(), "{set}");
    assert!(set["version"].as_i64() > Some(seen), "{set}");

    // A count decided from the old version is refused, and queues nothing.
    expect_error(
        app.patch(&path, Some(&seller.token), &body).await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;

    // No version needed for a count.
    let zero = json!({"available_quantity": 0});
    let sold_out = expect_json(
        app.patch(&path, Some(&seller.token), &zero).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(sold_out["available_quantity"], 0, "{sold_out}");
    let late = buyer(&app, &[(mug, 1)]).await;
    let response = app.checkout(&late.token, None).await;
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    match status {
        // Refused at once: the hot stock says 0.
        StatusCode::CONFLICT => assert_eq!(answer["error"]["code"], "out_of_stock", "{answer}"),
        StatusCode::ACCEPTED => {
            let id = answer["order_id"].as_str().expect("order id");
            let refused = app.wait_for_terminal(&late.token, id, SETTLE).await;
            assert_eq!(refused["status"], "REJECTED", "{refused}");
        }
        other => panic!("unexpected checkout answer {other}: {answer}"),
    }

    app.wait_until_settled(SETTLE).await;
    wait_for_sets(&app, mug, 2).await;
    assert_eq!(app.stock().await[&mug], 0);
    // 5 listed + (7 - 3) + (0 - 7) = 0 available + 2 confirmed.
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

/// Applies `commands` as one batch of records that carried their queue positions; the outcomes.
async fn apply_queued(app: &TestApp, commands: &[(i64, InventoryCommand)]) -> Vec<Outcome> {
    let received: Vec<Received> = commands
        .iter()
        .enumerate()
        .map(|(n, &(queued, command))| Received {
            queued: Some(queued),
            ..Received::local(n, command)
        })
        .collect();
    apply_batch(&app.db, &received, None)
        .await
        .expect("batch applies")
        .decisions
        .iter()
        .map(|d| d.outcome)
        .collect()
}

/// The lane's rules, fed batches directly in the order the relays could deliver them: a count
/// that overtakes the release queued before it absorbs it; a restock queued after a count that
/// reaches the lane first stays on top of it; an older count after a newer one changes nothing.
#[tokio::test]
async fn counts_are_ordered_by_queue_position_not_by_arrival() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let kettle = product(&app, &seller, 5).await;
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(kettle, 5)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    let reserve = take_queued(&app).await;
    assert_eq!(apply_queued(&app, &reserve).await, [Outcome::Reserved]);
    assert_eq!(
        app.order(&shopper.token, &order).await["status"],
        "CONFIRMED"
    );
    assert_eq!(app.stock().await[&kettle], 0, "sold out");

    // The buyer cancels, the seller counts 5 (no worker: 202 after the wait), and the count
    // reaches the lane before the release queued before it.
    expect_json(app.cancel(&shopper.token, &order).await, StatusCode::OK).await;
    let (status, _) = set_stock(&app, &seller, kettle, 5, version(&app, kettle).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = take_queued(&app).await;
    let (release, count) = (queued[0], queued[1]);
    assert!(release.0 < count.0, "the release was queued first");
    assert_eq!(
        apply_queued(&app, &[count]).await,
        [Outcome::Set { available: 5 }]
    );
    assert_eq!(apply_queued(&app, &[release]).await, [Outcome::Absorbed]);
    assert_eq!(app.stock().await[&kettle], 5, "the count holds the release");
    let lines = app.order(&shopper.token, &order).await;
    assert_eq!(lines["items"][0]["status"], "RELEASED", "{lines}");

    // A newer count of 8, then a restock of 3 queued after it that reaches the lane first, then
    // the count, then an older count (queued where the first one was) and a redelivery of the
    // first one.
    let (status, _) = set_stock(&app, &seller, kettle, 8, version(&app, kettle).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let restock = app.restock(&seller.token, kettle, 3, None).await;
    assert_eq!(restock.status(), StatusCode::ACCEPTED);
    let queued = take_queued(&app).await;
    let (newer, restocked) = (queued[0], queued[1]);
    assert_eq!(apply_queued(&app, &[restocked]).await, [Outcome::Restocked]);
    assert_eq!(app.stock().await[&kettle], 8, "5 + 3");
    let older = InventoryCommand::set(
        OrderId::generate(),
        ProductId::new(kettle).expect("id"),
        Stock::new(1).expect("stock"),
    );
    assert_eq!(
        apply_queued(&app, &[newer, (count.0, older), count]).await,
        [
            Outcome::Set { available: 11 },
            Outcome::Superseded,
            Outcome::Duplicate
        ],
        "the count plus the restock queued after it"
    );
    assert_eq!(app.stock().await[&kettle], 11);
    app.assert_invariants(&initial).await;
}

/// A checkout cancelled while its reserve is on its way, and then a count: the reserve reaches
/// the lane after the count and takes its units from it, so its release gives them back, though
/// it was queued before the count. Each comes in a batch of its own, so the reserve's ledger row
/// is what tells the release. Before the fix the release was absorbed and 2 units were lost.
#[tokio::test]
async fn a_reserve_that_reaches_the_lane_after_a_count_gives_its_units_back() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let kettle = product(&app, &seller, 5).await;
    let initial = app.stock().await;
    let shopper = buyer(&app, &[(kettle, 2)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    expect_json(app.cancel(&shopper.token, &order).await, StatusCode::OK).await;
    let (status, _) = set_stock(&app, &seller, kettle, 5, version(&app, kettle).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = take_queued(&app).await;
    let [reserve, release, count] = queued[..] else {
        panic!("a reserve, a release and a count: {queued:?}")
    };
    assert!(reserve.0 < release.0 && release.0 < count.0, "{queued:?}");

    assert_eq!(
        apply_queued(&app, &[count]).await,
        [Outcome::Set { available: 5 }]
    );
    assert_eq!(apply_queued(&app, &[reserve]).await, [Outcome::Reserved]);
    assert_eq!(app.stock().await[&kettle], 3, "taken from the count");
    assert_eq!(apply_queued(&app, &[release]).await, [Outcome::Released]);
    assert_eq!(app.stock().await[&kettle], 5, "the shelf's 5, none lost");
    let cancelled = app.order(&shopper.token, &order).await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    app.assert_invariants(&initial).await;
}
