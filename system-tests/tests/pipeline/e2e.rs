//! End to end: API, outbox relay, broker, worker lanes.

use crate::{buyer, product};
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use reqwest::StatusCode;
use shop_infra::outbox;
use shop_testkit::{expect_json, TestApp};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

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
    let shopper = app.new_user().await;
    let stranger = app.new_user().await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        // Each checkout takes the cart's lines: fill it again for the next order.
        expect_json(app.cart_add(&shopper.token, id, 1).await, StatusCode::OK).await;
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
    // The status frames; `place` frames may come between them while the order is PENDING.
    let statuses: Vec<&str> = text
        .split("\n\n")
        .filter(|frame| frame.lines().any(|l| l == "event: status"))
        .flat_map(|frame| frame.lines().filter_map(|l| l.strip_prefix("data: ")))
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

#[tokio::test]
async fn commands_produced_without_an_announcement_are_still_applied() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let (quiet, busy) = (
        product(&app, &seller, 5).await,
        product(&app, &seller, 5).await,
    );
    let unannounced = buyer(&app, &[(quiet, 1)]).await;
    let order = app.checkout_accepted(&unannounced.token).await;
    // Its commands leave the outbox before any relay runs; they reach the topic below, straight
    // from a producer, so no relay announces them.
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("DELETE FROM outbox RETURNING stream, message_key, payload")
            .fetch_all(&app.db)
            .await
            .expect("outbox");
    let commands: Vec<outbox::Message> = rows
        .iter()
        .flat_map(|(s, k, p)| outbox::unbundle(s, k, p).expect("messages"))
        .filter(|m| m.stream == outbox::INVENTORY)
        .collect();
    assert_eq!(commands.len(), 1);
    // Partitions idle for 20 ms stop being fetched; the safety net looks every 400 ms.
    let worker = app
        .spawn_worker_with(|s| s.idle_pause = Duration::from_millis(20))
        .await;
    let other = buyer(&app, &[(busy, 1)]).await;
    let first = app.checkout_accepted(&other.token).await;
    let done = app.wait_for_terminal(&other.token, &first, SETTLE).await;
    assert_eq!(done["status"], "CONFIRMED", "the worker runs");
    let settings = app.worker_settings();
    let producer: FutureProducer = settings.kafka.client_config().create().expect("producer");
    for command in &commands {
        let product = shop_domain::ProductId::new(quiet).expect("id");
        producer
            .send(
                FutureRecord::to(&settings.kafka.inventory_topic)
                    .partition(inventory_partitioner::partition_for(
                        product,
                        settings.kafka.inventory_partitions,
                    ))
                    .key(&command.key)
                    .payload(&command.payload),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .expect("produced");
    }
    let done = app
        .wait_for_terminal(&unannounced.token, &order, SETTLE)
        .await;
    assert_eq!(done["status"], "CONFIRMED", "{done}");
    worker.stop().await;
}
