//! The catalog as shoppers browse it: single products (cached) at the maximum rate and then at
//! 80 % of it, and catalog pages from PostgreSQL.

use super::{Bench, ScenarioResult};
use crate::{
    error::BenchError,
    shop::{answered_ok, Shop},
};
use std::sync::Arc;

impl Bench<'_> {
    /// Cached single-product reads at the maximum rate, then open loop at 80 % of it; and
    /// catalog pages (from PostgreSQL) at the maximum rate.
    pub async fn catalog(&self) -> Result<Vec<ScenarioResult>, BenchError> {
        let ids = Arc::new(self.catalog.clone());
        let get = move |shop: Shop, n: u64| {
            let ids = ids.clone();
            async move {
                let id = ids[(n as usize * 7919) % ids.len()];
                answered_ok(shop.get(&format!("/products/{id}")).await)
            }
        };
        let max = self.timed("catalog get (cached)", get.clone()).await;
        let at_80 = self
            .open_at_share("catalog get (cached)", &max, 0.8, get)
            .await;
        let list = self
            .timed("catalog list", |shop, n| async move {
                let path = if n % 2 == 0 {
                    "/products?limit=20"
                } else {
                    "/products?limit=20&category=catalog"
                };
                answered_ok(shop.get(path).await)
            })
            .await;
        Ok(vec![max, at_80, list])
    }
}
