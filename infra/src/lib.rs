//! Plumbing shared by the shop's services: the API, the checkout worker and the notifier (which
//! the worker runs); the inventory partitioner, the benchmark and the test kit use parts of it.
//! Here are the settings every service shares and reading settings from the environment, the
//! schema and its migrations, the order store, the transactional outbox, the notification queue's
//! writers, dead letters, one-time codes, the Redis key layout and versioned cache, orders' places
//! in line, telemetry, metrics export and graceful shutdown.

pub mod cache;
pub mod db;
pub mod dead_letters;
pub mod env;
pub mod listen;
pub mod metrics;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod place;
pub mod schema;
pub mod settings;
pub mod shutdown;
pub mod sign_in;
pub mod telemetry;

pub use cache::{connect_redis, Cache, Keys};
