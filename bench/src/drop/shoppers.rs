//! The drop's shoppers: listed, registered with the drop in their carts, and then checking out
//! on the clock. The seller lists the drop with its sale a day off while the shoppers register
//! (thousands take longer than a few seconds), then moves the start to a few seconds ahead
//! (`PATCH /products/{id}`). Each shopper checks out in its slot of the second after the start;
//! the early ones also a second before it; those that check out twice put the same quantity
//! back in the cart (`POST /cart/update`) as soon as the first checkout is answered and check
//! out again. At most [`IN_FLIGHT`] checkouts are outstanding at once; a checkout's latency runs
//! from when it was due, so waiting for a slot counts.

use super::{
    plan::{Plan, Role, EARLY_BY},
    watch::{self, Watched},
};
use crate::{error::BenchError, scenarios::Bench, shop::Shop};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use tokio::{sync::Semaphore, task::JoinSet, time::Instant};
use uuid::Uuid;

/// Checkout requests outstanding at once: the connections one load generator keeps open.
const IN_FLIGHT: usize = 1024;

/// A registered shopper with the drop in the cart.
pub struct Shopper {
    pub user: i64,
    token: String,
    role: Role,
}

/// Lists the drop (its sale a day off) and registers `plan.shoppers` shoppers, each with its
/// role's quantity of it in the cart; returns the drop's id and the shoppers in slot order.
pub async fn prepare(bench: &Bench<'_>, plan: &Plan) -> Result<(i64, Vec<Shopper>), BenchError> {
    let far_off = chrono::Utc::now() + chrono::Duration::days(1);
    let drop = bench
        .shop
        .create_drop(&bench.seller, "drop", plan.units, plan.limit, far_off)
        .await?;
    let roles = plan.roles();
    let wanting = |quantity: i64| roles.iter().filter(|r| r.quantity == quantity).count();
    // Registered in two groups, one per quantity: each group's carts are alike, whatever order
    // the registrations finish in.
    let mut groups = Vec::new();
    for quantity in [1, 2] {
        let buyers = bench
            .buyers(wanting(quantity), |_| vec![(drop, quantity)])
            .await?;
        groups.push((quantity, buyers.into_iter()));
    }
    let shoppers = roles
        .into_iter()
        .map(|role| {
            let group = groups.iter_mut().find(|(q, _)| *q == role.quantity);
            let (user, token) = group
                .and_then(|(_, buyers)| buyers.next())
                .ok_or_else(|| BenchError::Setup("fewer shoppers registered than roles".into()))?;
            Ok(Shopper { user, token, role })
        })
        .collect::<Result<_, BenchError>>()?;
    Ok((drop, shoppers))
}

/// Moves the drop's sale start to `at` (`PATCH /products/{id}` as its seller).
pub async fn start_sale_at(
    shop: &Shop,
    seller: &str,
    drop: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), BenchError> {
    let response = shop
        .client()
        .patch(shop.url(&format!("/products/{drop}")))
        .bearer_auth(seller)
        .json(&json!({ "sale_starts_at": at.to_rfc3339() }))
        .send()
        .await?;
    match response.status() {
        StatusCode::OK => Ok(()),
        other => Err(BenchError::Unexpected(format!(
            "moving the sale start: {other} {}",
            response.text().await.unwrap_or_default()
        ))),
    }
}

/// Which of a shopper's checkouts an answer is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fire {
    /// [`EARLY_BY`] before the start.
    Early,
    /// In the shopper's slot.
    First,
    /// Right after the first was answered.
    Second,
}

/// One checkout and how it was answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub fire: Fire,
    pub due: Instant,
    pub sent: Instant,
    pub answered: Instant,
    /// `None`: no answer (the connection failed).
    pub status: Option<StatusCode>,
    /// The error body's `code`, if any.
    pub code: Option<String>,
    pub order: Option<Uuid>,
}

impl Answer {
    /// `202`, `409 out_of_stock`, `no answer`: how the table counts answers.
    pub fn label(&self) -> String {
        match (self.status, &self.code) {
            (None, _) => "no answer".to_owned(),
            (Some(status), Some(code)) => format!("{} {code}", status.as_u16()),
            (Some(status), None) => status.as_u16().to_string(),
        }
    }
}

/// What the shoppers were answered, and what the watchers saw.
#[derive(Debug, Default)]
pub struct Fired {
    pub answers: Vec<Answer>,
    pub watched: Vec<Watched>,
}

/// Everything the shoppers' tasks share.
struct Sale {
    shop: Shop,
    plan: Plan,
    drop: i64,
    shoppers: Vec<Shopper>,
    start: Instant,
    /// When the watchers give up on an order.
    watch_until: Instant,
    slots: Semaphore,
}

/// Every shopper checking out on the clock from `start` (a task each), until all are answered
/// and the watched orders decided or `watch_until` passed.
pub async fn fire(
    shop: Shop,
    plan: Plan,
    drop: i64,
    shoppers: Vec<Shopper>,
    start: Instant,
    watch_until: Instant,
) -> Result<Fired, BenchError> {
    let sale = Arc::new(Sale {
        shop,
        plan,
        drop,
        shoppers,
        start,
        watch_until,
        slots: Semaphore::new(IN_FLIGHT),
    });
    let mut tasks = JoinSet::new();
    for i in 0..sale.shoppers.len() {
        tasks.spawn(shop_the_drop(sale.clone(), i));
    }
    let mut fired = Fired::default();
    while let Some(done) = tasks.join_next().await {
        let (answers, watched) =
            done.map_err(|e| BenchError::Unexpected(format!("a shopper's task failed: {e}")))?;
        fired.answers.extend(answers);
        fired.watched.extend(watched);
    }
    Ok(fired)
}

/// Shopper `i`'s checkouts, and what its watcher saw if it has one.
async fn shop_the_drop(sale: Arc<Sale>, i: usize) -> (Vec<Answer>, Option<Watched>) {
    let shopper = &sale.shoppers[i];
    let mut answers = Vec::new();
    if shopper.role.early {
        let early = sale.start.checked_sub(EARLY_BY).unwrap_or(sale.start);
        answers.push(sale.checkout(shopper, Fire::Early, early).await);
    }
    let first = sale
        .checkout(shopper, Fire::First, sale.start + sale.plan.slot(i))
        .await;
    let watch = first.order.filter(|_| shopper.role.watched).map(|order| {
        tokio::spawn(watch::follow(
            sale.shop.clone(),
            shopper.token.clone(),
            order,
            sale.watch_until,
        ))
    });
    answers.push(first);
    if shopper.role.twice {
        // A refill that fails leaves the cart as it is: the checkout's answer says so.
        let line = json!({ "product_id": sale.drop, "quantity": shopper.role.quantity });
        let _ = sale
            .shop
            .post("/cart/update", Some(&shopper.token), &line)
            .await;
        let again = sale.checkout(shopper, Fire::Second, Instant::now()).await;
        answers.push(again);
    }
    let watched = match watch {
        Some(task) => task.await.ok(),
        None => None,
    };
    (answers, watched)
}

impl Sale {
    /// `POST /orders/checkout` as `shopper`, at `due` or as soon after as a slot is free.
    async fn checkout(&self, shopper: &Shopper, fire: Fire, due: Instant) -> Answer {
        tokio::time::sleep_until(due).await;
        // Never closed: a permit is always had, in turn.
        let _slot = self.slots.acquire().await.ok();
        let sent = Instant::now();
        let reply = self
            .shop
            .post("/orders/checkout", Some(&shopper.token), &json!({}))
            .await;
        let answered = Instant::now();
        let (status, body) = match reply {
            Ok((status, body)) => (Some(status), body),
            Err(_) => (None, serde_json::Value::Null),
        };
        Answer {
            fire,
            due,
            sent,
            answered,
            status,
            code: body["error"]["code"].as_str().map(str::to_owned),
            order: body["order_id"].as_str().and_then(|o| o.parse().ok()),
        }
    }
}
