use anyhow::bail;
use checkout_worker::{config::WorkerSettings, Worker};
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    message::Message,
};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: checkout-worker [run | create-topics | tail-events]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_infra::telemetry::init();
    let settings = WorkerSettings::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("run") => {
            let worker = Worker::build(settings).await?;
            tracing::info!(metrics = %worker.metrics_addr()?, "checkout worker starting");
            let stop = CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                shop_infra::shutdown::signal().await;
                on_signal.cancel();
            });
            worker.run(stop).await?;
        }
        Some("create-topics") => settings.kafka.ensure_topics().await?,
        Some("tail-events") => tail_events(&settings).await?,
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(())
}

/// Prints every order event from the beginning, one JSON document per line, until Ctrl-C.
async fn tail_events(settings: &WorkerSettings) -> anyhow::Result<()> {
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
