//! The shop's HTTP API as the load generator uses it.

use crate::{error::BenchError, load::Outcome, poll};
use futures_util::{stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_infra::{
    sign_in::{self, CodeKey, Holder},
    Keys,
};
use std::time::Duration;

/// Requests in flight while setting up a scenario (products, users).
pub const SETUP_CONCURRENCY: usize = 64;

#[derive(Clone)]
pub struct Shop {
    client: reqwest::Client,
    base: String,
    /// The development mail sink's HTTP address, where sign-in codes are read.
    mailbox: Option<String>,
    /// Where the system's API looks for codes, to register shoppers without reading mail.
    codes: Option<Codes>,
}

/// A system's code store as its notifier writes it (its Redis, key prefix and
/// `SIGN_IN_CODE_KEY`): registering thousands of shoppers reads no mail.
#[derive(Clone)]
pub struct Codes {
    pub redis: redis::aio::ConnectionManager,
    pub keys: Keys,
    pub key: CodeKey,
    pub ttl: Duration,
}

impl Codes {
    /// Stores a new registration's code for `email`, claiming `phone`, as the notifier does
    /// when it mails one to an address that has no account, and returns it.
    async fn registration(&self, email: &str, phone: &str) -> Result<String, BenchError> {
        let holder = Holder::Registration(sign_in::email_digest(email));
        Ok(sign_in::issue(
            &self.redis,
            &self.keys,
            &self.key,
            &holder,
            phone.as_bytes(),
            self.ttl,
        )
        .await?)
    }
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
            mailbox: None,
            codes: None,
        }
    }

    /// This shop, registering shoppers with codes stored in `codes`.
    pub fn with_codes(self, codes: Codes) -> Self {
        Self {
            codes: Some(codes),
            ..self
        }
    }

    /// This shop, reading sign-in codes from the mail sink at `mailbox` (`host:port`).
    pub fn with_mailbox(self, mailbox: &str) -> Self {
        Self {
            mailbox: Some(mailbox.to_owned()),
            ..self
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

    /// Registers user number `n` of this system as a shopper does, the mail aside:
    /// `POST /users/register`, the code stored as the notifier stores it ([`Shop::with_codes`]),
    /// `POST /sessions/verify`. Returns its id and session token.
    pub async fn register(&self, n: u64) -> Result<(i64, String), BenchError> {
        let codes = self.codes.as_ref().ok_or_else(|| {
            BenchError::Setup("registering needs the system's code store (Shop::with_codes)".into())
        })?;
        let contact = contact(n);
        let (status, body) = self.post("/users/register", None, &contact).await?;
        if status != StatusCode::ACCEPTED {
            return Err(BenchError::Unexpected(format!("register: {status} {body}")));
        }
        let email = contact["email"].as_str().unwrap_or_default();
        let phone = contact["phone_number"].as_str().unwrap_or_default();
        // A notifier beside the API (the fault suite's) mails a code of its own, which may
        // replace this one before it is entered: then it is stored again.
        for _ in 0..5 {
            let code = codes.registration(email, phone).await?;
            let (status, body) = self
                .post(
                    "/sessions/verify",
                    None,
                    &json!({ "email": email, "code": code }),
                )
                .await?;
            match (body["user"]["id"].as_i64(), body["session_token"].as_str()) {
                (Some(id), Some(token)) if status == StatusCode::CREATED => {
                    return Ok((id, token.to_owned()))
                }
                _ if status == StatusCode::UNAUTHORIZED => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => {
                    return Err(BenchError::Unexpected(format!(
                        "registration code: {status} {body}"
                    )))
                }
            }
        }
        Err(BenchError::Unexpected(format!(
            "the registration of {email} was never verified"
        )))
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
        self.list(token, &body).await
    }

    /// Lists a flash-sale drop: `stock` units, at most `limit` per shopper, on sale from
    /// `starts_at`; returns its id.
    pub async fn create_drop(
        &self,
        token: &str,
        name: &str,
        stock: i64,
        limit: i64,
        starts_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, BenchError> {
        let body = json!({
            "name": name,
            "price_cents": 4999,
            "available_quantity": stock,
            "category": "drops",
            "max_per_shopper": limit,
            "sale_starts_at": starts_at.to_rfc3339(),
        });
        self.list(token, &body).await
    }

    /// `POST /products` with `body`; the new product's id.
    async fn list(&self, token: &str, body: &Value) -> Result<i64, BenchError> {
        let (status, body) = self.post("/products", Some(token), body).await?;
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

impl Shop {
    /// Signs in as a shopper does: asks for a code for `email`, reads it from the mail sink
    /// ([`Shop::with_mailbox`]) once a new mail for `email` is there, and verifies it. `None` if
    /// a step failed or no mail came within `within`.
    pub async fn sign_in_by_code(&self, email: &str, within: Duration) -> Option<String> {
        let inbox = format!("http://{}/messages", self.mailbox.as_deref()?);
        let newest = |mails: Vec<Value>| {
            mails.last().map(|m| {
                (
                    m["id"].as_i64().unwrap_or(0),
                    m["text"].as_str().unwrap_or("").to_owned(),
                )
            })
        };
        let read = || async {
            let response = self
                .client
                .get(&inbox)
                .query(&[("to", email)])
                .send()
                .await
                .ok()?;
            response.json::<Vec<Value>>().await.ok()
        };
        let before = newest(read().await?).map_or(0, |(id, _)| id);
        let asked = self
            .client
            .post(self.url("/sessions"))
            .json(&json!({ "email": email }))
            .send()
            .await
            .ok()?;
        if asked.status() != StatusCode::ACCEPTED {
            return None;
        }
        let text = poll::until(within, Duration::from_millis(100), || async move {
            let Some(mails) = read().await else {
                return Err(());
            };
            Ok(match newest(mails) {
                Some((id, text)) if id > before => Ok(text),
                _ => Err(()),
            })
        })
        .await
        .ok()?
        .ok()?;
        let code: String = text
            .as_bytes()
            .windows(6)
            .find(|w| w.iter().all(u8::is_ascii_digit))
            .map(|w| String::from_utf8_lossy(w).into_owned())?;
        let verified = self
            .client
            .post(self.url("/sessions/verify"))
            .json(&json!({ "email": email, "code": code }))
            .send()
            .await
            .ok()?;
        if verified.status() != StatusCode::CREATED {
            return None;
        }
        let body: Value = verified.json().await.ok()?;
        body["session_token"].as_str().map(str::to_owned)
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
