//! The checkout pipeline against real PostgreSQL, Redis and a Kafka-protocol broker: each test
//! with its own database, Redis prefix, topics and consumer group.

mod cancel;
mod dead_letters;
mod drops;
mod e2e;
mod faults;
mod mail;
mod place;
mod poison;
mod step;
mod stock_set;
mod strategies;
mod topics;

use reqwest::StatusCode;
use shop_domain::messages::InventoryCommand;
use shop_infra::outbox;
use shop_testkit::{expect_json, TestApp, TestUser};
use std::collections::HashMap;

/// The inventory commands in the outbox, in queue order, each as a lane receives it (with its
/// row's id as its queue position); the rows are deleted, so no relay sends them.
pub async fn take_queued(app: &TestApp) -> Vec<(i64, InventoryCommand)> {
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, stream, message_key, payload FROM outbox ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("outbox");
    let mut taken = Vec::new();
    let mut commands = Vec::new();
    for (id, stream, key, payload) in rows {
        let held = outbox::unbundle(&stream, &key, &payload).expect("messages");
        let before = commands.len();
        commands.extend(
            held.iter()
                .filter(|m| m.stream == outbox::INVENTORY)
                .map(|m| (id, serde_json::from_str(&m.payload).expect("a command"))),
        );
        if commands.len() > before {
            taken.push(id);
        }
    }
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(taken)
        .execute(&app.db)
        .await
        .expect("delete");
    commands
}

/// Lists a product with `stock` units and returns its id.
pub async fn product(app: &TestApp, seller: &TestUser, stock: i64) -> i64 {
    app.new_product(seller, "home", 1000, stock).await["id"]
        .as_i64()
        .expect("id")
}

/// Registers a buyer whose cart holds `lines` of `(product, quantity)`.
pub async fn buyer(app: &TestApp, lines: &[(i64, i64)]) -> TestUser {
    let user = app.new_user().await;
    for &(product, quantity) in lines {
        expect_json(
            app.cart_add(&user.token, product, quantity).await,
            StatusCode::OK,
        )
        .await;
    }
    user
}

/// A seller's products, one per stock in `stocks`, and `count` buyers, buyer `i`'s cart holding
/// `lines(i, &products)`. Returns the products and the buyers.
pub async fn shop_with_buyers(
    app: &TestApp,
    stocks: impl IntoIterator<Item = i64>,
    count: usize,
    lines: impl Fn(usize, &[i64]) -> Vec<(i64, i64)>,
) -> (Vec<i64>, Vec<TestUser>) {
    let seller = app.new_user().await;
    let mut products = Vec::new();
    for stock in stocks {
        products.push(product(app, &seller, stock).await);
    }
    let mut buyers = Vec::new();
    for i in 0..count {
        buyers.push(buyer(app, &lines(i, &products)).await);
    }
    (products, buyers)
}

/// Every buyer checks out at once. Returns, per buyer, the order id (accepted, or confirmed by a
/// synchronous strategy) or `None` when the checkout was refused (409, sold out). A buyer told
/// `contention` tries again, as a real client would.
pub async fn checkout_all(app: &TestApp, buyers: &[TestUser]) -> Vec<Option<String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, buyer) in buyers.iter().enumerate() {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/orders/checkout"),
            buyer.token.clone(),
        );
        tasks.spawn(async move {
            for _ in 0..50 {
                let (status, body) = post_as(&client, &url, &token).await;
                match status {
                    StatusCode::ACCEPTED | StatusCode::CREATED => {
                        return (i, Some(body["order_id"].as_str().expect("id").to_owned()))
                    }
                    StatusCode::CONFLICT if body["error"]["code"] == "contention" => continue,
                    StatusCode::CONFLICT => {
                        assert_eq!(body["error"]["code"], "out_of_stock", "{body}");
                        return (i, None);
                    }
                    other => panic!("unexpected checkout answer {other}: {body}"),
                }
            }
            panic!("checkout still contended after 50 attempts");
        });
    }
    let mut results = vec![None; buyers.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, order) = done.expect("checkout task");
        results[i] = order;
    }
    results
}

/// POSTs without a body as the holder of `token`; the answer's status and JSON.
pub async fn post_as(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (StatusCode, serde_json::Value) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

/// Orders by terminal status.
pub async fn status_counts(app: &TestApp) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status")
            .fetch_all(&app.db)
            .await
            .expect("counts");
    rows.into_iter().collect()
}
