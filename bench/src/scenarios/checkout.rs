//! Checkouts: one line each over the whole catalog (closed loop, then open loop), thousands of
//! buyers of one scarce product, and multi-item orders over a few scarce products. After each
//! run the pipeline settles, and the outcome and the stock are read from PostgreSQL.

use super::{Bench, Buyer, ScenarioResult};
use crate::{
    cpu::Reading,
    error::BenchError,
    load::{closed_loop, open_loop, Outcome, Summary},
    pipeline::{order_figures, settle, CheckoutFigures},
    shop::CheckoutAnswer,
};
use rand::Rng;
use shop_infra::orders::audit;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

#[derive(Default)]
struct Answers {
    placed: AtomicU64,
    out_of_stock: AtomicU64,
    contention: AtomicU64,
    failed: AtomicU64,
}

impl Answers {
    fn count(&self, answer: CheckoutAnswer) -> Outcome {
        let (counter, outcome) = match answer {
            CheckoutAnswer::Placed => (&self.placed, Outcome::Ok),
            CheckoutAnswer::OutOfStock => (&self.out_of_stock, Outcome::Ok),
            CheckoutAnswer::Contention => (&self.contention, Outcome::Failed),
            CheckoutAnswer::Failed => (&self.failed, Outcome::Failed),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }
}

impl Bench<'_> {
    /// Checkouts of one line each, spread over the whole catalog: at the maximum rate
    /// (closed loop), then at a fixed rate (open loop) for accepted → terminal latency.
    pub async fn checkout_cold(&self) -> Result<Vec<ScenarioResult>, BenchError> {
        let buyers = self
            .buyers(self.sizes.cold_buyers, |_| {
                vec![(self.random_catalog_product(), 1)]
            })
            .await?;
        let max = self
            .run_checkouts(&buyers, Load::Closed(self.sizes.connections))
            .await?;
        // The target rate, and half the measured maximum: what the pipeline's latency is when
        // the rate is beyond what the machine accepts, and when it is not.
        let half = (max.0.throughput / 2.0).round().max(1.0);
        let mut results = vec![result("checkout, many products", self.closed(), max)];
        for rate in [self.sizes.open_rate, half] {
            let count = (rate * self.sizes.duration.as_secs_f64()) as usize;
            let buyers = self
                .buyers(count, |_| vec![(self.random_catalog_product(), 1)])
                .await?;
            let fixed = self.run_checkouts(&buyers, Load::Open(rate)).await?;
            let mode = if rate == half {
                format!("open {rate:.0}/s (50%)")
            } else {
                format!("open {rate:.0}/s")
            };
            results.push(result("checkout, many products", mode, fixed));
        }
        Ok(results)
    }

    /// Thousands of buyers of one product with less stock than they want.
    pub async fn checkout_hot(&mut self) -> Result<ScenarioResult, BenchError> {
        let hot = self.products("hot", 1, self.sizes.hot_stock).await?[0];
        let buyers = self
            .buyers(self.sizes.hot_buyers, |_| vec![(hot, 1)])
            .await?;
        let figures = self
            .run_checkouts(&buyers, Load::Closed(self.sizes.connections))
            .await?;
        Ok(result("checkout, one hot product", self.closed(), figures))
    }

    /// Orders of 2 to 4 lines over a few scarce products: contention across partitions, and
    /// all-or-nothing outcomes.
    pub async fn checkout_mix(&mut self) -> Result<ScenarioResult, BenchError> {
        let products = self
            .products("mix", self.sizes.mix_products, self.sizes.mix_stock)
            .await?;
        let buyers = self
            .buyers(self.sizes.mix_buyers, |i| {
                let lines = 2 + i % 3;
                let mut rng = rand::thread_rng();
                let start = rng.gen_range(0..products.len());
                (0..lines)
                    .map(|j| {
                        (
                            products[(start + j * 7) % products.len()],
                            1 + (i + j) as i64 % 2,
                        )
                    })
                    .collect()
            })
            .await?;
        let figures = self
            .run_checkouts(&buyers, Load::Closed(self.sizes.connections))
            .await?;
        Ok(result("checkout, multi-item mix", self.closed(), figures))
    }

    /// Each buyer checks out once; then waits until the pipeline settles and reads the outcome.
    async fn run_checkouts(
        &self,
        buyers: &[Buyer],
        load: Load,
    ) -> Result<(Summary, CheckoutFigures), BenchError> {
        let answers = Arc::new(Answers::default());
        let tokens: Arc<Vec<String>> = Arc::new(buyers.iter().map(|b| b.1.clone()).collect());
        let request = {
            let (shop, answers, tokens) = (self.shop.clone(), answers.clone(), tokens.clone());
            move |n: u64| {
                let (shop, answers, tokens) = (shop.clone(), answers.clone(), tokens.clone());
                async move { answers.count(shop.checkout(&tokens[n as usize]).await) }
            }
        };
        let limit = Some(buyers.len() as u64);
        let statements = self.system.statements().await;
        let before = Reading::now();
        let summary = match load {
            // The buyers run out or the time does, whichever is first.
            Load::Closed(connections) => {
                closed_loop(connections, self.sizes.duration * 4, limit, request).await
            }
            Load::Open(rate) => {
                open_loop(
                    rate,
                    self.sizes.duration,
                    limit,
                    self.sizes.connections * 8,
                    request,
                )
                .await
            }
        };
        let users: Vec<i64> = buyers.iter().map(|b| b.0).collect();
        settle(&self.system.db, &users).await?;
        let cpu = before.until(&Reading::now());
        let mut figures = order_figures(&self.system.db, &users).await?;
        if let (Some(before), Some(after)) = (statements, self.system.statements().await) {
            figures.statements = before.until(&after);
        }
        let placed = answers.placed.load(Ordering::Relaxed);
        figures.postgres_ms_per_order = cpu.postgres_cpu_ms / placed.max(1) as f64;
        figures.cpu = cpu;
        figures.placed = placed;
        figures.out_of_stock = answers.out_of_stock.load(Ordering::Relaxed);
        figures.contention = answers.contention.load(Ordering::Relaxed);
        figures.failed = answers.failed.load(Ordering::Relaxed);
        let (oversold, violations) = self.stock_check().await?;
        figures.oversold_units = oversold;
        figures.conservation_violations = violations;
        Ok((summary, figures))
    }

    /// Over every product this run listed: units sold beyond the initial stock (or stock below
    /// zero), and products where initial ≠ available + confirmed units.
    async fn stock_check(&self) -> Result<(i64, i64), BenchError> {
        let (mut oversold, mut violations) = (0, 0);
        for product in audit::product_stock(&self.system.db).await? {
            let initial = self.initial.get(&product.product).copied().unwrap_or(0);
            let (available, sold) = (product.available, product.confirmed_units);
            oversold += (sold - initial).max(0) + (-available).max(0);
            violations += i64::from(initial != available + sold);
        }
        Ok((oversold, violations))
    }
}

/// How the checkouts are sent: by `connections` clients, or at a rate.
enum Load {
    Closed(usize),
    Open(f64),
}

/// A checkout scenario's row.
fn result(
    scenario: &'static str,
    mode: String,
    (summary, figures): (Summary, CheckoutFigures),
) -> ScenarioResult {
    ScenarioResult {
        scenario,
        mode,
        summary,
        checkout: Some(figures),
    }
}
