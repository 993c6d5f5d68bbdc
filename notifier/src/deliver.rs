//! Sends what the queue holds: takes due rows, renders and sends each, records the outcome.
//!
//! A failed send is retried after a backoff that doubles up to `NOTIFY_RETRY_MAX_MS`; after
//! `NOTIFY_MAX_ATTEMPTS` the row is parked (metric `shop_notifications_parked`, alert
//! `ShopNotificationsParked`). A mail server that is slow or down therefore delays mail and nothing
//! else: checkout never waits for the notifier. Idle, the sender waits for `NOTIFY
//! notification_written` (or `NOTIFY_IDLE_POLL_MS`, for retries coming due and lapsed claims).

use crate::{
    config::NotifierSettings,
    metrics,
    queue::{self, Channel, Due, Kind, Status},
    render::{self, Rendered},
    send::{Mailer, SendError, TextSender},
};
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use shop_infra::{
    sign_in::{self, Holder},
    Keys,
};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("PostgreSQL")]
    Database(#[from] sqlx::Error),
    #[error("Redis")]
    Redis(#[from] redis::RedisError),
    #[error("the send took longer than NOTIFY_SEND_TIMEOUT_MS")]
    TimedOut,
    #[error("row {0} names an unknown kind or channel, or lacks what its kind needs")]
    Unknown(i64),
    /// Nobody to send it to any more: a sign-in code by text message for an account whose phone
    /// number is no longer proven (detached, or proven by another account since it was asked).
    #[error("no address to send it to")]
    NoAddress,
}

impl AttemptError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Send(error) => error.reason(),
            Self::Database(_) => "database",
            Self::Redis(_) => "redis",
            Self::TimedOut => "timeout",
            Self::Unknown(_) => "invalid",
            Self::NoAddress => "no_address",
        }
    }
}

pub struct Delivery {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub settings: NotifierSettings,
    pub mailer: Mailer,
    pub texts: TextSender,
}

impl Delivery {
    /// Sends until `stop`; `wake` is notified when rows are written
    /// ([`queue::WRITTEN_CHANNEL`]).
    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        let this = Arc::new(self);
        while !stop.is_cancelled() {
            let due = match queue::claim(&this.pool, this.settings.batch, this.settings.claim).await
            {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot take notifications");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = wake.notified() => {}
                    () = tokio::time::sleep(this.settings.idle_poll) => {}
                }
                continue;
            }
            join_all(due.into_iter().map(|row| {
                let this = this.clone();
                async move { this.deliver(row).await }
            }))
            .await;
        }
    }

    async fn deliver(&self, row: Due) {
        let (kind, channel) = (Kind::parse(&row.kind), Channel::parse(&row.channel));
        let outcome = match (kind, channel) {
            (Some(kind), Some(channel)) => tokio::time::timeout(
                self.settings.send_timeout,
                self.attempt(&row, kind, channel),
            )
            .await
            .unwrap_or(Err(AttemptError::TimedOut)),
            _ => Err(AttemptError::Unknown(row.id)),
        };
        let (kind, channel) = (
            kind.unwrap_or(Kind::SignInCode),
            channel.unwrap_or(Channel::Email),
        );
        let recorded = match outcome {
            Ok(()) => {
                metrics::sent(kind, channel);
                queue::sent(&self.pool, row.id).await
            }
            Err(error @ AttemptError::NoAddress) => {
                metrics::send_failed(kind, channel, error.reason());
                tracing::info!(event_id = %row.event_id, "notification dropped: no address to send it to");
                queue::dropped(&self.pool, row.id, &error.to_string()).await
            }
            Err(error) => {
                metrics::send_failed(kind, channel, error.reason());
                let retry = queue::backoff(
                    row.attempts,
                    self.settings.retry_base,
                    self.settings.retry_max,
                );
                let message = error.to_string();
                let recorded = queue::failed(
                    &self.pool,
                    &row,
                    self.settings.max_attempts,
                    retry,
                    &message,
                )
                .await;
                match recorded {
                    Ok(Status::Parked) => {
                        tracing::error!(event_id = %row.event_id, attempts = row.attempts, error = %message, "notification parked");
                    }
                    Ok(_) => {
                        tracing::warn!(event_id = %row.event_id, attempts = row.attempts, ?retry, error = %message, "notification not sent; will retry");
                    }
                    Err(_) => {}
                }
                recorded.map(|_| ())
            }
        };
        if let Err(error) = recorded {
            // The claim lapses and the row is sent again: at least once, never lost.
            tracing::warn!(%error, event_id = %row.event_id, "cannot record a notification's outcome");
        }
    }

    async fn attempt(&self, row: &Due, kind: Kind, channel: Channel) -> Result<(), AttemptError> {
        // Where it goes, before a code is made for it.
        let to = match channel {
            Channel::Email => row.email.as_deref(),
            Channel::Sms => row.phone_number.as_deref(),
        }
        .ok_or(AttemptError::NoAddress)?;
        let message = self.render(row, kind).await?;
        let message_id = message_id(&row.event_id, kind, row.attempts);
        match channel {
            Channel::Email => {
                self.mailer
                    .send(to, &message.subject, &message.body, &message_id)
                    .await?;
            }
            Channel::Sms => {
                self.texts.send(to, &message.body, &message_id).await?;
            }
        }
        Ok(())
    }

    /// Makes a fresh code for `holder` (storing it replaces the one before) carrying `carries`.
    async fn issue(&self, holder: &Holder, carries: &[u8]) -> Result<String, AttemptError> {
        Ok(sign_in::issue(
            &self.redis,
            &self.keys,
            &self.settings.code_key,
            holder,
            carries,
            self.settings.code_ttl,
        )
        .await?)
    }

    async fn render(&self, row: &Due, kind: Kind) -> Result<Rendered, AttemptError> {
        let order = row.order_id.map(|id| id.to_string()).unwrap_or_default();
        let ttl = self.settings.code_ttl;
        let incomplete = || AttemptError::Unknown(row.id);
        // A code is made fresh for every attempt.
        Ok(match kind {
            Kind::SignInCode => {
                let user = row.user_id.ok_or_else(incomplete)?;
                let holder = if row.channel == Channel::Sms.as_str() {
                    Holder::AccountByText(user)
                } else {
                    Holder::Account(user)
                };
                let code = self.issue(&holder, &[]).await?;
                render::sign_in_code(&code, ttl)
            }
            Kind::RegistrationCode => match row.user_id {
                // The address has an account by now: the code signs in to it.
                Some(user) => {
                    let code = self.issue(&Holder::Account(user), &[]).await?;
                    render::registration_code_for_account(&code, ttl)
                }
                None => {
                    let email = row.email.as_deref().ok_or_else(incomplete)?;
                    let phone = row.phone_number.as_deref().ok_or_else(incomplete)?;
                    let holder = Holder::Registration(sign_in::email_digest(email));
                    let code = self.issue(&holder, phone.as_bytes()).await?;
                    render::registration_code(&code, phone, ttl)
                }
            },
            Kind::PhoneCode => {
                let holder = Holder::Phone {
                    user: row.user_id.ok_or_else(incomplete)?,
                    number: row.phone_number.clone().ok_or_else(incomplete)?,
                };
                let code = self.issue(&holder, &[]).await?;
                render::phone_code(&code, ttl)
            }
            Kind::OrderConfirmed | Kind::OrderRejected | Kind::OrderCancelled => {
                let lines = match row.order_id {
                    Some(id) => queue::order_lines(&self.pool, id).await?,
                    None => Vec::new(),
                };
                match kind {
                    Kind::OrderConfirmed => render::order_confirmed(&order, &lines),
                    Kind::OrderRejected => render::order_rejected(&order, &lines),
                    _ => render::order_cancelled(&order, &lines),
                }
            }
        })
    }
}

/// The `Message-ID` of an attempt. An order mail says the same at every attempt, so every
/// attempt carries the same id and a mail sent twice (a sender killed between the server's
/// acceptance and recording it) is one message to mail clients that dedupe on it. A code is new
/// at every attempt and replaces the one before, so each attempt has an id of its own: a client
/// that hid the second mail as a duplicate would show a code that no longer works.
fn message_id(event_id: &str, kind: Kind, attempt: i32) -> String {
    let event = event_id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ".");
    if kind.is_code() {
        format!("<{event}.{attempt}@notifications.shop>")
    } else {
        format!("<{event}@notifications.shop>")
    }
}

/// Publishes the queue's gauges every few seconds until `stop` (the loop is the worker's too:
/// [`shop_infra::metrics::report_every`]).
pub async fn report_backlog(pool: PgPool, stop: CancellationToken) {
    shop_infra::metrics::report_every(stop.cancelled_owned(), || async {
        match queue::backlog(&pool).await {
            Ok((pending, parked, oldest)) => metrics::backlog(pending, parked, oldest),
            Err(error) => tracing::debug!(%error, "cannot read the notification backlog"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_mails_keep_their_id_across_attempts_and_codes_do_not() {
        let event = "order-event/0192f0c4-0000/terminal";
        let order = message_id(event, Kind::OrderConfirmed, 1);
        assert_eq!(order, message_id(event, Kind::OrderConfirmed, 2));
        assert_eq!(
            order,
            "<order-event.0192f0c4-0000.terminal@notifications.shop>"
        );
        for code in [Kind::SignInCode, Kind::RegistrationCode, Kind::PhoneCode] {
            assert_ne!(
                message_id("sign-in/1", code, 1),
                message_id("sign-in/1", code, 2)
            );
        }
    }
}
