//! Wake-ups from PostgreSQL: one connection ([`shop_infra::listen`]) hears what relays announce
//! on [`relay::COMMANDS_PRODUCED`], which it passes on to the receive loop (so that partitions
//! paused while idle are fetched again at once), and the outbox rows other processes announce on
//! `outbox::WRITTEN_CHANNEL`, which wake this process's relay. After every (re)connection both
//! are told, since announcements sent meanwhile were missed.

use crate::relay;
use shop_infra::{
    listen::{Heard, Listener},
    outbox,
};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a relay said it produced (`None`: the announcements' connection was (re)made, and some
/// may have been missed).
pub type Announced = Option<Vec<i32>>;

/// Listens until the receive loop is gone (`announce` closed), reconnecting after errors.
pub async fn listen(pool: PgPool, relay_wake: Arc<relay::Wake>, announce: mpsc::Sender<Announced>) {
    let mut listener = Listener::new(pool, &[relay::COMMANDS_PRODUCED, outbox::WRITTEN_CHANNEL]);
    loop {
        let announced = match listener.heard().await {
            Ok(Heard::Connected) => {
                relay_wake.rows_written();
                None
            }
            Ok(Heard::Notified(notification)) => {
                if notification.channel() == outbox::WRITTEN_CHANNEL {
                    relay_wake.rows_written();
                    continue;
                }
                Some(
                    notification
                        .payload()
                        .split(',')
                        .filter_map(|p| p.parse().ok())
                        .collect(),
                )
            }
            Err(error) => {
                tracing::warn!(%error, "listening for relayed commands failed; reconnecting");
                continue;
            }
        };
        if announce.send(announced).await.is_err() {
            return;
        }
    }
}
