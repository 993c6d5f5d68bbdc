//! [`Environment`]: where the services and stores are, as the command line and the environment
//! say.

use std::path::PathBuf;

/// Where the services are, as the caller configured them.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The folder with `shop-api` and `checkout-worker`.
    pub bin_dir: PathBuf,
    /// An existing database; fresh ones are created beside it.
    pub database_url: String,
    pub redis_url: String,
    pub kafka_brokers: String,
    /// `MAILSINK_HTTP`: the development mail sink's HTTP address, where the fault suite's
    /// shoppers read their sign-in codes.
    pub mailbox: String,
    /// `--notifier`: throughput runs with the workers' notifier on, mailing every decided order to
    /// the development mail sink (off by default).
    pub notifier: bool,
    /// Where the services' logs go.
    pub log_dir: PathBuf,
}
