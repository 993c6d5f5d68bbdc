//! End to end: API, outbox relay, broker, worker lanes.

use crate::{buyer, checkout_all, product, status_counts};
use inventory_partitioner::partition_for;
use reqwest::StatusCode;
use shop_domain::ProductId;
use shop_testkit::{expect_json, TestApp};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn one_hot_product_never_oversells() {
    let app = TestApp::spawn().await;
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
        counts.get("CONFIRMED").copied().unwrap_or(0),
        stock,
        "{counts:?}"
    );
    assert_eq!(
        counts.get("REJECTED").copied().unwrap_or(0) + refused_at_once,
        demand - stock
    );
    assert_eq!(app.stock().await[&hot], 0);
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_short_line_rejects_the_whole_order_across_partitions() {
    let app = TestApp::spawn().await;
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
    // Both accepted before any worker runs; then the worker decides them in some order.
    let first_order = app.checkout_accepted(&first.token).await;
    let second_order = app.checkout_accepted(&second.token).await;
    let worker = app.spawn_worker().await;
    let a = app
        .wait_for_terminal(&first.token, &first_order, SETTLE)
        .await;
    let b = app
        .wait_for_terminal(&second.token, &second_order, SETTLE)
        .await;
    app.wait_until_settled(SETTLE).await;

    let (confirmed, loser, loser_order) = if a["status"] == "CONFIRMED" {
        (a, &second, &second_order)
    } else {
        (b, &first, &first_order)
    };
    // Read again now that the releases are applied.
    let rejected = app.order(&loser.token, loser_order).await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    assert_eq!(rejected["status"], "REJECTED");
    for line in rejected["items"].as_array().expect("items") {
        let expected = if line["product_id"] == scarce {
            "SHORT"
        } else {
            "RELEASED"
        };
        assert_eq!(line["status"], expected, "{line}");
    }
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
        "a rejected cart stays"
    );
    app.assert_invariants(&initial).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_concurrent_mix_conserves_stock() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let mut products = Vec::new();
    for i in 0..8 {
        products.push(product(&app, &seller, 3 + i % 4).await);
    }
    let initial = app.stock().await;
    let mut buyers = Vec::new();
    for i in 0..40usize {
        let lines: Vec<(i64, i64)> = (0..1 + i % 3)
            .map(|j| {
                (
                    products[(i * 7 + j * 3) % products.len()],
                    1 + ((i + j) % 2) as i64,
                )
            })
            .collect();
        buyers.push(buyer(&app, &lines).await);
    }
    checkout_all(&app, &buyers).await;
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    let counts = status_counts(&app).await;
    assert!(
        counts.get("CONFIRMED").is_some_and(|&n| n > 0),
        "{counts:?}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_yields_one_order_sequentially_and_concurrently() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 100).await;
    let shopper = buyer(&app, &[(id, 1)]).await;

    let first = expect_json(
        app.checkout(&shopper.token, Some("key-1")).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let response = app.checkout(&shopper.token, Some("key-1")).await;
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replay = expect_json(response, StatusCode::ACCEPTED).await;
    assert_eq!(first["order_id"], replay["order_id"]);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/orders/checkout"),
            shopper.token.clone(),
        );
        tasks.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "key-2")
                .send()
                .await
                .expect("sent");
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let body: serde_json::Value = response.json().await.expect("json");
            body["order_id"].as_str().expect("id").to_owned()
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
    let bad = app.checkout(&shopper.token, Some(&"x".repeat(300))).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn checkout_refuses_empty_carts_and_known_shortages() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let shopper = app.new_user().await;
    let response = app.checkout(&shopper.token, None).await;
    shop_testkit::expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "empty_cart").await;
    let id = product(&app, &seller, 2).await;
    let greedy = buyer(&app, &[(id, 3)]).await;
    let response = app.checkout(&greedy.token, None).await;
    shop_testkit::expect_error(response, StatusCode::CONFLICT, "out_of_stock").await;
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(none, 0, "a refused checkout hands nothing to Kafka");
    let response = app
        .client
        .post(app.url("/orders/checkout"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn orders_are_private_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 100).await;
    let shopper = buyer(&app, &[(id, 1)]).await;
    let stranger = app.new_user().await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(app.checkout_accepted(&shopper.token).await);
    }
    let path = format!("/orders/{}", placed[0]);
    shop_testkit::expect_error(
        app.get(&path, Some(&stranger.token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    shop_testkit::expect_error(
        app.get(&format!("{path}/events"), Some(&stranger.token))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    shop_testkit::expect_error(
        app.get("/orders/not-a-uuid", Some(&shopper.token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let page = expect_json(
        app.get("/orders?limit=2", Some(&shopper.token)).await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<_> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, [placed[2].clone(), placed[1].clone()]);
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let rest = expect_json(
        app.get(
            &format!("/orders?limit=2&cursor={cursor}"),
            Some(&shopper.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rest["items"][0]["id"], placed[0].as_str());
    assert!(rest["next_cursor"].is_null());
    let theirs = expect_json(
        app.get("/orders", Some(&stranger.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["items"], serde_json::json!([]));
}

#[tokio::test]
async fn an_sse_client_of_any_replica_receives_each_status_until_the_terminal_one() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 5).await;
    let shopper = buyer(&app, &[(id, 2)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    // Watched through another API replica than the one that took the checkout: the status
    // reaches it through Redis pub/sub.
    let replica = TestApp::start(app.settings.clone(), app.id.clone()).await;
    let mut stream = replica
        .get(&format!("/orders/{order}/events"), Some(&shopper.token))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .is_ok_and(|v| v.starts_with("text/event-stream")));
    let worker = app.spawn_worker().await;
    let mut text = String::new();
    let read = tokio::time::timeout(SETTLE, async {
        while let Some(chunk) = stream.chunk().await.expect("stream") {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    read.await
        .expect("the stream ends after the terminal status");
    let statuses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            if d.contains("CONFIRMED") {
                "CONFIRMED"
            } else if d.contains("PENDING") {
                "PENDING"
            } else {
                "OTHER"
            }
        })
        .collect();
    assert_eq!(statuses, ["PENDING", "CONFIRMED"], "{text}");
    worker.stop().await;
}

#[tokio::test]
async fn an_order_accepted_just_before_the_api_dies_still_completes() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 5).await;
    let shopper = buyer(&app, &[(id, 1)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    app.kill();
    let fresh = reqwest::Client::new();
    assert!(
        fresh.get(app.url("/healthz")).send().await.is_err(),
        "the API is gone"
    );
    // Nothing of the API is needed any more: the worker finds the order in the outbox.
    let worker = app.spawn_worker().await;
    let restarted = TestApp::start(app.settings.clone(), app.id.clone()).await;
    let done = restarted
        .wait_for_terminal(&shopper.token, &order, SETTLE)
        .await;
    assert_eq!(done["status"], "CONFIRMED");
    worker.stop().await;
}
