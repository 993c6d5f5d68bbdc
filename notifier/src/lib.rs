//! The notifier: sends shoppers their codes (sign-in, registration, phone number) and a mail for
//! each order confirmed, rejected or cancelled, exactly once as far as they can tell.
//!
//! It runs as a role of the checkout worker (every worker process runs one; they share the work;
//! the worker hands it its settings, [`config`], with those every service shares read once for
//! the process) and has three tasks: [`ingest`] reads the order events (`OrderCreated`, which
//! sends nothing, `OrderConfirmed`, `OrderRejected`, `OrderCancelled`) into the `notifications`
//! queue ([`queue`]), which the API also writes code requests to, keeping its place in the log
//! in [`positions`]; [`deliver`] sends what is due, by SMTP ([`send::Mailer`]) or as text
//! messages ([`send::TextSender`]); and a reporter ([`deliver::report_backlog`]) publishes the
//! queue's gauges.

pub mod config;
pub mod deliver;
pub mod ingest;
pub mod metrics;
pub mod positions;
pub mod queue;
pub mod render;
pub mod send;

use config::NotifierSettings;
use inventory_partitioner::KafkaSettings;
use rdkafka::consumer::StreamConsumer;
use redis::aio::ConnectionManager;
use send::{Mailer, TextSender};
use shop_infra::listen::Listener;
use shop_infra::{outbox, Keys};
use sqlx::PgPool;
use std::sync::Arc;
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
        let texts = text_sender(&settings, &mailer)?;
        let consumer = events_consumer(&kafka, &settings)?;
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
        let written = Arc::new(Notify::new());
        tokio::spawn(listen(
            pool.clone(),
            queue::WRITTEN_CHANNEL,
            written.clone(),
            stop.clone(),
        ));
        let sending = tokio::spawn(delivery.run(written, stop.clone()));
        let announced = Arc::new(Notify::new());
        tokio::spawn(listen(
            pool.clone(),
            outbox::ORDER_EVENTS_PRODUCED,
            announced.clone(),
            stop.clone(),
        ));
        let reading = ingest::run(
            pool,
            consumer,
            kafka.order_events_topic.clone(),
            kafka.order_events_partitions,
            pace,
            announced,
            stop,
        )
        .await;
        if sending.await.is_err() {
            tracing::warn!("the notifier's sender ended abnormally");
        }
        Ok(reading?)
    }
}

/// Where text messages go: the gateway at `SMS_GATEWAY_URL`, or without one the mail server.
fn text_sender(settings: &NotifierSettings, mailer: &Mailer) -> Result<TextSender, Error> {
    Ok(if settings.sms_gateway_url.is_empty() {
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
    })
}

/// The order events' consumer: partitions are assigned from the notifier's own positions
/// ([`positions`]), never committed to the broker.
fn events_consumer(
    kafka: &KafkaSettings,
    settings: &NotifierSettings,
) -> Result<StreamConsumer, Error> {
    Ok(kafka
        .client_config()
        .set("group.id", "shop-notifier")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "fetch.wait.max.ms",
            settings.fetch_wait.as_millis().to_string(),
        )
        .create()?)
}

/// Wakes `wake` whenever `channel` is announced (PostgreSQL `NOTIFY`), and once after every
/// (re)connection, since announcements sent meanwhile were missed; reconnects after errors
/// ([`shop_infra::listen`]).
pub(crate) async fn listen(
    pool: PgPool,
    channel: &'static str,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut listener = Listener::new(pool, &[channel]);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            heard = listener.heard() => match heard {
                Ok(_) => wake.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, channel, "notifier lost its announcements; reconnecting");
                }
            },
        }
    }
}
