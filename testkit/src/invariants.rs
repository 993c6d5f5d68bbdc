//! [`TestApp`]'s checks of the database once traffic stops: waiting until the pipeline has
//! settled, and its invariants. The statements are `shop_infra::orders::audit`'s.

use crate::{app::TestApp, poll::eventually};
use shop_infra::orders::audit;
use std::{collections::HashMap, time::Duration};

impl TestApp {
    /// Current stock of each product.
    pub async fn stock(&self) -> HashMap<i64, i64> {
        audit::available(&self.db).await.expect("stock")
    }

    /// Checks the pipeline's invariants against `initial` stock: no order PENDING, no stock below
    /// zero, for every product initial + applied restocks + sellers' adjustments (what their
    /// sets changed, `audit::seller_adjustments`) = available + units of confirmed orders, no
    /// line of a rejected or cancelled order still holding units, and no shopper's count of a
    /// limited product over its limit or apart from the ledger
    /// ([`TestApp::broken_shopper_counts`]).
    pub async fn assert_invariants(&self, initial: &HashMap<i64, i64>) {
        let unsettled = audit::unsettled(&self.db).await.expect("pending");
        assert_eq!(unsettled.pending, 0, "every accepted order must be decided");
        let confirmed = audit::confirmed_units(&self.db)
            .await
            .expect("confirmed units");
        let restocked = audit::applied_restocks(&self.db)
            .await
            .expect("restocked units");
        let adjusted = audit::seller_adjustments(&self.db)
            .await
            .expect("sellers' adjustments");
        for (product, available) in self.stock().await {
            let start = initial.get(&product).copied().unwrap_or(available)
                + restocked.get(&product).copied().unwrap_or(0)
                + adjusted.get(&product).copied().unwrap_or(0);
            let sold = confirmed.get(&product).copied().unwrap_or(0);
            assert!(available >= 0, "product {product} below zero");
            assert_eq!(
                start,
                available + sold,
                "product {product}: initial + restocks + sets = available + confirmed units"
            );
        }
        let holding = audit::lines_still_holding(&self.db).await.expect("holding");
        assert_eq!(
            holding, 0,
            "every line of a rejected or cancelled order gave its units back"
        );
        let broken = self.broken_shopper_counts().await;
        assert!(
            broken.is_empty(),
            "no shopper holds more than a product's max_per_shopper, and every count is what \
             the ledger's counted reserves and releases add up to: {broken:?}"
        );
    }

    /// The shoppers' counts of limited products that break an invariant: above the product's
    /// limit, or not what the ledger's counted reserves and releases add up to.
    pub async fn broken_shopper_counts(&self) -> Vec<audit::ShopperCount> {
        audit::shopper_counts_broken(&self.db)
            .await
            .expect("shoppers' counts")
    }

    /// Waits until every order is decided, the outbox is empty and every release applied (of
    /// rejected and cancelled orders), failing after `within`.
    pub async fn wait_until_settled(&self, within: Duration) {
        eventually(within, "the pipeline settled", || async move {
            let unsettled = audit::unsettled(&self.db).await.expect("settled");
            if unsettled.is_settled() {
                Ok(())
            } else {
                Err(unsettled)
            }
        })
        .await;
    }
}
