//! Records nobody here wrote — arbitrary bytes, NUL, invalid UTF-8, nothing, too much, cut-off
//! JSON, wrong shapes, future versions, unknown products, forged commands and events — on every
//! partition of every topic the pipeline reads, while shoppers check out: every record is parked
//! with its bytes exactly, every checkout is decided, and stock is conserved.

use crate::{buyer, checkout_all, mail::mail_to, product};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent},
    OrderId, ProductId, Quantity, UserId,
};
use shop_testkit::{MailSink, TestApp};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

const SETTLE: Duration = Duration::from_secs(90);
/// Hostile records per partition of each topic.
const PER_PARTITION: usize = 14;

/// Where a record landed: topic, partition, offset.
type Landed = (String, i32, i64);
/// A record's key and payload.
type Bytes = (Option<Vec<u8>>, Vec<u8>);

#[derive(sqlx::FromRow)]
struct ParkedRow {
    topic: String,
    partition: i32,
    offset: i64,
    message_key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

fn command(kind: CommandKind, product: i64) -> InventoryCommand {
    InventoryCommand::new(
        kind,
        OrderId::generate(),
        ProductId::new(product).expect("id"),
        Quantity::new(1).expect("quantity"),
    )
}

/// The `n`-th hostile payload. `known` is a product that exists: commands for it name order
/// lines that do not.
fn hostile(rng: &mut StdRng, n: usize, known: i64, events: bool) -> Vec<u8> {
    let valid = if events {
        serde_json::to_vec(&OrderEvent::confirmed(
            OrderId::generate(),
            UserId::new(rng.gen_range(1..1_000_000)).expect("id"),
            1,
        ))
    } else {
        serde_json::to_vec(&command(CommandKind::Reserve, known))
    }
    .expect("json");
    match n % PER_PARTITION {
        0 => (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect(),
        1 => b"\x00not json{".to_vec(),
        2 => {
            let mut bytes = valid;
            let at = rng.gen_range(0..bytes.len());
            bytes.insert(at, 0xff);
            bytes
        }
        3 => Vec::new(),
        4 => (0..256 * 1024).map(|_| rng.gen()).collect(),
        5 => valid[..rng.gen_range(1..valid.len())].to_vec(),
        6 => br#"{"v":1,"kind":"\u0000reserve","type":"Order\u0000Confirmed"}"#.to_vec(),
        7 => {
            let mut newer: serde_json::Value = serde_json::from_slice(&valid).expect("json");
            newer["v"] = 99.into();
            newer.to_string().into_bytes()
        }
        8 => "[".repeat(100_000).into_bytes(),
        9 => br#"[1, "two", {"three": null}]"#.to_vec(),
        // A command for a product that does not exist; an event for an order that does not.
        10 => {
            if events {
                valid
            } else {
                serde_json::to_vec(&command(CommandKind::Reserve, 9_000_000_000)).expect("json")
            }
        }
        // Well-formed commands for a real product, naming order lines that do not exist.
        11 if !events => valid,
        12 if !events => serde_json::to_vec(&command(CommandKind::Release, known)).expect("json"),
        _ => "\u{0}\r\nSubject: hi\u{7f}\u{202e}".as_bytes().to_vec(),
    }
}

/// Produces [`PER_PARTITION`] hostile records on each of `partitions` of `topic`; where each one
/// landed, with its key and payload.
async fn produce_hostile(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    known: i64,
    seed: u64,
) -> BTreeMap<Landed, Bytes> {
    let mut rng = StdRng::seed_from_u64(seed);
    let events = topic.ends_with("order-events");
    let mut landed = BTreeMap::new();
    for n in 0..PER_PARTITION {
        for partition in 0..partitions {
            let payload = hostile(&mut rng, n, known, events);
            let key: Option<Vec<u8>> = match n % 3 {
                0 => None,
                1 => Some(b"\xff\x00key".to_vec()),
                _ => Some(known.to_string().into_bytes()),
            };
            let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                .partition(partition)
                .payload(&payload);
            if let Some(key) = &key {
                record = record.key(key.as_slice());
            }
            let delivered = producer
                .send(record, Timeout::After(Duration::from_secs(10)))
                .await
                .map_err(|(error, _)| error)
                .expect("produced");
            landed.insert(
                (topic.to_owned(), delivered.partition, delivered.offset),
                (key, payload),
            );
        }
    }
    landed
}

#[tokio::test]
async fn hostile_records_on_every_partition_are_parked_with_their_bytes_while_checkouts_go_on() {
    let app = TestApp::spawn().await;
    let sink = MailSink::start();
    let seller = app.new_user().await;
    let mut products = Vec::new();
    for _ in 0..4 {
        products.push(product(&app, &seller, 6).await);
    }
    let initial = app.stock().await;
    let mut buyers = Vec::new();
    for i in 0..32 {
        buyers.push(buyer(&app, &[(products[i % products.len()], 1)]).await);
    }
    let settings = app.worker_settings();
    settings.kafka.ensure_topics().await.expect("topics");
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let producer: FutureProducer = settings.kafka.client_config().create().expect("producer");

    // Hostile records before, between and after the checkouts, on every partition of both.
    let mut expected = produce_hostile(
        &producer,
        &settings.kafka.inventory_topic,
        settings.kafka.inventory_partitions,
        products[0],
        1,
    )
    .await;
    let (orders, events) = tokio::join!(
        checkout_all(&app, &buyers),
        produce_hostile(
            &producer,
            &settings.kafka.order_events_topic,
            settings.kafka.order_events_partitions,
            products[0],
            2,
        )
    );
    expected.extend(events);
    expected.extend(
        produce_hostile(
            &producer,
            &settings.kafka.inventory_topic,
            settings.kafka.inventory_partitions,
            products[1],
            3,
        )
        .await,
    );
    let accepted = orders.iter().flatten().count();
    assert!(accepted >= 24, "only {accepted} of 32 checkouts accepted");

    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    let deadline = Instant::now() + SETTLE;
    let parked = loop {
        let rows: Vec<ParkedRow> = sqlx::query_as(
            r#"SELECT topic, "partition", "offset", message_key, payload FROM dead_letters
               WHERE topic IS NOT NULL ORDER BY 1, 2, 3"#,
        )
        .fetch_all(&app.db)
        .await
        .expect("dead letters");
        if rows.len() >= expected.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let parked: BTreeMap<Landed, Bytes> = parked
        .into_iter()
        .map(|r| ((r.topic, r.partition, r.offset), (r.message_key, r.payload)))
        .collect();
    let missing: Vec<&Landed> = expected
        .keys()
        .filter(|k| !parked.contains_key(*k))
        .collect();
    assert!(missing.is_empty(), "not parked: {missing:?}");
    for (at, record) in &expected {
        assert_eq!(&parked[at], record, "the bytes parked at {at:?}");
    }
    assert_eq!(
        parked.len(),
        expected.len(),
        "only the hostile records are parked"
    );
    // The process's recorder, shared by the tests in it: each source was counted.
    let metrics = shop_infra::metrics::handle().render();
    for source in ["inventory-topic", "order-events-topic"] {
        assert!(
            metrics.contains(&format!(
                "checkout_worker_dead_letters_total{{source=\"{source}\"}}"
            )),
            "{source} counted"
        );
    }
    worker.stop().await;
}
