//! The API's PostgreSQL pool. Migrations are `shop_infra::schema::migrate`, shared by every
//! service.

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
