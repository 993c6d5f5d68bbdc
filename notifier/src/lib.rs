//! The notifier: sends shoppers their codes (sign-in, registration, phone number) and a mail for
//! each order confirmed, rejected or cancelled, exactly once as far as they can tell.
//!
//! It runs as a role of the checkout worker (every worker process runs one; they share the work)
//! and has three tasks: [`ingest`] reads the order events into the `notifications` queue, which
//! the API also writes code requests to; [`deliver`] sends what is due, by SMTP ([`send::Mailer`])
//! or as text messages ([`send::TextSender`]); and a reporter publishes the queue's gauges.

pub mod config;
pub mod deliver;
pub mod ingest;
pub mod metrics;
pub mod queue;
pub mod render;
pub mod send;

use config::NotifierSettings;
use inventory_partitioner::KafkaSettings;
use rdkafka::consumer::StreamConsumer;
use redis::aio::ConnectionManager;
use send::{Mailer, TextSender};
use shop_infra::Keys;
use sqlx::{postgres::PgListener, PgPool};
use std::{sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kafka client")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot set up sending")]
    Send(#[from] send::SendError),
}

/// What the notifier needs from its host process.
pub struct Notifier {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub kafka: KafkaSettings,
    pub settings: NotifierSettings,
}

impl Notifier {
    /// Runs the three tasks until `stop`; fails at once only if sending cannot be set up (a
    /// malformed `SMTP_URL` or `MAIL_FROM`) or the Kafka client cannot be made.
    pub async fn run(self, stop: CancellationToken) -> Result<(), Error> {
        let Self {
            pool,
            redis,
            keys,
            kafka,
            settings,
        } = self;
        if settings.code_key.is_development() {
            tracing::warn!("SIGN_IN_CODE_KEY is not set: sign-in codes are keyed with the published development key");
        }
        let mailer = Mailer::new(
            &settings.smtp_url,
            &settings.mail_from,
            settings.send_timeout,
        )?;
        let texts = if settings.sms_gateway_url.is_empty() {
            TextSender::Mail {
                mailer: Box::new(mailer.clone()),
                domain: settings.sms_mail_domain.clone(),
            }
        } else {
            TextSender::Gateway {
                client: reqwest::Client::builder()
                    .timeout(settings.send_timeout)
                    .build()
                    .map_err(send::SendError::Gateway)?,
                url: settings.sms_gateway_url.clone(),
                token: settings.sms_gateway_token.clone(),
            }
        };
        let consumer: StreamConsumer = kafka
            .client_config()
            .set("group.id", "shop-notifier")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "fetch.wait.max.ms",
                settings.fetch_wait.as_millis().to_string(),
            )
            .create()?;
        tokio::spawn(deliver::report_backlog(pool.clone(), stop.clone()));
        let pace = ingest::Pace {
            // tansu answers a fetch only after its whole wait: idle must outlast a few.
            idle: settings.events_idle.max(settings.fetch_wait * 2),
            look: settings.events_look,
        };
        let delivery = deliver::Delivery {
            pool: pool.clone(),
            redis,
            keys,
            settings,
            mailer,
            texts,
        };
        let sending = tokio::spawn(delivery.run(stop.clone()));
        let reading = ingest::run(
            pool,
            consumer,
            kafka.order_events_topic.clone(),
            kafka.order_events_partitions,
            pace,
            stop,
        )
        .await;
        if sending.await.is_err() {
            tracing::warn!("the notifier's sender ended abnormally");
        }
        reading
    }
}

/// Wakes `wake` whenever `channel` is announced (PostgreSQL `NOTIFY`), and once after every
/// (re)connection, since announcements sent meanwhile were missed; reconnects after errors.
pub(crate) async fn listen(
    pool: PgPool,
    channel: &'static str,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => return,
            result = relay_announcements(&pool, channel, &wake) => {
                if let Err(error) = result {
                    tracing::warn!(%error, channel, "notifier lost its announcements; reconnecting");
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn relay_announcements(
    pool: &PgPool,
    channel: &str,
    wake: &Notify,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    wake.notify_one();
    loop {
        listener.recv().await?;
        wake.notify_one();
    }
}
