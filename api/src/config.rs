//! Every setting of the API, read from the environment in this one place, with local defaults.
//! The settings every service shares (`DATABASE_URL`, `REDIS_URL`, `REDIS_KEY_PREFIX`,
//! `SIGN_IN_CODE_KEY`, `SIGN_IN_CODE_TTL_SECS`) are read and defaulted by
//! [`shop_infra::settings::Shared`]; the API keeps them as fields of its own, so each can be set
//! apart (as tests do).

use crate::checkout::strategy::Strategy;
use shop_infra::{
    env::{var, ConfigError},
    settings::Shared,
    sign_in::CodeKey,
};
use std::{net::SocketAddr, time::Duration};

#[derive(Debug, Clone)]
pub struct Settings {
    /// `API_ADDR`: where the HTTP server listens. Port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`: the PostgreSQL system of record.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS`: pool size per API process.
    pub database_max_connections: u32,
    /// `REDIS_URL`: sessions, product cache.
    pub redis_url: String,
    /// `REDIS_KEY_PREFIX`: prepended to every Redis key and channel, so several shops (or tests) can share one Redis.
    pub redis_key_prefix: String,
    /// `SESSION_TTL_SECS`: sliding lifetime of a session token; every authenticated request renews it.
    pub session_ttl: Duration,
    /// `PRODUCT_CACHE_TTL_SECS`: upper bound on how long a cached product may live.
    pub product_cache_ttl: Duration,
    /// `PRODUCT_LOCAL_CACHE_MS`: how long each API process keeps a product answer in memory,
    /// in front of Redis (0 turns it off). Stock and other replicas' writes show within it.
    pub product_local_cache_ttl: Duration,
    /// `MAX_BODY_BYTES`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `CHECKOUT_STRATEGY`: how checkout takes stock: `queue` (the Kafka pipeline, 202),
    /// `optimistic`, `redis-lock` or `row-lock` (decided in the request, 201 or 409).
    pub checkout_strategy: Strategy,
    /// `REQUEST_TIMEOUT_SECS`: a request that takes longer is answered 408.
    pub request_timeout: Duration,
    /// `SHUTDOWN_DRAIN_MS`: after SIGTERM, how long `/readyz` answers 503 while requests are
    /// still served, so load balancers stop sending new ones before the listener closes.
    pub shutdown_drain: Duration,
    /// `SHUTDOWN_TIMEOUT_SECS`: then, how long requests in flight may take to finish.
    pub shutdown_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_SECS`: a connection must deliver its first request's headers within
    /// this of its opening, whatever protocol it claims, or it is closed; on HTTP/1 every later
    /// request's headers too, counted from when the connection fell idle.
    pub header_read_timeout: Duration,
    /// `MAX_CONNECTIONS_PER_IP`: open connections from one client address (an IPv6 client's
    /// /64); a connection over it is closed as soon as it is accepted (0: no cap). Behind a
    /// proxy every connection comes from the proxy: raise it or set 0 there.
    pub max_connections_per_ip: u32,
    /// `MAX_HEADER_BYTES`: requests whose headers add up to more get 431.
    pub max_header_bytes: usize,
    /// `RATE_LIMIT_PER_IP`: requests per second from one client address (0: no limit).
    pub rate_limit_per_ip: u32,
    /// `RATE_LIMIT_PER_SESSION`: requests per second with one session token (0: no limit).
    pub rate_limit_per_session: u32,
    /// `TRUST_FORWARDED_FOR`: take the client address from the last `X-Forwarded-For` entry
    /// (set it only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    /// `MAX_CART_LINES`: most distinct products in one cart.
    pub max_cart_lines: i64,
    /// Most checkouts the queue strategy writes in one statement.
    pub intake_max_batch: usize,
    /// Statements of batched checkouts in flight at once.
    pub intake_writers: usize,
    /// `SIGN_IN_CODE_KEY`: keys the stored hashes of sign-in codes; the notifier's must match.
    pub sign_in_code_key: CodeKey,
    /// `SIGN_IN_CODE_TTL_SECS`: how long a sign-in code works (the notifier stores it so).
    pub sign_in_code_ttl: Duration,
    /// `SIGN_IN_MAX_ATTEMPTS`: tries of one code; a wrong one that uses the last kills the code
    /// (the shopper asks for a new one). Also the wrong codes an address takes without waiting:
    /// the last of them, and each after it, make its next try wait (`SIGN_IN_DELAY_BASE_MS`).
    pub sign_in_max_attempts: u32,
    /// `SIGN_IN_GUESS_WINDOW_SECS`: how long an address's wrong codes are remembered after its
    /// last try (a right code forgets them).
    pub sign_in_guess_window: Duration,
    /// `SIGN_IN_DELAY_BASE_MS`: the wait after the `SIGN_IN_MAX_ATTEMPTS`th wrong code for an
    /// address; it doubles with each further one, up to `SIGN_IN_DELAY_MAX_MS`. A client address
    /// that typed wrong codes for the address waits a tenth of it more for each (at most ten).
    /// 0: no waits.
    pub sign_in_delay_base: Duration,
    /// `SIGN_IN_DELAY_MAX_MS`: the longest such wait.
    pub sign_in_delay_max: Duration,
    /// `SIGN_IN_VERIFIES_PER_IP`: codes one client address may try, for any accounts, per
    /// `SIGN_IN_VERIFY_WINDOW_SECS` (0: no limit).
    pub sign_in_verifies_per_ip: u32,
    /// `SIGN_IN_VERIFY_WINDOW_SECS`: the window of that limit.
    pub sign_in_verify_window: Duration,
    /// `SIGN_IN_SENDS_PER_ACCOUNT`: codes sent to one email address or phone number per
    /// `SIGN_IN_SEND_WINDOW_SECS` (0: no limit, as for the other send limit).
    pub sign_in_sends_per_account: u32,
    /// `SIGN_IN_SEND_WINDOW_SECS`: the window of the limit per address; short, since a stranger
    /// can spend it.
    pub sign_in_send_window: Duration,
    /// `SIGN_IN_SENDS_PER_IP`: code requests from one client address per
    /// `SIGN_IN_SEND_IP_WINDOW_SECS`.
    pub sign_in_sends_per_ip: u32,
    /// `SIGN_IN_SEND_IP_WINDOW_SECS`: the window of the limit per client address.
    pub sign_in_send_ip_window: Duration,
    /// `DEV_MAILBOX_URL`: where a development mail sink shows mail; the storefront links to it.
    /// Empty (the default) in production: no link.
    pub dev_mailbox_url: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let Shared {
            database_url,
            redis_url,
            redis_key_prefix,
            sign_in_code_key,
            sign_in_code_ttl,
        } = Shared::from_env()?;
        Ok(Self {
            listen_addr: var("API_ADDR", "127.0.0.1:8080")?,
            database_url,
            database_max_connections: var("DATABASE_MAX_CONNECTIONS", "20")?,
            redis_url,
            redis_key_prefix,
            session_ttl: Duration::from_secs(var("SESSION_TTL_SECS", "604800")?),
            product_cache_ttl: Duration::from_secs(var("PRODUCT_CACHE_TTL_SECS", "300")?),
            product_local_cache_ttl: Duration::from_millis(var("PRODUCT_LOCAL_CACHE_MS", "1000")?),
            max_body_bytes: var("MAX_BODY_BYTES", "65536")?,
            checkout_strategy: var("CHECKOUT_STRATEGY", "queue")?,
            request_timeout: Duration::from_secs(var("REQUEST_TIMEOUT_SECS", "10")?),
            shutdown_drain: Duration::from_millis(var("SHUTDOWN_DRAIN_MS", "2000")?),
            shutdown_timeout: Duration::from_secs(var("SHUTDOWN_TIMEOUT_SECS", "20")?),
            header_read_timeout: Duration::from_secs(var("HEADER_READ_TIMEOUT_SECS", "10")?),
            max_connections_per_ip: var("MAX_CONNECTIONS_PER_IP", "256")?,
            max_header_bytes: var("MAX_HEADER_BYTES", "16384")?,
            rate_limit_per_ip: var("RATE_LIMIT_PER_IP", "200")?,
            rate_limit_per_session: var("RATE_LIMIT_PER_SESSION", "50")?,
            trust_forwarded_for: var("TRUST_FORWARDED_FOR", "false")?,
            max_cart_lines: var("MAX_CART_LINES", "50")?,
            intake_max_batch: var("CHECKOUT_INTAKE_MAX_BATCH", "128")?,
            intake_writers: var("CHECKOUT_INTAKE_WRITERS", "2")?,
            sign_in_code_key,
            sign_in_code_ttl,
            sign_in_max_attempts: var("SIGN_IN_MAX_ATTEMPTS", "5")?,
            sign_in_guess_window: Duration::from_secs(var("SIGN_IN_GUESS_WINDOW_SECS", "3600")?),
            sign_in_delay_base: Duration::from_millis(var("SIGN_IN_DELAY_BASE_MS", "15000")?),
            sign_in_delay_max: Duration::from_millis(var("SIGN_IN_DELAY_MAX_MS", "120000")?),
            sign_in_verifies_per_ip: var("SIGN_IN_VERIFIES_PER_IP", "20")?,
            sign_in_verify_window: Duration::from_secs(var("SIGN_IN_VERIFY_WINDOW_SECS", "60")?),
            sign_in_sends_per_account: var("SIGN_IN_SENDS_PER_ACCOUNT", "5")?,
            sign_in_send_window: Duration::from_secs(var("SIGN_IN_SEND_WINDOW_SECS", "60")?),
            sign_in_sends_per_ip: var("SIGN_IN_SENDS_PER_IP", "5")?,
            sign_in_send_ip_window: Duration::from_secs(var("SIGN_IN_SEND_IP_WINDOW_SECS", "900")?),
            dev_mailbox_url: var("DEV_MAILBOX_URL", "")?,
        })
    }
}
