//! The fault suite's traffic: shoppers in a closed loop, each filling its cart with one to three
//! products (a third of the lines on a few hot products with little stock, the rest on cold ones)
//! and checking out with an `Idempotency-Key`, retried with the same key through every failure;
//! some cancel at once. A shopper whose session is gone (401) signs in again by a code mailed to
//! the development mail sink. Also the restock that puts stock back on the hot products before
//! each phase.
//!
//! A flash-sale drop runs through the first fault: one product limited to [`DROP_LIMIT`] per
//! shopper, with too little stock for every shopper's limit, whose sale starts about when the
//! first phase's fault is injected (its warmup after the fixture is ready). Some carts hold it
//! from the start: checkouts before the sale are answered 409 `not_on_sale_yet`, and once it is on
//! every shopper keeps trying to buy more than the limit.

use super::{seen::Seen, timing::Timing};
use crate::{
    error::BenchError,
    poll,
    shop::{contact, Shop},
    system::System,
};
use rand::{seq::SliceRandom, Rng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// One shopper: its user number and its session token (replaced when it signs in again).
pub struct Shopper {
    n: u64,
    token: Mutex<String>,
}

/// The shop the traffic runs against: a seller's hot and cold products, the shoppers, and one
/// more shopper kept aside for the recovery probe.
pub struct Fixture {
    pub shop: Shop,
    shoppers: Vec<Arc<Shopper>>,
    pub probe: Arc<Shopper>,
    hot: Vec<i64>,
    pub cold: Vec<i64>,
    /// The drop, and when its sale starts.
    pub drop: i64,
    pub drop_starts_at: chrono::DateTime<chrono::Utc>,
    /// Each product's stock when listed.
    pub initial: HashMap<i64, i64>,
}

const HOT_STOCK: i64 = 40;
const COLD_STOCK: i64 = 1_000_000;
/// The drop's limit per shopper; its stock is half of what every shopper's limit adds up to.
pub const DROP_LIMIT: i64 = 2;
/// The share of carts that hold the drop.
const DROP_SHARE: f64 = 0.3;
/// How long after the fixture is ready the drop's sale starts, beyond the first phase's warmup
/// (the restock before it takes about this).
const DROP_STARTS_AFTER: Duration = Duration::from_secs(1);

impl Fixture {
    pub async fn prepare(
        system: &System,
        mailbox: &str,
        timing: Timing,
    ) -> Result<Self, BenchError> {
        let shop = Shop::new(&system.api)
            .with_mailbox(mailbox)
            .with_codes(system.codes());
        let (_, seller) = shop.register(0).await?;
        let hot = shop.create_products(&seller, "hot", 4, HOT_STOCK).await?;
        let cold = shop
            .create_products(&seller, "cold", 40, COLD_STOCK)
            .await?;
        let mut shoppers = Vec::new();
        for n in 1..=timing.shoppers + 1 {
            let (_, token) = shop.register(n).await?;
            shoppers.push(Arc::new(Shopper {
                n,
                token: Mutex::new(token),
            }));
        }
        let drop_stock = i64::try_from(timing.shoppers).unwrap_or(i64::MAX) * DROP_LIMIT / 2;
        let starts_at = chrono::Utc::now() + timing.warmup + DROP_STARTS_AFTER;
        let drop = shop
            .create_drop(&seller, "drop", drop_stock, DROP_LIMIT, starts_at)
            .await?;
        let initial = (hot.iter().map(|&id| (id, HOT_STOCK)))
            .chain(cold.iter().map(|&id| (id, COLD_STOCK)))
            .chain([(drop, drop_stock)])
            .collect();
        let probe = shoppers
            .pop()
            .ok_or_else(|| BenchError::Setup("no probe".into()))?;
        Ok(Self {
            shop,
            shoppers,
            probe,
            hot,
            cold,
            drop,
            drop_starts_at: starts_at,
            initial,
        })
    }
}

/// A request's answer, or `None` when it got none (connection refused, reset, timeout).
pub async fn send(
    shop: &Shop,
    shopper: &Shopper,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> Option<(StatusCode, Value)> {
    let token = shopper.token.lock().ok()?.clone();
    let mut request = shop
        .client()
        .request(method, shop.url(path))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.ok()?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::UNAUTHORIZED {
        // Redis lost the session: the API says so; sign in again.
        sign_in(shop, shopper).await;
    }
    Some((status, body))
}

/// Signs in by a mailed code, as a shopper does; on failure the old token is kept and the next
/// 401 tries again.
async fn sign_in(shop: &Shop, shopper: &Shopper) {
    let email = contact(shopper.n)["email"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(token) = shop.sign_in_by_code(&email, SIGN_IN_WITHIN).await {
        if let Ok(mut held) = shopper.token.lock() {
            *held = token;
        }
    }
}

/// How long a shopper waits for a sign-in code's mail.
const SIGN_IN_WITHIN: Duration = Duration::from_secs(15);

/// Empties the cart and fills it with `lines`; false if any request failed.
pub async fn fill_cart(shop: &Shop, shopper: &Shopper, lines: &[(i64, i64)]) -> bool {
    let Some((StatusCode::OK, cart)) =
        send(shop, shopper, reqwest::Method::GET, "/cart", None, None).await
    else {
        return false;
    };
    let existing: Vec<i64> = cart["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["product_id"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    let removals = existing
        .into_iter()
        .map(|product| ("/cart/remove", json!({ "product_id": product })));
    let additions = lines.iter().map(|&(product, quantity)| {
        (
            "/cart/add",
            json!({ "product_id": product, "quantity": quantity }),
        )
    });
    for (path, body) in removals.chain(additions) {
        let answer = send(shop, shopper, reqwest::Method::POST, path, Some(body), None);
        if !matches!(answer.await, Some((StatusCode::OK, _))) {
            return false;
        }
    }
    true
}

/// Checks out with one key, retrying through failures until an answer that ends it. Returns the
/// accepted order.
pub async fn checkout(
    shop: &Shop,
    shopper: &Shopper,
    seen: &Seen,
    stop: &AtomicBool,
) -> Option<Uuid> {
    let key = Uuid::new_v4().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let post = || {
        send(
            shop,
            shopper,
            reqwest::Method::POST,
            "/orders/checkout",
            None,
            Some(&key),
        )
    };
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        match post().await {
            Some((StatusCode::ACCEPTED, body)) => {
                let order: Uuid = body["order_id"].as_str()?.parse().ok()?;
                seen.record(&key, order);
                // Now and then the answer is "lost" and the same key sent again, as a client
                // whose connection broke would: it must name the same order.
                if rand::thread_rng().gen_bool(0.2) {
                    if let Some((StatusCode::ACCEPTED, body)) = post().await {
                        if let Some(replayed) =
                            body["order_id"].as_str().and_then(|o| o.parse().ok())
                        {
                            seen.record(&key, replayed);
                        }
                    }
                }
                return Some(order);
            }
            // An earlier attempt with this key is still being decided: ask again.
            Some((StatusCode::CONFLICT, body))
                if body["error"]["code"] == "checkout_in_progress" =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Sold out, the drop not on sale yet, or an emptied cart: this checkout is over,
            // with no order.
            Some((StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY, _)) => return None,
            // No answer, 401 (signed in again), 5xx: the same request again.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// The share of accepted orders their shoppers cancel right away.
const CANCEL_SHARE: f64 = 0.15;

/// Cancels `order`, retrying through failures until an answer that ends it: 200 (recorded, so
/// the checker can hold the shop to it) or 409 (it was rejected first).
async fn cancel(shop: &Shop, shopper: &Shopper, seen: &Seen, stop: &AtomicBool, order: Uuid) {
    let path = format!("/orders/{order}/cancel");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        match send(shop, shopper, reqwest::Method::POST, &path, None, None).await {
            Some((StatusCode::OK, _)) => {
                seen.record_cancel(order);
                return;
            }
            Some((StatusCode::CONFLICT, _)) => return,
            // No answer, 401 (signed in again), 5xx: the same request again.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn shop_until_stopped(
    fixture: Arc<Fixture>,
    shopper: Arc<Shopper>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let lines: Vec<(i64, i64)> = {
            let mut rng = rand::thread_rng();
            let count = rng.gen_range(1..=3);
            let mut products = HashSet::new();
            if rng.gen_bool(DROP_SHARE) {
                products.insert(fixture.drop);
            }
            while products.len() < count {
                let pool = if rng.gen_bool(0.3) {
                    &fixture.hot
                } else {
                    &fixture.cold
                };
                if let Some(&id) = pool.choose(&mut rng) {
                    products.insert(id);
                }
            }
            products
                .into_iter()
                .map(|id| (id, rng.gen_range(1..=2)))
                .collect()
        };
        if fill_cart(&fixture.shop, &shopper, &lines).await {
            let order = checkout(&fixture.shop, &shopper, &seen, &stop).await;
            // Some shoppers change their minds at once, racing the order's decision.
            if let Some(order) = order.filter(|_| rand::thread_rng().gen_bool(CANCEL_SHARE)) {
                cancel(&fixture.shop, &shopper, &seen, &stop, order).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The shoppers' tasks, shopping until told to stop.
pub struct Shoppers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Shoppers {
    /// Every shopper of `fixture` shopping in a task of its own, recording into `seen`.
    pub fn start(fixture: &Arc<Fixture>, seen: &Arc<Seen>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = fixture
            .shoppers
            .iter()
            .map(|shopper| {
                tokio::spawn(shop_until_stopped(
                    fixture.clone(),
                    shopper.clone(),
                    seen.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Tells them to stop and waits for them.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            // A shopper stops at its next request; one stuck longer is abandoned.
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

/// How long a restock may take to be applied before the suite gives up.
const RESTOCK_WITHIN: Duration = Duration::from_secs(60);

/// Puts `HOT_STOCK` more units on each hot product (sold out after a phase or two) through its
/// lane (`POST /products/{id}/restock`), so every phase has buyers competing for scarce stock.
pub async fn restock(fixture: &Fixture, initial: &mut HashMap<i64, i64>) -> Result<(), BenchError> {
    // A session of the seller's (user 0) that outlives whatever Redis went through.
    let email = contact(0)["email"].as_str().unwrap_or_default().to_owned();
    let seller = fixture
        .shop
        .sign_in_by_code(&email, SIGN_IN_WITHIN)
        .await
        .ok_or_else(|| BenchError::Unexpected("the seller could not sign in by code".into()))?;
    let round = Uuid::new_v4();
    for &id in &fixture.hot {
        // 202: the lane has not applied it yet (each request waits 3 s for it); the same key
        // again asks for its result, at once.
        let (url, key, seller) = (
            &fixture.shop.url(&format!("/products/{id}/restock")),
            &format!("{round}-{id}"),
            &seller,
        );
        let applied = poll::until(RESTOCK_WITHIN, Duration::ZERO, || async move {
            let response = fixture
                .shop
                .client()
                .post(url)
                .bearer_auth(seller)
                .header("idempotency-key", key)
                .json(&json!({ "quantity": HOT_STOCK }))
                .send()
                .await?;
            match response.status() {
                StatusCode::OK => Ok(Ok(())),
                StatusCode::ACCEPTED => Ok(Err(StatusCode::ACCEPTED)),
                other => Err(BenchError::Unexpected(format!("restock: {other}"))),
            }
        })
        .await?;
        applied.map_err(|last| BenchError::Unexpected(format!("restock: {last}")))?;
        *initial.entry(id).or_default() += HOT_STOCK;
    }
    Ok(())
}
