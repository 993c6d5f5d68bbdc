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
/// sqlx takes an advisory lock. A database already migrated further (by a newer release during
/// a rolling deploy) is accepted: migrations only add.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("../schema");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}
