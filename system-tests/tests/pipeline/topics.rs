//! Deleting a test's topics must not take anyone else's: tansu 0.6.0 deletes every topic of the
//! broker when it deletes one, so `delete_topics_with_prefix` refuses while other topics live
//! there (the shop's, beside a test run).

use inventory_partitioner::{Error, KafkaSettings};
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig,
};
use std::time::Duration;

fn settings(prefix: &str) -> KafkaSettings {
    let mut kafka = KafkaSettings::from_env().expect("kafka settings");
    kafka.inventory_topic = format!("{prefix}.inventory");
    kafka.order_events_topic = format!("{prefix}.events");
    kafka.dead_letter_topic = format!("{prefix}.dead");
    kafka.inventory_partitions = 1;
    kafka.order_events_partitions = 1;
    kafka
}

fn topics(kafka: &KafkaSettings) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect()
}

#[tokio::test]
async fn deleting_a_tests_topics_leaves_the_others() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (shop, test) = (
        settings(&format!("test-{id}-shop")),
        settings(&format!("test-{id}-gone")),
    );
    shop.ensure_topics().await.expect("the shop's topics");
    test.ensure_topics().await.expect("the test's topics");

    let refused = test
        .delete_topics_with_prefix(&format!("test-{id}-gone."))
        .await;
    assert!(
        matches!(refused, Err(Error::OthersWouldGo { others, .. }) if others >= 3),
        "{refused:?}"
    );
    let left = topics(&shop);
    for topic in [
        &shop.inventory_topic,
        &shop.order_events_topic,
        &shop.dead_letter_topic,
    ] {
        assert!(left.contains(topic), "{topic} is gone: {left:?}");
    }
    assert!(
        left.contains(&test.inventory_topic),
        "refused means nothing deleted"
    );
}
