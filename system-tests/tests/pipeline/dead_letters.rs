//! Messages the pipeline cannot read or route, against the real broker: parked, announced on the
//! dead-letter topic, their order lines decided, and their partitions never stopped.

use crate::{buyer, product};
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
    Message, Offset, TopicPartitionList,
};
use shop_infra::outbox::{self, Message as OutboxMessage};
use shop_testkit::{eventually, TestApp};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(60);

/// Rewrites the outbox message of `order`'s reserve of `product` with `change`, before any relay
/// runs.
async fn tamper(app: &TestApp, order: &str, product: i64, change: impl Fn(&mut OutboxMessage)) {
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, stream, message_key, payload FROM outbox")
            .fetch_all(&app.db)
            .await
            .expect("outbox");
    let mut changed = 0;
    for (id, stream, key, payload) in rows {
        let mut messages = outbox::unbundle(&stream, &key, &payload).expect("messages");
        let Some(message) = messages.iter_mut().find(|m| {
            let command: serde_json::Value = serde_json::from_str(&m.payload).expect("JSON");
            m.stream == outbox::INVENTORY
                && command["order_id"] == order
                && command["product_id"] == product
        }) else {
            continue;
        };
        change(message);
        let (key, payload) = match messages.as_slice() {
            [one] => (one.key.clone(), one.payload.clone()),
            _ => (key, serde_json::to_string(&messages).expect("bundle")),
        };
        sqlx::query("UPDATE outbox SET message_key = $2, payload = $3 WHERE id = $1")
            .bind(id)
            .bind(key)
            .bind(payload)
            .execute(&app.db)
            .await
            .expect("tamper");
        changed += 1;
    }
    assert_eq!(changed, 1);
}

/// The payloads on the app's dead-letter topic.
fn dead_letter_topic(app: &TestApp, at_least: usize) -> Vec<serde_json::Value> {
    let settings = app.worker_settings();
    let consumer: BaseConsumer = settings
        .kafka
        .client_config()
        .set("group.id", format!("{}-reader", settings.consumer_group))
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&settings.kafka.dead_letter_topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&list).expect("assign");
    let mut seen = Vec::new();
    let deadline = Instant::now() + SETTLE;
    while seen.len() < at_least && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            let payload = message.payload().unwrap_or_default();
            seen.push(serde_json::from_slice(payload).expect("JSON"));
        }
    }
    seen
}

#[tokio::test]
async fn unreadable_commands_are_parked_and_their_orders_rejected_while_the_partition_goes_on() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let (kettle, mug, spoon) = (
        product(&app, &seller, 10).await,
        product(&app, &seller, 10).await,
        product(&app, &seller, 10).await,
    );
    let initial = app.stock().await;
    // From a newer message version (a rolling deploy): parked by the lane.
    let newer = buyer(&app, &[(kettle, 1), (mug, 2)]).await;
    let newer_order = app.checkout_accepted(&newer.token).await;
    tamper(&app, &newer_order, mug, |m| {
        let mut command: serde_json::Value = serde_json::from_str(&m.payload).expect("JSON");
        command["v"] = 99.into();
        m.payload = command.to_string();
    })
    .await;
    // With a key that routes nowhere: parked by the relay.
    let unroutable = buyer(&app, &[(spoon, 1)]).await;
    let unroutable_order = app.checkout_accepted(&unroutable.token).await;
    tamper(&app, &unroutable_order, spoon, |m| {
        m.key = "not-a-product".to_owned();
    })
    .await;
    // Garbage straight onto the topic, where the kettle's commands go.
    let settings = app.worker_settings();
    settings.kafka.ensure_topics().await.expect("topics");
    let producer: FutureProducer = settings.kafka.client_config().create().expect("producer");
    let partition = inventory_partitioner::partition_for(
        shop_domain::ProductId::new(kettle).expect("id"),
        settings.kafka.inventory_partitions,
    );
    producer
        .send(
            FutureRecord::to(&settings.kafka.inventory_topic)
                .partition(partition)
                .key("garbage")
                .payload(&b"\xff not a command"[..]),
            Timeout::After(Duration::from_secs(10)),
        )
        .await
        .expect("produced");

    let worker = app.spawn_worker().await;
    let rejected = app
        .wait_for_terminal(&newer.token, &newer_order, SETTLE)
        .await;
    assert_eq!(rejected["status"], "REJECTED", "{rejected}");
    let reasons = rejected["items"].to_string();
    assert!(reasons.contains("newer"), "{reasons}");
    let rejected = app
        .wait_for_terminal(&unroutable.token, &unroutable_order, SETTLE)
        .await;
    assert_eq!(rejected["status"], "REJECTED", "{rejected}");
    // The kettle's partition goes on after the garbage.
    let later = buyer(&app, &[(kettle, 1)]).await;
    let later_order = app.checkout_accepted(&later.token).await;
    let confirmed = app
        .wait_for_terminal(&later.token, &later_order, SETTLE)
        .await;
    assert_eq!(confirmed["status"], "CONFIRMED", "{confirmed}");

    app.wait_until_settled(SETTLE).await;
    let parked: Vec<(String, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT source, order_id FROM dead_letters ORDER BY source, order_id")
            .fetch_all(&app.db)
            .await
            .expect("dead letters");
    let sources: Vec<&str> = parked.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        sources,
        ["inventory-topic", "inventory-topic", "outbox"],
        "{parked:?}"
    );
    assert_eq!(
        dead_letter_topic(&app, 3).len(),
        3,
        "announced on the dead-letter topic"
    );
    // The rejected order's reserved kettle went back; only the later order holds one.
    let mut expected = initial.clone();
    *expected.entry(kettle).or_default() -= 1;
    assert_eq!(app.stock().await, expected);
    worker.stop().await;
}

#[tokio::test]
async fn a_saved_position_outside_the_log_stops_its_partition_loudly() {
    let app = TestApp::spawn().await;
    let settings = app.worker_settings();
    settings.kafka.ensure_topics().await.expect("topics");
    // Partition 1 was processed up to offset 1000 of a log that no longer has it (the topic was
    // replaced, or retention deleted what was never applied).
    sqlx::query(
        "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset) VALUES ($1, $2, 1, 1000)",
    )
    .bind(&settings.consumer_group)
    .bind(&settings.kafka.inventory_topic)
    .execute(&app.db)
    .await
    .expect("position");
    let worker = app.spawn_worker_with(|s| *s = settings.clone()).await;
    let reason = stopped_saying(&app, worker.health_url(), "partition 1").await;
    assert!(reason.contains("past the end"), "{reason}");
    // The other partitions work; partition 1's position was not reset behind anyone's back.
    let seller = app.new_user().await;
    let elsewhere = product_on(&app, &seller, 1, false).await;
    let shopper = buyer(&app, &[(elsewhere, 1)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    let decided = app.wait_for_terminal(&shopper.token, &order, SETTLE).await;
    assert_eq!(decided["status"], "CONFIRMED");
    let saved: i64 = sqlx::query_scalar(
        "SELECT next_offset FROM consumer_positions WHERE consumer_group = $1 AND partition = 1",
    )
    .bind(&settings.consumer_group)
    .fetch_one(&app.db)
    .await
    .expect("position");
    assert_eq!(saved, 1000);
    worker.stop().await;
}

/// A product listed until one lands on (`same`) or off (`!same`) `partition`.
async fn product_on(
    app: &TestApp,
    seller: &shop_testkit::TestUser,
    partition: i32,
    same: bool,
) -> i64 {
    let partitions = app.worker_settings().kafka.inventory_partitions;
    loop {
        let id = product(app, seller, 5).await;
        let p = inventory_partitioner::partition_for(
            shop_domain::ProductId::new(id).expect("id"),
            partitions,
        );
        if (p == partition) == same {
            return id;
        }
    }
}

/// Waits until the worker's `/healthz` says it is unhealthy for a reason with `words` in it, and
/// returns the reason.
async fn stopped_saying(app: &TestApp, health: &str, words: &str) -> String {
    let what = format!("the worker saying {words:?}");
    eventually(SETTLE, &what, || async move {
        match unhealthy(app, health).await {
            Some(reason) if reason.contains(words) => Ok(reason),
            other => Err(other),
        }
    })
    .await
}

/// The worker's `/healthz` answer: `None` when healthy, else its reason.
async fn unhealthy(app: &TestApp, health: &str) -> Option<String> {
    let answer = app.client.get(health).send().await.expect("healthz");
    if answer.status() == reqwest::StatusCode::OK {
        return None;
    }
    let body: serde_json::Value = answer.json().await.expect("json");
    Some(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn a_record_its_lane_cannot_apply_stops_only_its_partition_until_an_operator_parks_it() {
    let app = TestApp::spawn().await;
    let mut settings = app.worker_settings();
    settings.batch_attempts = 2;
    // One record per batch: the lane's channel fills at once behind the stuck record.
    settings.max_batch = 1;
    settings.kafka.ensure_topics().await.expect("topics");
    let seller = app.new_user().await;
    let cursed = product(&app, &seller, 5).await;
    let partition = inventory_partitioner::partition_for(
        shop_domain::ProductId::new(cursed).expect("id"),
        settings.kafka.inventory_partitions,
    );
    let neighbour = product_on(&app, &seller, partition, true).await;
    let elsewhere = product_on(&app, &seller, partition, false).await;
    // Taking the cursed product's units fails, every time, as a bug would (recording a reserve
    // that took nothing, as parking one does, works).
    sqlx::query(&format!(
        "CREATE FUNCTION refuse_cursed() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.product_id = {cursed} AND NEW.applied THEN RAISE EXCEPTION 'refused for the test'; END IF;
         RETURN NEW; END $$"
    ))
    .execute(&app.db)
    .await
    .expect("function");
    sqlx::query(
        "CREATE TRIGGER refuse_cursed BEFORE INSERT ON inventory_ledger
         FOR EACH ROW EXECUTE FUNCTION refuse_cursed()",
    )
    .execute(&app.db)
    .await
    .expect("trigger");

    let worker = app.spawn_worker_with(|s| *s = settings.clone()).await;
    let health = worker.health_url();

    let stuck = buyer(&app, &[(cursed, 1)]).await;
    let stuck_order = app.checkout_accepted(&stuck.token).await;
    let mut behind = Vec::new();
    for _ in 0..5 {
        let shopper = buyer(&app, &[(neighbour, 1)]).await;
        let order = app.checkout_accepted(&shopper.token).await;
        behind.push((shopper, order));
    }
    // Other partitions go on while this one is stuck.
    let other = buyer(&app, &[(elsewhere, 1)]).await;
    let other_order = app.checkout_accepted(&other.token).await;
    let decided = app
        .wait_for_terminal(&other.token, &other_order, SETTLE)
        .await;
    assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    // The stop is loud, and says what to do.
    let reason = stopped_saying(&app, health, "park-record").await;
    assert!(
        reason.contains(&format!("partition {partition}")),
        "{reason}"
    );
    let order: serde_json::Value = app.order(&stuck.token, &stuck_order).await;
    assert_eq!(order["status"], "PENDING", "nothing skipped: {order}");

    // The operator parks the record the lane is stuck on; the partition goes on after it.
    let offset: i64 = sqlx::query_scalar(
        "SELECT next_offset FROM consumer_positions WHERE consumer_group = $1 AND partition = $2",
    )
    .bind(&settings.consumer_group)
    .bind(partition)
    .fetch_one(&app.db)
    .await
    .expect("position");
    let wrong = checkout_worker::park_record::park_record(&settings, partition, offset + 1).await;
    assert!(wrong.is_err(), "only the record the lane is stuck on");
    checkout_worker::park_record::park_record(&settings, partition, offset)
        .await
        .expect("parked");
    let rejected = app
        .wait_for_terminal(&stuck.token, &stuck_order, SETTLE)
        .await;
    assert_eq!(rejected["status"], "REJECTED", "{rejected}");
    for (shopper, order) in &behind {
        let decided = app.wait_for_terminal(&shopper.token, order, SETTLE).await;
        assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    }
    let shop = &app;
    eventually(SETTLE, "the worker healthy again", || async move {
        unhealthy(shop, health).await.map_or(Ok(()), Err)
    })
    .await;
    let parked: (String, Vec<u8>) = sqlx::query_as(
        r#"SELECT reason, payload FROM dead_letters WHERE "partition" = $1 AND "offset" = $2"#,
    )
    .bind(partition)
    .bind(offset)
    .fetch_one(&app.db)
    .await
    .expect("parked");
    assert!(parked.0.contains("operator"), "{}", parked.0);
    let command: serde_json::Value =
        serde_json::from_slice(&parked.1).expect("the command's bytes");
    assert_eq!(command["product_id"], cursed);
    worker.stop().await;
}
