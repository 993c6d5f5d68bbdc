//! Every setting of the notifier, read from the environment in this one place, with local
//! defaults that point at the development mail sink (`scripts/mailsink.py`). The settings it
//! shares with the other services (the sign-in code key and lifetime) come from the process's
//! one [`Shared`], which the host process reads once and hands in.

use shop_infra::{
    env::{var, ConfigError},
    settings::Shared,
    sign_in::CodeKey,
};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// `SMTP_URL`: the mail server, as lettre reads it: `smtp://host:port` (plain, for a local
    /// sink), `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://host:465`.
    pub smtp_url: String,
    /// `MAIL_FROM`: the sender of every mail.
    pub mail_from: String,
    /// `SMS_GATEWAY_URL`: where text messages are posted (`{"to","body"}` as JSON, with
    /// `Authorization: Bearer SMS_GATEWAY_TOKEN`). Empty: text messages go to the mail server
    /// instead, to `<number without +>@SMS_MAIL_DOMAIN`, which is what development uses.
    pub sms_gateway_url: String,
    /// `SMS_GATEWAY_TOKEN`: the gateway's credential.
    pub sms_gateway_token: String,
    /// `SMS_MAIL_DOMAIN`: the domain text messages are mailed to without a gateway.
    pub sms_mail_domain: String,
    /// `SIGN_IN_CODE_KEY` ([`Shared::sign_in_code_key`]): keys the stored hashes of sign-in
    /// codes; the API's must be the same.
    pub code_key: CodeKey,
    /// `SIGN_IN_CODE_TTL_SECS` ([`Shared::sign_in_code_ttl`]): how long a code works.
    pub code_ttl: Duration,
    /// `NOTIFY_MAX_ATTEMPTS`: sends of one message before it is parked.
    pub max_attempts: i32,
    /// `NOTIFY_RETRY_BASE_MS`: the wait after the first failed send; it doubles with every
    /// further failure up to `NOTIFY_RETRY_MAX_MS`.
    pub retry_base: Duration,
    /// `NOTIFY_RETRY_MAX_MS`: the longest wait between two sends of one message.
    pub retry_max: Duration,
    /// `NOTIFY_CLAIM_MS`: how long a notifier holds the messages it took; one that has not sent
    /// them by then (killed, paused) leaves them to be sent again.
    pub claim: Duration,
    /// `NOTIFY_SEND_TIMEOUT_MS`: the longest one send may take.
    pub send_timeout: Duration,
    /// `NOTIFY_BATCH`: most messages taken per round.
    pub batch: i64,
    /// `NOTIFY_IDLE_POLL_MS`: how often an idle notifier looks for due messages that nobody
    /// announced (retries coming due, claims that lapsed).
    pub idle_poll: Duration,
    /// `NOTIFY_FETCH_WAIT_MS`: longest a fetch of order events waits at the broker. Mail is not
    /// latency-critical, and tansu holds a fetch for its whole wait, so a long wait keeps an idle
    /// notifier cheap and delays an order's mail by at most this.
    pub fetch_wait: Duration,
    /// `NOTIFY_EVENTS_IDLE_MS`: with no order event for this long (and at least two fetch waits),
    /// the notifier stops fetching them until a relay announces new ones
    /// (`NOTIFY order_events_produced`).
    pub events_idle: Duration,
    /// `NOTIFY_EVENTS_LOOK_MS`: while it does not fetch, how often it asks the broker whether the
    /// log grew anyway (events produced by something else than a relay of this shop).
    pub events_look: Duration,
}

impl NotifierSettings {
    /// The notifier's own settings from the environment, and the shared ones from `shared`.
    pub fn from_env(shared: &Shared) -> Result<Self, ConfigError> {
        Ok(Self {
            smtp_url: var("SMTP_URL", "smtp://127.0.0.1:1025")?,
            mail_from: var("MAIL_FROM", "Shop <shop@shop.localhost>")?,
            sms_gateway_url: var("SMS_GATEWAY_URL", "")?,
            sms_gateway_token: var("SMS_GATEWAY_TOKEN", "")?,
            sms_mail_domain: var("SMS_MAIL_DOMAIN", "sms.shop.localhost")?,
            code_key: shared.sign_in_code_key.clone(),
            code_ttl: shared.sign_in_code_ttl,
            max_attempts: var("NOTIFY_MAX_ATTEMPTS", "10")?,
            retry_base: Duration::from_millis(var("NOTIFY_RETRY_BASE_MS", "500")?),
            retry_max: Duration::from_millis(var("NOTIFY_RETRY_MAX_MS", "60000")?),
            claim: Duration::from_millis(var("NOTIFY_CLAIM_MS", "30000")?),
            send_timeout: Duration::from_millis(var("NOTIFY_SEND_TIMEOUT_MS", "10000")?),
            batch: var("NOTIFY_BATCH", "32")?,
            idle_poll: Duration::from_millis(var("NOTIFY_IDLE_POLL_MS", "1000")?),
            fetch_wait: Duration::from_millis(var("NOTIFY_FETCH_WAIT_MS", "2000")?),
            events_idle: Duration::from_millis(var("NOTIFY_EVENTS_IDLE_MS", "5000")?),
            events_look: Duration::from_millis(var("NOTIFY_EVENTS_LOOK_MS", "30000")?),
        })
    }
}
