//! After a batch commits: the hot inventory view in Redis and order status announcements.
//! Both are best effort; PostgreSQL stays the truth, and readers fall back to it.

use crate::batch::BatchResult;
use redis::aio::ConnectionManager;
use shop_domain::messages::OrderStatusChanged;
use shop_infra::{cache::announce_statuses, orders::lane, Cache, Keys};
use sqlx::PgPool;

#[derive(Clone)]
pub struct Announcer {
    pub cache: Cache,
    pub keys: Keys,
    pub redis: ConnectionManager,
}

impl Announcer {
    pub async fn after_commit(&self, result: &BatchResult) {
        if let Err(error) = self.cache.put_stock(&self.keys, &result.stock).await {
            shop_infra::metrics::client_error("redis", "put_stock");
            tracing::warn!(%error, "hot inventory update failed");
        }
        if result.finalized.is_empty() {
            return;
        }
        let updates: Vec<OrderStatusChanged> = result
            .finalized
            .iter()
            .map(|order| OrderStatusChanged {
                order_id: order.order_id,
                status: order.status,
            })
            .collect();
        if let Err(error) = announce_statuses(&self.redis, &self.keys, &updates).await {
            shop_infra::metrics::client_error("redis", "announce");
            tracing::warn!(%error, "order status announcement failed; SSE clients will poll");
        }
    }

    /// Writes every product's stock to the hot inventory view, page by page (after a restart or
    /// a flushed Redis). Newer entries written meanwhile are kept: writes are version-guarded.
    pub async fn rebuild_stock(&self, pool: &PgPool) -> Result<usize, RebuildError> {
        let mut after = 0i64;
        let mut written = 0;
        loop {
            let page = lane::stock_page(&mut *pool.acquire().await?, after).await?;
            let Some(last) = page.last() else {
                return Ok(written);
            };
            after = last.0;
            self.cache.put_stock(&self.keys, &page).await?;
            written += page.len();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("cannot read products")]
    Database(#[from] sqlx::Error),
    #[error("cannot write the hot inventory")]
    Redis(#[from] redis::RedisError),
}
