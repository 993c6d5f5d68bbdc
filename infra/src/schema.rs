//! The database schema (`schema/*.sql`, embedded at build time) and the one function that applies
//! it. Every service that starts against a database calls [`migrate`]; PostgreSQL's advisory lock
//! (taken by sqlx) makes concurrent starts apply each migration once.

use sqlx::PgPool;

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
