//! Cart churn: lines added, updated, read and removed, round robin over a set of shoppers.

use super::{Bench, ScenarioResult};
use crate::{error::BenchError, shop::answered_ok};
use serde_json::json;
use std::sync::Arc;

impl Bench<'_> {
    /// Add, update, read and remove cart lines, round robin over a set of shoppers.
    pub async fn cart(&self) -> Result<ScenarioResult, BenchError> {
        let users = Arc::new(self.buyers(self.sizes.cart_users, |_| Vec::new()).await?);
        let catalog = Arc::new(self.catalog.clone());
        Ok(self
            .timed("cart churn", move |shop, n| {
                let (users, catalog) = (users.clone(), catalog.clone());
                async move {
                    let (_, token) = &users[(n / 4) as usize % users.len()];
                    let product = catalog[(n / 4) as usize % catalog.len()];
                    let (path, line) = match n % 4 {
                        0 => ("/cart/add", json!({ "product_id": product, "quantity": 1 })),
                        1 => (
                            "/cart/update",
                            json!({ "product_id": product, "quantity": 3 }),
                        ),
                        2 => return answered_ok(shop.get_authed("/cart", token).await),
                        _ => ("/cart/remove", json!({ "product_id": product })),
                    };
                    let status = shop.post(path, Some(token), &line).await.map(|r| r.0);
                    answered_ok(status)
                }
            })
            .await)
    }
}
