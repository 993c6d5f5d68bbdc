//! PostgreSQL pool and migrations.

use crate::config::Settings;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use std::{str::FromStr, time::Duration};

/// The API's pool. Search's typo tolerance (`<%`, pg_trgm) takes a name word at least half of
/// whose trigrams the query shares (the default, 0.6, misses a letter dropped from a short word).
pub async fn connect(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(&settings.database_url)?
        .options([("pg_trgm.word_similarity_threshold", "0.5")]);
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
}

/// Applies `schema/` (append-only, checksummed). Safe to run from several processes at once:
/// sqlx takes an advisory lock. A database already migrated further (by a newer release during
/// a rolling deploy) is accepted: most migrations only add. Migration 0014 does not (a user's
/// phone number may be empty after it, and registration asks for proof): a release from before
/// it must not serve against it (README, "Upgrading").
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("../schema");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}
