//! PostgreSQL pool and migrations.

use crate::config::Settings;
use sqlx::{postgres::PgPoolOptions, PgPool};
use std::time::Duration;

pub async fn connect(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&settings.database_url)
        .await
}

/// Applies `schema/` (append-only, checksummed). Safe to run from several processes at once:
/// sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("../schema").run(pool).await
}
