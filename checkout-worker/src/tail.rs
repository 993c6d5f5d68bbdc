//! `checkout-worker tail-events`: prints every order event from the beginning, one JSON
//! document per line, until Ctrl-C.

use crate::config::WorkerSettings;
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    error::KafkaError,
    message::Message,
};

/// Prints the order events (see the module's documentation).
pub async fn tail_events(settings: &WorkerSettings) -> Result<(), KafkaError> {
    let consumer: StreamConsumer = settings
        .kafka
        .client_config()
        .set("group.id", format!("tail-events-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&settings.kafka.order_events_topic])?;
    loop {
        tokio::select! {
            () = shop_infra::shutdown::signal() => return Ok(()),
            message = consumer.recv() => {
                let message = message?;
                println!("{}", String::from_utf8_lossy(message.payload().unwrap_or_default()));
            }
        }
    }
}
