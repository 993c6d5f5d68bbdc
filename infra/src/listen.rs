//! Hearing PostgreSQL announcements (`LISTEN`/`NOTIFY`): one connection that listens on a few
//! channels, made again after an error, and tells its user when it was (re)made, since whatever
//! was announced while there was none was missed. The worker's lanes and relay and the notifier
//! wait on it instead of polling often.

use sqlx::{
    postgres::{PgListener, PgNotification},
    PgPool,
};
use std::time::Duration;

/// How long [`Listener::heard`] waits before connecting again after an error.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What a [`Listener`] heard.
#[derive(Debug)]
pub enum Heard {
    /// The connection was made (again): announcements sent without one were missed.
    Connected,
    /// An announcement on one of the channels.
    Notified(PgNotification),
}

/// A connection listening on `channels`, taken from the pool on first use. A connection lost
/// while waiting is made again inside sqlx (announcements sent meanwhile are lost); any other
/// error is returned, and the next call connects afresh after [`RECONNECT_AFTER`].
pub struct Listener {
    pool: PgPool,
    channels: Vec<&'static str>,
    connection: Option<PgListener>,
    failed: bool,
}

impl Listener {
    pub fn new(pool: PgPool, channels: &[&'static str]) -> Self {
        Self {
            pool,
            channels: channels.to_vec(),
            connection: None,
            failed: false,
        }
    }

    /// Waits for the next thing heard. The caller reports an error (this only remembers to
    /// pause before connecting again). Dropping the future (e.g. on shutdown) loses nothing but
    /// a connection being made.
    pub async fn heard(&mut self) -> Result<Heard, sqlx::Error> {
        if let Some(connection) = self.connection.as_mut() {
            return match connection.recv().await {
                Ok(notification) => Ok(Heard::Notified(notification)),
                Err(error) => {
                    self.connection = None;
                    self.failed = true;
                    Err(error)
                }
            };
        }
        if self.failed {
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
        self.failed = true;
        let mut connection = PgListener::connect_with(&self.pool).await?;
        connection.listen_all(self.channels.iter().copied()).await?;
        self.connection = Some(connection);
        self.failed = false;
        Ok(Heard::Connected)
    }
}
