//! The settings every service of the shop shares, each read from the environment and defaulted
//! here only. A process reads them once ([`Shared::from_env`]) and hands them to the parts it runs
//! (the worker to its notifier, for instance), so two parts of one process cannot disagree.

use crate::{
    env::{var, ConfigError},
    sign_in::{CodeKey, DEVELOPMENT_KEY},
};
use std::time::Duration;

/// `DATABASE_URL`'s local default.
pub const DEFAULT_DATABASE_URL: &str = "postgres://shop:shop@127.0.0.1:5432/shop";
/// `REDIS_URL`'s local default.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// `REDIS_KEY_PREFIX`'s default.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "shop:";

#[derive(Debug, Clone)]
pub struct Shared {
    /// `DATABASE_URL`: the PostgreSQL system of record.
    pub database_url: String,
    /// `REDIS_URL`: sessions, caches, hot stock, sign-in codes.
    pub redis_url: String,
    /// `REDIS_KEY_PREFIX`: prepended to every Redis key and channel, so several shops (or tests)
    /// can share one Redis. Every service of one shop must use the same.
    pub redis_key_prefix: String,
    /// `SIGN_IN_CODE_KEY`: keys the stored hashes of one-time codes; the API (which checks them)
    /// and the notifier (which makes them) must use the same.
    pub sign_in_code_key: CodeKey,
    /// `SIGN_IN_CODE_TTL_SECS`: how long a one-time code works.
    pub sign_in_code_ttl: Duration,
}

impl Shared {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: var("DATABASE_URL", DEFAULT_DATABASE_URL)?,
            redis_url: var("REDIS_URL", DEFAULT_REDIS_URL)?,
            redis_key_prefix: var("REDIS_KEY_PREFIX", DEFAULT_REDIS_KEY_PREFIX)?,
            sign_in_code_key: var("SIGN_IN_CODE_KEY", DEVELOPMENT_KEY)?,
            sign_in_code_ttl: Duration::from_secs(var("SIGN_IN_CODE_TTL_SECS", "600")?),
        })
    }
}
