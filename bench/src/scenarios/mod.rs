//! The suite's scenarios, each against a system set up by [`Bench::prepare`]: what a run is
//! ([`Sizes`]), what it reports ([`ScenarioResult`]), and the set-up and timing every scenario
//! shares. One file per kind of traffic:
//!
//! | module         | scenarios                                                        |
//! |----------------|------------------------------------------------------------------|
//! | `catalog`      | cached product reads (closed loop, then open at 80 %), catalog pages |
//! | `search`       | catalog search on a large catalog, hostile searches, category counts |
//! | `cart`         | cart churn                                                       |
//! | `registration` | new accounts                                                     |
//! | `checkout`     | checkouts: many products, one hot product, a multi-item mix      |

mod cart;
mod catalog;
mod checkout;
mod registration;
mod search;

use crate::{
    error::BenchError,
    load::{closed_loop, open_loop, Outcome, Summary},
    pipeline::CheckoutFigures,
    shop::{Shop, SETUP_CONCURRENCY},
    system::System,
};
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::Rng;
use serde::Serialize;
use std::{
    collections::HashMap,
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// How big each scenario is.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Length of each timed run.
    pub duration: Duration,
    pub connections: usize,
    pub catalog_products: usize,
    pub cart_users: usize,
    /// Most buyers prepared for the closed-loop low-contention checkout run.
    pub cold_buyers: usize,
    /// Checkouts per second of the open-loop low-contention run.
    pub open_rate: f64,
    pub hot_buyers: usize,
    pub hot_stock: i64,
    pub mix_buyers: usize,
    pub mix_products: usize,
    pub mix_stock: i64,
    /// Products added (by SQL) before the search scenario.
    pub search_products: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            duration: Duration::from_secs(8),
            connections: 64,
            catalog_products: 1000,
            cart_users: 500,
            cold_buyers: 24_000,
            open_rate: 1000.0,
            hot_buyers: 4000,
            hot_stock: 1000,
            mix_buyers: 3000,
            mix_products: 40,
            mix_stock: 100,
            search_products: 100_000,
        }
    }

    /// A few seconds per strategy: keeps the suite working in CI, measures nothing.
    pub fn smoke() -> Self {
        Self {
            duration: Duration::from_secs(1),
            connections: 8,
            catalog_products: 20,
            cart_users: 10,
            cold_buyers: 100,
            open_rate: 50.0,
            hot_buyers: 60,
            hot_stock: 20,
            mix_buyers: 60,
            mix_products: 5,
            mix_stock: 10,
            search_products: 200,
        }
    }
}

/// One scenario's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: &'static str,
    /// `closed N` (connections) or `open R/s`.
    pub mode: String,
    pub summary: Summary,
    pub checkout: Option<CheckoutFigures>,
}

/// A prepared buyer: user id and session token.
pub(crate) type Buyer = (i64, String);

/// A running system with a seller, a warm catalog and a supply of new user numbers.
pub struct Bench<'a> {
    pub(crate) shop: Shop,
    system: &'a System,
    sizes: &'a Sizes,
    next_user: AtomicU64,
    pub(crate) seller: String,
    /// Every product this run listed, with its initial stock.
    initial: HashMap<i64, i64>,
    catalog: Vec<i64>,
}

impl<'a> Bench<'a> {
    /// A seller and the catalog (products with ample stock).
    pub async fn prepare(system: &'a System, sizes: &'a Sizes) -> Result<Self, BenchError> {
        let shop = Shop::new(&system.api).with_codes(system.codes());
        let (_, seller) = shop.register(0).await?;
        let mut bench = Self {
            shop,
            system,
            sizes,
            next_user: AtomicU64::new(1),
            seller,
            initial: HashMap::new(),
            catalog: Vec::new(),
        };
        bench.catalog = bench
            .products("catalog", sizes.catalog_products, 1_000_000)
            .await?;
        // Warm the product cache, as a shop that has been serving for a while would be.
        for id in &bench.catalog {
            bench.shop.get(&format!("/products/{id}")).await?;
        }
        Ok(bench)
    }

    async fn products(
        &mut self,
        category: &str,
        count: usize,
        stock: i64,
    ) -> Result<Vec<i64>, BenchError> {
        let ids = self
            .shop
            .create_products(&self.seller, category, count, stock)
            .await?;
        self.initial.extend(ids.iter().map(|&id| (id, stock)));
        Ok(ids)
    }

    /// `count` new users, each with the cart `lines(i)` gives.
    pub(crate) async fn buyers(
        &self,
        count: usize,
        lines: impl Fn(usize) -> Vec<(i64, i64)>,
    ) -> Result<Vec<Buyer>, BenchError> {
        let first = self.next_user.fetch_add(count as u64, Ordering::Relaxed);
        let shop = &self.shop;
        let carts: Vec<_> = (0..count).map(lines).collect();
        stream::iter(carts.into_iter().enumerate())
            .map(|(i, cart)| async move {
                let (id, token) = shop.register(first + i as u64).await?;
                for (product, quantity) in cart {
                    shop.cart_add(&token, product, quantity).await?;
                }
                Ok::<_, BenchError>((id, token))
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    fn random_catalog_product(&self) -> i64 {
        self.catalog[rand::thread_rng().gen_range(0..self.catalog.len())]
    }

    fn closed(&self) -> String {
        format!("closed {}", self.sizes.connections)
    }

    /// `request(shop, n)` in a closed loop for the run's duration, as `scenario`.
    async fn timed<F, Fut>(&self, scenario: &'static str, request: F) -> ScenarioResult
    where
        F: Fn(Shop, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send,
    {
        let shop = self.shop.clone();
        let summary = closed_loop(
            self.sizes.connections,
            self.sizes.duration,
            None,
            move |n| request(shop.clone(), n),
        )
        .await;
        ScenarioResult {
            scenario,
            mode: self.closed(),
            summary,
            checkout: None,
        }
    }

    /// `request(shop, n)` in an open loop for the run's duration, at `share` of the rate `max`
    /// (the same request's closed loop) sustained, as `scenario`.
    async fn open_at_share<F, Fut>(
        &self,
        scenario: &'static str,
        max: &ScenarioResult,
        share: f64,
        request: F,
    ) -> ScenarioResult
    where
        F: Fn(Shop, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let rate = (max.summary.throughput * share).max(1.0);
        let shop = self.shop.clone();
        let summary = open_loop(
            rate,
            self.sizes.duration,
            None,
            self.sizes.connections,
            move |n| request(shop.clone(), n),
        )
        .await;
        ScenarioResult {
            scenario,
            mode: format!("open {rate:.0}/s ({:.0}%)", share * 100.0),
            summary,
            checkout: None,
        }
    }
}
