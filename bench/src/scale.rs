//! `shop-bench scale`: a shop with millions of users, each with a live session.
//!
//! Users are bulk-loaded into PostgreSQL with `COPY` and their sessions written to Redis in
//! pipelines, exactly as the API stores them (the SHA-256 of a 256-bit token, the user id, the
//! session TTL). Then the same probe (cached catalog reads, cart changes and checkouts of users
//! drawn at random from the whole population) runs against a small shop and the large one, and
//! the memory each store needs per million users is reported.

use crate::{
    env::Environment,
    error::BenchError,
    load::{closed_loop, open_loop, Outcome, Summary},
    pipeline::{order_figures, settle, CheckoutFigures},
    shop::{answered_ok, CheckoutAnswer, Shop},
    system::System,
};
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{
    io::Write,
    sync::Arc,
    time::{Duration, Instant},
};

/// Session lifetime given to the loaded sessions: the API's default.
const SESSION_TTL_SECS: u64 = 604_800;
const COPY_CHUNK: u64 = 50_000;
const REDIS_PIPELINE: u64 = 10_000;

/// What one shop size measured.
#[derive(Debug, Serialize)]
pub struct SizeReport {
    pub users: u64,
    pub load_seconds: f64,
    /// `users` table with its indexes, on disk (what PostgreSQL must cache to stay fast).
    pub postgres_users_bytes: i64,
    /// Redis `used_memory` growth from the sessions.
    pub redis_session_bytes: i64,
    pub postgres_mib_per_million: f64,
    pub redis_mib_per_million: f64,
    pub catalog_get: Summary,
    pub cart: Summary,
    pub checkout: Summary,
    pub checkout_figures: CheckoutFigures,
}

/// The session token of loaded user `n`: 43 base64url characters, like the API's.
fn token(n: u64) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("scale-session-{n}")))
}

fn progress(what: &str, done: u64, total: u64, started: Instant) {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    eprint!(
        "\r  {what:<9} [{}{}] {done:>11}/{total} {:>3}%  {rate:>9.0}/s",
        "#".repeat(filled),
        " ".repeat(width as usize - filled),
        done * 100 / total.max(1)
    );
    if done == total {
        eprintln!();
    }
    let _ = std::io::stderr().flush();
}

async fn redis_used_memory(system: &System) -> Result<i64, BenchError> {
    let mut conn = system.redis.clone();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Loads `users` users and their sessions; returns the id of user 0 (ids are consecutive).
async fn load_users(system: &System, users: u64) -> Result<i64, BenchError> {
    let started = Instant::now();
    let mut conn = system.db.acquire().await?;
    let mut n = 0;
    while n < users {
        let end = (n + COPY_CHUNK).min(users);
        let mut rows = String::with_capacity(((end - n) * 48) as usize);
        for i in n..end {
            rows.push_str(&format!(
                "s{i}@scale.example.com\t+1{}\n",
                3_000_000_000 + i
            ));
        }
        let mut copy = conn
            .copy_in_raw("COPY users (email, phone_number) FROM STDIN")
            .await?;
        copy.send(rows.as_bytes()).await?;
        copy.finish().await?;
        n = end;
        progress("users", n, users, started);
    }
    let first: i64 = sqlx::query_scalar("SELECT min(id) FROM users")
        .fetch_one(&mut *conn)
        .await?;

    let started = Instant::now();
    let prefix = system.prefix();
    let mut redis = system.redis.clone();
    let mut n = 0;
    while n < users {
        let end = (n + REDIS_PIPELINE).min(users);
        let mut pipe = redis::pipe();
        for i in n..end {
            let mut key = Vec::with_capacity(prefix.len() + 34);
            key.extend_from_slice(prefix.as_bytes());
            key.extend_from_slice(b"s:");
            key.extend_from_slice(&Sha256::digest(token(i)));
            pipe.cmd("SET")
                .arg(key)
                .arg(first + i as i64)
                .arg("EX")
                .arg(SESSION_TTL_SECS)
                .ignore();
        }
        pipe.query_async::<()>(&mut redis).await?;
        n = end;
        progress("sessions", n, users, started);
    }
    Ok(first)
}

/// 200 products with ample stock, each read once so that the cache holds them.
async fn probe_products(shop: &Shop, seller: &str) -> Result<Vec<i64>, BenchError> {
    let products: Vec<i64> = stream::iter(0..200)
        .map(|i| async move {
            shop.create_product(seller, &format!("probe {i}"), "probe", 1_000_000)
                .await
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    for id in &products {
        shop.get(&format!("/products/{id}")).await?;
    }
    Ok(products)
}

/// Up to `count` distinct user numbers below `users`, drawn at random, in order.
fn pick_buyers(users: u64, count: usize) -> Vec<u64> {
    let mut rng = rand::thread_rng();
    let mut picked = std::collections::BTreeSet::new();
    while picked.len() < count && picked.len() < users as usize {
        picked.insert(rng.gen_range(0..users));
    }
    picked.into_iter().collect()
}

/// The same probe for every size: users drawn at random from the whole population.
async fn probe(
    system: &System,
    users: u64,
    first_id: i64,
    duration: Duration,
) -> Result<(Summary, Summary, Summary, CheckoutFigures), BenchError> {
    let shop = Shop::new(&system.api).with_codes(system.codes());
    let (_, seller) = shop.register(1).await?;
    let products = Arc::new(probe_products(&shop, &seller).await?);
    let catalog = {
        let (shop, products) = (shop.clone(), products.clone());
        open_loop(2000.0, duration, None, 256, move |n| {
            let (shop, products) = (shop.clone(), products.clone());
            async move {
                let id = products[n as usize % products.len()];
                answered_ok(shop.get(&format!("/products/{id}")).await)
            }
        })
        .await
    };
    let cart = {
        let (shop, products) = (shop.clone(), products.clone());
        closed_loop(16, duration, None, move |n| {
            let (shop, products) = (shop.clone(), products.clone());
            async move {
                let user = rand::thread_rng().gen_range(0..users);
                let line =
                    json!({ "product_id": products[n as usize % products.len()], "quantity": 1 });
                let added = shop.post("/cart/add", Some(&token(user)), &line).await;
                answered_ok(added.map(|r| r.0))
            }
        })
        .await
    };
    // Checkouts by users who have not bought yet, each with one line in the cart.
    let buyers = pick_buyers(users, (300 * duration.as_secs()) as usize);
    stream::iter(&buyers)
        .map(|&user| {
            let (shop, products) = (&shop, &products);
            async move {
                let line = json!({ "product_id": products[user as usize % products.len()], "quantity": 1 });
                shop.post("/cart/add", Some(&token(user)), &line).await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let checkout = {
        let (shop, buyers) = (shop.clone(), Arc::new(buyers.clone()));
        open_loop(300.0, duration, Some(buyers.len() as u64), 256, move |n| {
            let (shop, buyers) = (shop.clone(), buyers.clone());
            async move {
                match shop.checkout(&token(buyers[n as usize])).await {
                    CheckoutAnswer::Placed => Outcome::Ok,
                    _ => Outcome::Failed,
                }
            }
        })
        .await
    };
    let ids: Vec<i64> = buyers.iter().map(|&u| first_id + u as i64).collect();
    settle(&system.db, &ids).await?;
    let figures = order_figures(&system.db, &ids).await?;
    Ok((catalog, cart, checkout, figures))
}

/// Loads a shop of `users` users on a fresh system, measures it, and drops it.
pub async fn measure(
    env: &Environment,
    users: u64,
    duration: Duration,
) -> Result<SizeReport, BenchError> {
    eprintln!("==> {users} users: starting a fresh system");
    let system = System::start(env, "queue").await?;
    let result = async {
        let redis_before = redis_used_memory(&system).await?;
        let started = Instant::now();
        let first_id = load_users(&system, users).await?;
        let load_seconds = started.elapsed().as_secs_f64();
        let mut conn = system.db.acquire().await?;
        sqlx::query("VACUUM ANALYZE users")
            .execute(&mut *conn)
            .await?;
        let postgres_users_bytes: i64 =
            sqlx::query_scalar("SELECT pg_total_relation_size('users')")
                .fetch_one(&mut *conn)
                .await?;
        drop(conn);
        let redis_session_bytes = redis_used_memory(&system).await? - redis_before;
        eprintln!("==> {users} users: probing");
        let (catalog_get, cart, checkout, checkout_figures) =
            probe(&system, users, first_id, duration).await?;
        let millions = users as f64 / 1e6;
        Ok(SizeReport {
            users,
            load_seconds,
            postgres_users_bytes,
            redis_session_bytes,
            postgres_mib_per_million: postgres_users_bytes as f64 / 1048576.0 / millions,
            redis_mib_per_million: redis_session_bytes as f64 / 1048576.0 / millions,
            catalog_get,
            cart,
            checkout,
            checkout_figures,
        })
    }
    .await;
    system.stop().await?;
    result
}

pub fn table(sizes: &[SizeReport]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "| users | load s | PostgreSQL users MiB | per million | Redis sessions MiB | per million | catalog get p50/p99 ms | cart add p50/p99 ms | checkout p50/p99 ms | to terminal p50/p99 ms |\n|---:|---:|---:|---:|---:|---:|---|---|---|---|\n",
    );
    for s in sizes {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} / {:.0} |",
            s.users,
            s.load_seconds,
            s.postgres_users_bytes as f64 / 1048576.0,
            s.postgres_mib_per_million,
            s.redis_session_bytes as f64 / 1048576.0,
            s.redis_mib_per_million,
            s.catalog_get.p50_ms,
            s.catalog_get.p99_ms,
            s.cart.p50_ms,
            s.cart.p99_ms,
            s.checkout.p50_ms,
            s.checkout.p99_ms,
            s.checkout_figures.terminal_p50_ms,
            s.checkout_figures.terminal_p99_ms,
        );
    }
    out
}
