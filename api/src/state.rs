//! What every handler may use ([`AppState`]), and connecting to what it holds. It sits below the
//! feature modules: it imports settings and the handles it holds, never a feature.

use crate::{announcements, checkout::intake::Intake, config::Settings, local_cache::LocalCache};
use redis::aio::ConnectionManager;
use shop_domain::messages::OrderStatusChanged;
use shop_infra::{connect_redis, Cache, Keys};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to PostgreSQL")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot connect to Redis")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen")]
    Io(#[from] std::io::Error),
}

/// What every handler may use. Cheap to clone: pools and handles share their insides.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    /// Product answers kept in this process for up to `PRODUCT_LOCAL_CACHE_MS`.
    pub local_products: Arc<LocalCache>,
    /// The category counts, kept as long.
    pub local_categories: Arc<LocalCache>,
    /// Order status changes announced by the checkout worker, for SSE streams.
    pub order_updates: broadcast::Sender<OrderStatusChanged>,
    /// Cancelled when shutdown begins: `/readyz` turns unready and SSE streams end.
    pub shutting_down: CancellationToken,
    /// Writes the queue strategy's checkouts in batches.
    pub intake: Intake,
}

impl AppState {
    /// Connects to PostgreSQL (and migrates it) and Redis, starts forwarding order status
    /// announcements and the checkout intake.
    pub async fn connect(settings: Settings) -> Result<Self, StartupError> {
        let db = crate::db::connect(&settings).await?;
        shop_infra::schema::migrate(&db).await?;
        let redis = connect_redis(&settings.redis_url).await?;
        let keys = Keys::new(&settings.redis_key_prefix);
        let (order_updates, _) = broadcast::channel(4096);
        tokio::spawn(announcements::forward(
            settings.redis_url.clone(),
            keys.order_status_channel(),
            order_updates.clone(),
        ));
        Ok(Self {
            intake: Intake::start(
                db.clone(),
                settings.intake_max_batch,
                settings.intake_writers,
            ),
            keys,
            order_updates,
            shutting_down: CancellationToken::new(),
            cache: Cache::new(redis.clone(), settings.product_cache_ttl),
            local_products: Arc::new(LocalCache::new(settings.product_local_cache_ttl, 100_000)),
            local_categories: Arc::new(LocalCache::new(settings.product_local_cache_ttl, 1)),
            db,
            redis,
            settings: Arc::new(settings),
        })
    }
}
