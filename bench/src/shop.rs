//! The shop's HTTP API as the load generator uses it.

use crate::{load::Outcome, BenchError};
use futures_util::{stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Requests in flight while setting up a scenario (products, users).
pub const SETUP_CONCURRENCY: usize = 64;

#[derive(Clone)]
pub struct Shop {
    client: reqwest::Client,
    base: String,
}

/// How a checkout request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutAnswer {
    /// 202 (queue) or 201 (synchronous strategies).
    Placed,
    /// 409 `out_of_stock`: a right answer when demand exceeds stock.
    OutOfStock,
    /// 409 `contention`: a synchronous strategy gave up.
    Contention,
    /// Anything else: a failure.
    Failed,
}

impl Shop {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Self {
            client,
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn get(&self, path: &str) -> Result<StatusCode, reqwest::Error> {
        let response = self.client.get(self.url(path)).send().await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> Result<StatusCode, reqwest::Error> {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Registers user number `n` of this system and returns its id and session token.
    pub async fn register(&self, n: u64) -> Result<(i64, String), BenchError> {
        let (status, body) = self.post("/users/register", None, &contact(n)).await?;
        match (body["user"]["id"].as_i64(), body["session_token"].as_str()) {
            (Some(id), Some(token)) if status == StatusCode::CREATED => Ok((id, token.to_owned())),
            _ => Err(BenchError::Unexpected(format!("register: {status} {body}"))),
        }
    }

    /// Lists a product and returns its id.
    pub async fn create_product(
        &self,
        token: &str,
        name: &str,
        category: &str,
        stock: i64,
    ) -> Result<i64, BenchError> {
        let body = json!({
            "name": name,
            "price_cents": 1999,
            "available_quantity": stock,
            "category": category,
        });
        let (status, body) = self.post("/products", Some(token), &body).await?;
        match body["id"].as_i64() {
            Some(id) if status == StatusCode::CREATED => Ok(id),
            _ => Err(BenchError::Unexpected(format!(
                "create product: {status} {body}"
            ))),
        }
    }

    /// Lists `count` products named `<category> <i>`, `SETUP_CONCURRENCY` at a time; returns
    /// their ids.
    pub async fn create_products(
        &self,
        seller: &str,
        category: &str,
        count: usize,
        stock: i64,
    ) -> Result<Vec<i64>, BenchError> {
        stream::iter(0..count)
            .map(|i| async move {
                self.create_product(seller, &format!("{category} {i}"), category, stock)
                    .await
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    pub async fn cart_add(
        &self,
        token: &str,
        product: i64,
        quantity: i64,
    ) -> Result<(), BenchError> {
        let body = json!({ "product_id": product, "quantity": quantity });
        let (status, body) = self.post("/cart/add", Some(token), &body).await?;
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(BenchError::Unexpected(format!("cart add: {status} {body}")))
        }
    }

    pub async fn checkout(&self, token: &str) -> CheckoutAnswer {
        let response = self
            .client
            .post(self.url("/orders/checkout"))
            .bearer_auth(token)
            .send()
            .await;
        let Ok(response) = response else {
            return CheckoutAnswer::Failed;
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::ACCEPTED | StatusCode::CREATED => CheckoutAnswer::Placed,
            StatusCode::CONFLICT if body["error"]["code"] == "out_of_stock" => {
                CheckoutAnswer::OutOfStock
            }
            StatusCode::CONFLICT if body["error"]["code"] == "contention" => {
                CheckoutAnswer::Contention
            }
            _ => CheckoutAnswer::Failed,
        }
    }
}

/// A request the scenario wanted answered 200 OK.
pub fn answered_ok(status: Result<StatusCode, reqwest::Error>) -> Outcome {
    match status {
        Ok(StatusCode::OK) => Outcome::Ok,
        _ => Outcome::Failed,
    }
}

/// The registration body of user number `n`: unique email and E.164 phone number.
pub fn contact(n: u64) -> Value {
    json!({
        "email": format!("u{n}@bench.example.com"),
        "phone_number": format!("+1{:010}", 2_000_000_000 + n),
    })
}
