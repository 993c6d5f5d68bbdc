//! The correctness every checkout strategy owes, checked for each of them: no oversell on a hot
//! product, all-or-nothing orders across partitions, one order per Idempotency-Key, and stock
//! conserved under a concurrent mix. The `queue` strategy is decided by a worker; the others in
//! the request (the worker still relays their order events).

use crate::{buyer, checkout_all, product, shop_with_buyers, status_counts};
use inventory_partitioner::partition_for;
use reqwest::StatusCode;
use serde_json::json;
use shop_api::checkout::Strategy;
use shop_domain::{OrderStatus, ProductId};
use shop_testkit::{expect_error, expect_json, TestApp};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// One test per strategy for each scenario.
macro_rules! for_every_strategy {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use shop_api::checkout::Strategy;
            #[tokio::test]
            async fn queue() {
                super::$scenario(Strategy::Queue).await;
            }
            #[tokio::test]
            async fn optimistic() {
                super::$scenario(Strategy::Optimistic).await;
            }
            #[tokio::test]
            async fn redis_lock() {
                super::$scenario(Strategy::RedisLock).await;
            }
            #[tokio::test]
            async fn row_lock() {
                super::$scenario(Strategy::RowLock).await;
            }
        }
    )*};
}

for_every_strategy!(
    one_hot_product_never_oversells,
    a_short_line_fails_the_whole_order,
    an_idempotency_key_yields_one_order,
    a_concurrent_mix_conserves_stock,
);

/// The status a successful checkout answers with under `strategy`.
fn placed(strategy: Strategy) -> StatusCode {
    match strategy {
        Strategy::Queue => StatusCode::ACCEPTED,
        _ => StatusCode::CREATED,
    }
}

async fn one_hot_product_never_oversells(strategy: Strategy) {
    let app = TestApp::spawn_with(strategy).await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let (stock, demand) = (10, 40);
    let hot = product(&app, &seller, stock).await;
    let initial = app.stock().await;
    let mut buyers = Vec::new();
    for _ in 0..demand {
        buyers.push(buyer(&app, &[(hot, 1)]).await);
    }
    let results = checkout_all(&app, &buyers).await;
    let refused_at_once = results.iter().filter(|r| r.is_none()).count() as i64;
    app.wait_until_settled(SETTLE).await;
    let counts = status_counts(&app).await;
    assert_eq!(
        counts
            .get(OrderStatus::Confirmed.as_str())
            .copied()
            .unwrap_or(0),
        stock,
        "{counts:?}"
    );
    assert_eq!(
        counts
            .get(OrderStatus::Rejected.as_str())
            .copied()
            .unwrap_or(0)
            + refused_at_once,
        demand - stock
    );
    assert_eq!(app.stock().await[&hot], 0);
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

async fn a_short_line_fails_the_whole_order(strategy: Strategy) {
    let app = TestApp::spawn_with(strategy).await;
    let seller = app.new_user().await;
    let partitions = app.worker_settings().kafka.inventory_partitions;
    // Products on at least two partitions, one of them scarce.
    let mut products = Vec::new();
    while products.len() < 3 {
        let id = product(&app, &seller, 10).await;
        let p = partition_for(ProductId::new(id).expect("id"), partitions);
        if products.iter().all(|&(_, q)| q != p) {
            products.push((id, p));
        }
    }
    let scarce = product(&app, &seller, 1).await;
    let initial = app.stock().await;
    let lines = [
        (products[0].0, 2),
        (products[1].0, 3),
        (products[2].0, 1),
        (scarce, 1),
    ];
    let (first, second) = (buyer(&app, &lines).await, buyer(&app, &lines).await);

    let loser = if strategy == Strategy::Queue {
        // Both accepted before any worker runs; then the worker decides them in some order.
        let first_order = app.checkout_accepted(&first.token).await;
        let second_order = app.checkout_accepted(&second.token).await;
        let worker = app.spawn_worker().await;
        let a = app
            .wait_for_terminal(&first.token, &first_order, SETTLE)
            .await;
        app.wait_for_terminal(&second.token, &second_order, SETTLE)
            .await;
        app.wait_until_settled(SETTLE).await;
        let (loser, loser_order) = if a["status"] == "CONFIRMED" {
            (&second, &second_order)
        } else {
            (&first, &first_order)
        };
        // Read again now that the releases are applied.
        let rejected = app.order(&loser.token, loser_order).await;
        assert_eq!(rejected["status"], "REJECTED");
        for line in rejected["items"].as_array().expect("items") {
            let expected = if line["product_id"] == scarce {
                "SHORT"
            } else {
                "RELEASED"
            };
            assert_eq!(line["status"], expected, "{line}");
        }
        worker.stop().await;
        loser
    } else {
        let worker = app.spawn_worker().await;
        let won = expect_json(app.checkout(&first.token, None).await, StatusCode::CREATED).await;
        assert_eq!(won["status"], "CONFIRMED");
        let lost = expect_error(
            app.checkout(&second.token, None).await,
            StatusCode::CONFLICT,
            "out_of_stock",
        )
        .await;
        assert_eq!(
            lost["error"]["short_lines"],
            json!([{ "product_id": scarce, "requested": 1, "available": 0 }])
        );
        app.wait_until_settled(SETTLE).await;
        worker.stop().await;
        &second
    };
    assert_eq!(
        status_counts(&app)
            .await
            .get(OrderStatus::Confirmed.as_str()),
        Some(&1)
    );
    let stock = app.stock().await;
    assert_eq!(
        [
            stock[&products[0].0],
            stock[&products[1].0],
            stock[&products[2].0],
            stock[&scarce]
        ],
        [8, 7, 9, 0],
        "only the confirmed order's units are gone"
    );
    assert_eq!(
        app.cart(&loser.token).await["items"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "a failed order's cart stays"
    );
    app.assert_invariants(&initial).await;
}

async fn an_idempotency_key_yields_one_order(strategy: Strategy) {
    let app = TestApp::spawn_with(strategy).await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 100).await;
    let shopper = buyer(&app, &[(id, 1)]).await;
    let ok = placed(strategy);

    let first = expect_json(app.checkout(&shopper.token, Some("key-1")).await, ok).await;
    let response = app.checkout(&shopper.token, Some("key-1")).await;
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replay = expect_json(response, ok).await;
    assert_eq!(first["order_id"], replay["order_id"]);

    // The checkout took the cart's lines; fill it again for the next key.
    expect_json(app.cart_add(&shopper.token, id, 1).await, StatusCode::OK).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/orders/checkout"),
            shopper.token.clone(),
        );
        tasks.spawn(async move {
            // A request that meets the key's first request still undecided is told so, and
            // asks again, as a client would.
            loop {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", "key-2")
                    .send()
                    .await
                    .expect("sent");
                let status = response.status();
                let body: serde_json::Value = response.json().await.expect("json");
                if status == StatusCode::CONFLICT && body["error"]["code"] == "checkout_in_progress"
                {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
                assert_eq!(status, ok, "{body}");
                return body["order_id"].as_str().expect("id").to_owned();
            }
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(id) = tasks.join_next().await {
        ids.insert(id.expect("task"));
    }
    assert_eq!(ids.len(), 1, "racing requests with one key share one order");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE user_id = $1")
        .bind(shopper.id)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(orders, 2, "one order per key");
    if strategy != Strategy::Queue {
        assert_eq!(app.stock().await[&id], 98, "each order took its unit once");
    }
    let bad = app.checkout(&shopper.token, Some(&"x".repeat(300))).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

async fn a_concurrent_mix_conserves_stock(strategy: Strategy) {
    let app = TestApp::spawn_with(strategy).await;
    let worker = app.spawn_worker().await;
    let (_, buyers) = shop_with_buyers(&app, (0..8).map(|i| 3 + i % 4), 40, |i, products| {
        (0..1 + i % 3)
            .map(|j| {
                (
                    products[(i * 7 + j * 3) % products.len()],
                    1 + ((i + j) % 2) as i64,
                )
            })
            .collect()
    })
    .await;
    let initial = app.stock().await;
    checkout_all(&app, &buyers).await;
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    let counts = status_counts(&app).await;
    assert!(
        counts
            .get(OrderStatus::Confirmed.as_str())
            .is_some_and(|&n| n > 0),
        "{counts:?}"
    );
    worker.stop().await;
}
