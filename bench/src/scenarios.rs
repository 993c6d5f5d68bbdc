//! The scenarios, each against a system set up by [`Bench::prepare`].

use crate::{
    cpu::{Reading, Usage},
    load::{closed_loop, open_loop, Outcome, Summary},
    profile::StatementCost,
    shop::{answered_ok, CheckoutAnswer, Shop, SETUP_CONCURRENCY},
    system::System,
    BenchError,
};
use base64::Engine as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
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

/// What a checkout scenario did to orders and stock, read from PostgreSQL after it settled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckoutFigures {
    pub placed: u64,
    pub out_of_stock: u64,
    pub contention: u64,
    pub failed: u64,
    pub confirmed: i64,
    pub rejected: i64,
    /// Confirmed orders over the time from the first order to the last confirmation.
    pub confirmed_per_sec: f64,
    /// Accepted → CONFIRMED/REJECTED, from the orders' own timestamps.
    pub terminal_p50_ms: f64,
    pub terminal_p99_ms: f64,
    /// Units sold beyond a product's stock (must be 0), over all products after this run.
    pub oversold_units: i64,
    /// Products for which initial ≠ available + confirmed units (must be 0).
    pub conservation_violations: i64,
    /// Each part's CPU from the first checkout until the pipeline settled.
    pub cpu: Usage,
    /// PostgreSQL CPU milliseconds per accepted (or, synchronously, confirmed) order over
    /// that interval.
    pub postgres_ms_per_order: f64,
    /// The statements that took most of PostgreSQL's execution time over that interval (empty
    /// when the server does not keep `pg_stat_statements`).
    pub statements: Vec<StatementCost>,
}

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

/// A prepared buyer: user id and session token.
type Buyer = (i64, String);

pub struct Bench<'a> {
    shop: Shop,
    system: &'a System,
    sizes: &'a Sizes,
    next_user: AtomicU64,
    seller: String,
    /// Every product this run listed, with its initial stock.
    initial: HashMap<i64, i64>,
    catalog: Vec<i64>,
}

const SETTLE: Duration = Duration::from_secs(180);

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
    async fn buyers(
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
        let rate = (max.summary.throughput * 0.8).max(1.0);
        let shop = self.shop.clone();
        let at_80 = open_loop(
            rate,
            self.sizes.duration,
            None,
            self.sizes.connections,
            move |n| get(shop.clone(), n),
        )
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
        Ok(vec![
            max,
            ScenarioResult {
                scenario: "catalog get (cached)",
                mode: format!("open {rate:.0}/s (80%)"),
                summary: at_80,
                checkout: None,
            },
            list,
        ])
    }

    /// Catalog search on a catalog of `search_products` more products (names from word lists,
    /// added by SQL): prefix words, two words, a typo, and a word within a category, in turn;
    /// then the category counts on that catalog.
    pub async fn search(&self) -> Result<Vec<ScenarioResult>, BenchError> {
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
        let rate = (max.summary.throughput * 0.5).max(1.0);
        let shop = self.shop.clone();
        let half = open_loop(
            rate,
            self.sizes.duration,
            None,
            self.sizes.connections,
            move |n| search(shop.clone(), n),
        )
        .await;
        // What a hostile client sends to make each search read the whole catalog: no word at
        // all, a word that matches nothing (the typo step), eight of them, a stopword, and a
        // forged cursor deep into a typo's matches. Each must cost bounded work.
        let deep = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("s1:1990");
        let hostile_queries: [String; 5] = [
            "q=!!!&limit=100".to_owned(),
            "q=zqxwv&limit=100".to_owned(),
            "q=zq%20xw%20vb%20nm%20lk%20jh%20gf%20ds&limit=100".to_owned(),
            "q=the&limit=100".to_owned(),
            format!("q=ketle&limit=100&cursor={deep}"),
        ];
        let hostile = std::sync::Arc::new(hostile_queries);
        let hostile = self
            .timed("hostile search", move |shop: Shop, n: u64| {
                let hostile = hostile.clone();
                async move {
                    let query = &hostile[n as usize % hostile.len()];
                    answered_ok(shop.get(&format!("/products?{query}")).await)
                }
            })
            .await;
        // The storefront asks for the category counts with every page it shows.
        let categories = self
            .timed("category counts", |shop: Shop, _| async move {
                answered_ok(shop.get("/categories").await)
            })
            .await;
        Ok(vec![
            max,
            ScenarioResult {
                scenario: "catalog search",
                mode: format!("open {rate:.0}/s (50%)"),
                summary: half,
                checkout: None,
            },
            hostile,
            categories,
        ])
    }

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

    pub async fn registration(&self) -> Result<ScenarioResult, BenchError> {
        // Far above any user number the other scenarios hand out.
        let first = 500_000_000 + self.next_user.load(Ordering::Relaxed);
        Ok(self
            .timed("registration", move |shop, n| async move {
                match shop.register(first + n).await {
                    Ok(_) => Outcome::Ok,
                    Err(_) => Outcome::Failed,
                }
            })
            .await)
    }

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
}

/// Waits until these users' orders are decided, every release applied and the outbox empty.
pub async fn settle(db: &PgPool, users: &[i64]) -> Result<(), BenchError> {
    let deadline = Instant::now() + SETTLE;
    loop {
        // The users' orders are joined (hashed), not matched with `= ANY` (a scan of the
        // array per order: tens of milliseconds a poll, which counted as the shop's CPU).
        let mut unsettled: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM orders o JOIN UNNEST($1::BIGINT[]) u(id) ON o.user_id = u.id
                     WHERE o.status = 'PENDING')
                  + (SELECT count(*) FROM outbox)",
        )
        .bind(users)
        .fetch_one(db)
        .await?;
        if unsettled == 0 {
            unsettled = sqlx::query_scalar(
                "SELECT count(*) FROM order_items oi JOIN orders o ON o.id = oi.order_id
                 JOIN UNNEST($1::BIGINT[]) u(id) ON o.user_id = u.id
                 WHERE o.status = 'REJECTED' AND oi.status = 'RESERVED'",
            )
            .bind(users)
            .fetch_one(db)
            .await?;
        }
        if unsettled == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Unsettled(unsettled));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Outcomes and accepted → terminal latencies of these users' orders.
pub async fn order_figures(db: &PgPool, users: &[i64]) -> Result<CheckoutFigures, BenchError> {
    let row: (i64, i64, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'CONFIRMED'),
                    count(*) FILTER (WHERE status = 'REJECTED'),
                    extract(epoch FROM max(completed_at) FILTER (WHERE status = 'CONFIRMED')
                                      - min(created_at))::FLOAT8,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at))
             FROM orders WHERE user_id = ANY($1)",
        )
        .bind(users)
        .fetch_one(db)
        .await?;
    let (confirmed, rejected, span, p50, p99) = row;
    Ok(CheckoutFigures {
        confirmed,
        rejected,
        confirmed_per_sec: span
            .filter(|s| *s > 0.0)
            .map_or(0.0, |s| confirmed as f64 / s),
        terminal_p50_ms: p50.unwrap_or(0.0) * 1000.0,
        terminal_p99_ms: p99.unwrap_or(0.0) * 1000.0,
        ..CheckoutFigures::default()
    })
}

impl Bench<'_> {
    /// Over every product this run listed: units sold beyond the initial stock (or stock below
    /// zero), and products where initial ≠ available + confirmed units.
    async fn stock_check(&self) -> Result<(i64, i64), BenchError> {
        let rows: Vec<(i64, i32, i64)> = sqlx::query_as(
            "SELECT p.id, p.available_quantity,
                    COALESCE((SELECT SUM(oi.quantity) FROM order_items oi JOIN orders o ON o.id = oi.order_id
                              WHERE oi.product_id = p.id AND o.status = 'CONFIRMED'), 0)::BIGINT
             FROM products p",
        )
        .fetch_all(&self.system.db)
        .await?;
        let (mut oversold, mut violations) = (0, 0);
        for (id, available, sold) in rows {
            let initial = self.initial.get(&id).copied().unwrap_or(0);
            let available = i64::from(available);
            oversold += (sold - initial).max(0) + (-available).max(0);
            violations += i64::from(initial != available + sold);
        }
        Ok((oversold, violations))
    }
}

enum Load {
    Closed(usize),
    Open(f64),
}

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
