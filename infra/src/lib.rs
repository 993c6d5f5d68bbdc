//! Plumbing shared by the shop's services (API and checkout worker): the Redis key layout and
//! the versioned cache both write, the transactional outbox both fill, reading settings from the environment, telemetry, metrics
//! export and graceful shutdown.

pub mod cache;
pub mod dead_letters;
pub mod env;
pub mod fulfilment;
pub mod metrics;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod schema;
pub mod settings;
pub mod shutdown;
pub mod sign_in;
pub mod telemetry;

pub use cache::{connect_redis, Cache, Keys};
