//! Catalog search on a large catalog: ordinary searches at the maximum rate and at half of it,
//! hostile searches, and the category counts the storefront asks for.

use super::{Bench, ScenarioResult};
use crate::{
    error::BenchError,
    shop::{answered_ok, Shop},
};
use base64::Engine as _;

impl Bench<'_> {
    /// Catalog search on a catalog of `search_products` more products (names from word lists,
    /// added by SQL): prefix words, two words, a typo, and a word within a category, in turn, at
    /// the maximum rate and at half of it; then hostile searches, and the category counts on that
    /// catalog.
    pub async fn search(&self) -> Result<Vec<ScenarioResult>, BenchError> {
        self.grow_catalog().await?;
        const QUERIES: [&str; 4] = [
            "q=kett&limit=20",
            "q=modern%20lamp&limit=20",
            "q=ketle&limit=20",
            "q=chair&category=home&limit=20",
        ];
        let search = |shop: Shop, n: u64| async move {
            let query = QUERIES[n as usize % QUERIES.len()];
            answered_ok(shop.get(&format!("/products?{query}")).await)
        };
        let max = self.timed("catalog search", search).await;
        // A closed loop of 64 measures the queue in front of two cores; at half the rate it
        // sustains, the latency is the query's own.
        let half = self
            .open_at_share("catalog search", &max, 0.5, search)
            .await;
        let hostile = self.hostile_search().await;
        // The storefront asks for the category counts with every page it shows.
        let categories = self
            .timed("category counts", |shop: Shop, _| async move {
                answered_ok(shop.get("/categories").await)
            })
            .await;
        Ok(vec![max, half, hostile, categories])
    }

    /// Adds `search_products` products named from word lists, by SQL, and analyses the table.
    async fn grow_catalog(&self) -> Result<(), BenchError> {
        sqlx::query(
            "INSERT INTO products (name, description, price_cents, available_quantity, category, seller_id)
             SELECT a[1 + g % 12] || ' ' || n[1 + (g / 12) % 16] || ' ' || g,
                    'A ' || lower(a[1 + (g / 7) % 12]) || ' ' || lower(n[1 + (g / 5) % 16]) || ' for every day',
                    100 + g % 10000, 1 + g % 50, c[1 + g % 8],
                    (SELECT min(id) FROM users)
             FROM generate_series(1, $1) g,
                  (SELECT ARRAY['Classic', 'Modern', 'Rustic', 'Compact', 'Deluxe', 'Vintage',
                                'Smart', 'Quiet', 'Heavy', 'Light', 'Folding', 'Electric'] AS a,
                          ARRAY['Kettle', 'Lamp', 'Chair', 'Teapot', 'Blender', 'Backpack',
                                'Notebook', 'Speaker', 'Jacket', 'Trowel', 'Puzzle', 'Mug',
                                'Scarf', 'Charger', 'Kite', 'Cookbook'] AS n,
                          ARRAY['home', 'garden', 'books', 'toys', 'sports', 'fashion',
                                'electronics', 'grocery'] AS c) words",
        )
        .bind(i64::try_from(self.sizes.search_products).unwrap_or(i64::MAX))
        .execute(&self.system.db)
        .await?;
        sqlx::query("ANALYZE products")
            .execute(&self.system.db)
            .await?;
        Ok(())
    }

    /// In a closed loop, what a hostile client sends to make each search read the whole
    /// catalog: no word at all, a word that matches nothing (the typo step), eight of them, a
    /// stopword, and a forged cursor deep into a typo's matches. Each must cost bounded work.
    async fn hostile_search(&self) -> ScenarioResult {
        let deep = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("s1:1990");
        let hostile_queries: [String; 5] = [
            "q=!!!&limit=100".to_owned(),
            "q=zqxwv&limit=100".to_owned(),
            "q=zq%20xw%20vb%20nm%20lk%20jh%20gf%20ds&limit=100".to_owned(),
            "q=the&limit=100".to_owned(),
            format!("q=ketle&limit=100&cursor={deep}"),
        ];
        let hostile = std::sync::Arc::new(hostile_queries);
        self.timed("hostile search", move |shop: Shop, n: u64| {
            let hostile = hostile.clone();
            async move {
                let query = &hostile[n as usize % hostile.len()];
                answered_ok(shop.get(&format!("/products?{query}")).await)
            }
        })
        .await
    }
}
