//! The worker's PostgreSQL pool.
//!
//! Batch statements take arrays whose length varies from 1 to `WORKER_MAX_BATCH`, over tables
//! that grow from empty: a generic plan made while `orders` was small kept scanning it whole
//! (10 ms a batch at 30,000 orders, seen in pg_stat_statements), so each execution is planned.
//!
//! The bounds make a stalled worker harmless to the others: PostgreSQL ends a session of ours
//! that idles inside a transaction (a paused or cut-off worker), so a partition's next owner waits
//! on its locks for at most `WORKER_IDLE_TX_TIMEOUT_MS`; statements and lock waits are bounded;
//! and the server probes a silent client's connection. Sessions are named
//! `checkout-worker/<pid>` in `pg_stat_activity`.

use crate::config::WorkerSettings;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use std::{str::FromStr, time::Duration};

/// Connects the pool (see the module's documentation).
pub async fn connect(settings: &WorkerSettings) -> Result<PgPool, sqlx::Error> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let options = PgConnectOptions::from_str(&settings.database_url)?
        .application_name(&format!("checkout-worker/{}", std::process::id()))
        .options([
            ("plan_cache_mode", "force_custom_plan".to_owned()),
            (
                "idle_in_transaction_session_timeout",
                ms(settings.idle_tx_timeout),
            ),
            ("statement_timeout", ms(settings.statement_timeout)),
            ("lock_timeout", ms(settings.statement_timeout)),
            ("tcp_keepalives_idle", "5".to_owned()),
            ("tcp_keepalives_interval", "2".to_owned()),
            ("tcp_keepalives_count", "3".to_owned()),
        ]);
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}
