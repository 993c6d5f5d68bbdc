//! Test helpers. [`TestApp`] is the API on a random port against its own fresh database and Redis
//! prefix, with one method per endpoint. With the `worker` feature (the system tests'),
//! `TestApp::worker_settings` points a checkout worker at the same stores and at topics and a
//! consumer group of the test's own.
//!
//! Everything here panics on failure: it is for tests only.
#![allow(clippy::missing_panics_doc)]

mod mail;
#[cfg(feature = "worker")]
mod worker;
pub use mail::{code_in, MailSink};
#[cfg(feature = "worker")]
pub use worker::{RunningWorker, WorkerProcess};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shop_api::{checkout::Strategy, config::Settings, startup::Application};
use sqlx::{Connection, PgConnection, PgPool};
use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub settings: Settings,
    pub redis: redis::aio::ConnectionManager,
    /// Unique per test: names its database, Redis prefix, topics and consumer group.
    pub id: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub phone_number: String,
    pub token: String,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A contact no other user of this test has.
pub fn unique_contact() -> (String, String) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (format!("user{n}@example.com"), format!("+1555{n:07}"))
}

fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    format!("{base}/{name}")
}

impl TestApp {
    /// A fresh database and Redis prefix, and the API serving them on a random port, with the
    /// checkout strategy of the environment (`queue` by default).
    pub async fn spawn() -> Self {
        let settings = Settings::from_env().expect("settings from environment");
        Self::spawn_with(settings.checkout_strategy).await
    }

    /// [`TestApp::spawn`] with the given checkout strategy.
    pub async fn spawn_with(strategy: Strategy) -> Self {
        Self::spawn_configured(|settings| settings.checkout_strategy = strategy).await
    }

    /// [`TestApp::spawn`] with settings changed by `configure` (after the test defaults).
    pub async fn spawn_configured(configure: impl FnOnce(&mut Settings)) -> Self {
        shop_infra::telemetry::init();
        let mut settings = Settings::from_env().expect("settings from environment");
        // Four tests at a time, each with an API, a worker and this pool, stay well inside
        // PostgreSQL's default 100 connections.
        settings.database_max_connections = 10;
        // Tests send bursts from one address; the limiter still counts every request.
        settings.rate_limit_per_ip = 100_000;
        settings.rate_limit_per_session = 100_000;
        settings.sign_in_verifies_per_ip = 100_000;
        settings.shutdown_drain = Duration::from_millis(500);
        let id = Uuid::new_v4().simple().to_string();
        let database = format!("shop_test_{id}");
        let mut admin = PgConnection::connect(&settings.database_url)
            .await
            .expect("PostgreSQL reachable: run scripts/test.sh, which starts it");
        sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
            .execute(&mut admin)
            .await
            .expect("create test database");
        settings.database_url = with_database(&settings.database_url, &database);
        settings.redis_key_prefix = format!("test:{id}:");
        settings.listen_addr = "127.0.0.1:0".parse().expect("address");
        configure(&mut settings);
        Self::start(settings, id).await
    }

    /// Another API process on the same database and Redis prefix (a restart or a second replica).
    pub async fn start(settings: Settings, id: String) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("app builds");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&settings.database_url)
            .await
            .expect("test pool");
        let redis = shop_infra::connect_redis(&settings.redis_url)
            .await
            .expect("redis");
        Self {
            address,
            client: reqwest::Client::new(),
            db,
            settings,
            redis,
            id,
            server,
            stop,
        }
    }

    /// Begins a graceful shutdown, as SIGTERM does.
    pub fn terminate(&self) {
        self.stop.cancel();
    }

    /// Whether the server has exited.
    pub fn has_exited(&self) -> bool {
        self.server.is_finished()
    }

    /// Stops serving at once, as a killed process would: requests in flight are dropped.
    pub fn kill(&self) {
        self.server.abort();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn checkout(&self, token: &str, idempotency_key: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url("/orders/checkout"))
            .bearer_auth(token);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    /// Checks out and returns the accepted order's id.
    pub async fn checkout_accepted(&self, token: &str) -> String {
        let body = expect_json(self.checkout(token, None).await, StatusCode::ACCEPTED).await;
        body["order_id"].as_str().expect("order id").to_owned()
    }

    pub async fn order(&self, token: &str, id: &str) -> Value {
        expect_json(
            self.get(&format!("/orders/{id}"), Some(token)).await,
            StatusCode::OK,
        )
        .await
    }

    /// The API's `/metrics` page, as Prometheus reads it.
    pub async fn metrics(&self) -> String {
        self.get("/metrics", None)
            .await
            .text()
            .await
            .expect("metrics")
    }

    /// `POST /orders/{id}/cancel`.
    pub async fn cancel(&self, token: &str, id: &str) -> Response {
        self.post(&format!("/orders/{id}/cancel"), Some(token), &Value::Null)
            .await
    }

    /// `POST /products/{id}/restock`, with an Idempotency-Key if given.
    pub async fn restock(
        &self,
        token: &str,
        product: i64,
        quantity: i64,
        idempotency_key: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/products/{product}/restock")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "quantity": quantity }));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    /// Polls the order until it is no longer PENDING, failing after `within`.
    pub async fn wait_for_terminal(&self, token: &str, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let order = self.order(token, id).await;
            if order["status"] != "PENDING" {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} still PENDING after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Current stock of each product.
    pub async fn stock(&self) -> HashMap<i64, i64> {
        let rows: Vec<(i64, i32)> = sqlx::query_as("SELECT id, available_quantity FROM products")
            .fetch_all(&self.db)
            .await
            .expect("stock");
        rows.into_iter().map(|(id, q)| (id, i64::from(q))).collect()
    }

    /// Checks the pipeline's invariants against `initial` stock: no order PENDING, no stock below
    /// zero, for every product initial + applied restocks = available + units of confirmed
    /// orders, and no line of a rejected or cancelled order still holding units.
    pub async fn assert_invariants(&self, initial: &HashMap<i64, i64>) {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'PENDING'")
                .fetch_one(&self.db)
                .await
                .expect("pending");
        assert_eq!(pending, 0, "every accepted order must be decided");
        let confirmed: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT oi.product_id, SUM(oi.quantity)::BIGINT FROM order_items oi
             JOIN orders o ON o.id = oi.order_id WHERE o.status = 'CONFIRMED' GROUP BY oi.product_id",
        )
        .fetch_all(&self.db)
        .await
        .expect("confirmed units");
        let confirmed: HashMap<i64, i64> = confirmed.into_iter().collect();
        let restocked: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT product_id, SUM(quantity)::BIGINT FROM inventory_ledger
             WHERE kind = 'restock' AND applied GROUP BY product_id",
        )
        .fetch_all(&self.db)
        .await
        .expect("restocked units");
        let restocked: HashMap<i64, i64> = restocked.into_iter().collect();
        for (product, available) in self.stock().await {
            let start = initial.get(&product).copied().unwrap_or(available)
                + restocked.get(&product).copied().unwrap_or(0);
            let sold = confirmed.get(&product).copied().unwrap_or(0);
            assert!(available >= 0, "product {product} below zero");
            assert_eq!(
                start,
                available + sold,
                "product {product}: initial + restocks = available + confirmed units"
            );
        }
        let holding: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM order_items oi JOIN orders o ON o.id = oi.order_id
             WHERE o.status IN ('REJECTED', 'CANCELLED')
               AND oi.status NOT IN ('SHORT', 'RELEASED', 'CANCELLED')",
        )
        .fetch_one(&self.db)
        .await
        .expect("holding");
        assert_eq!(
            holding, 0,
            "every line of a rejected or cancelled order gave its units back"
        );
    }

    /// Waits until every order is decided and every release applied (of rejected and cancelled
    /// orders), failing after `within`.
    pub async fn wait_until_settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (pending, outbox, unreleased): (i64, i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM orders WHERE status = 'PENDING'),
                        (SELECT count(*) FROM outbox),
                        (SELECT count(*) FROM order_items oi JOIN orders o ON o.id = oi.order_id
                         WHERE (o.status = 'REJECTED' AND oi.status = 'RESERVED')
                            OR (o.status = 'CANCELLED' AND oi.status IN ('PENDING', 'RESERVED')))",
            )
            .fetch_one(&self.db)
            .await
            .expect("settled");
            if pending + outbox + unreleased == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "unsettled after {within:?}: {pending} orders PENDING, {outbox} outbox rows, {unreleased} lines to release"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn register(&self, email: &str, phone: &str) -> Response {
        self.post(
            "/users/register",
            None,
            &json!({ "email": email, "phone_number": phone }),
        )
        .await
    }

    /// `POST /sessions`: asks for a sign-in code; `address` is `{"email": …}` or
    /// `{"phone_number": …}`.
    pub async fn request_code(&self, address: &Value) -> Response {
        self.post("/sessions", None, address).await
    }

    /// `POST /sessions/verify` with `address` and `code`.
    pub async fn verify_code(&self, address: &Value, code: &str) -> Response {
        let mut body = address.clone();
        body["code"] = json!(code);
        self.post("/sessions/verify", None, &body).await
    }

    /// Stores a fresh sign-in code for `user_id` exactly as the notifier does before sending it,
    /// and returns it: for tests of the API alone. The system tests read codes from a real mail
    /// sink instead.
    pub async fn issue_code(&self, user_id: i64) -> String {
        shop_infra::sign_in::issue(
            &self.redis,
            &shop_infra::Keys::new(&self.settings.redis_key_prefix),
            &self.settings.sign_in_code_key,
            user_id,
            self.settings.sign_in_code_ttl,
        )
        .await
        .expect("code stored")
    }

    /// Signs `user` in by a code (see [`TestApp::issue_code`]) and returns the new token.
    pub async fn sign_in_by_code(&self, user: &TestUser) -> String {
        let code = self.issue_code(user.id).await;
        let body = expect_json(
            self.verify_code(&json!({ "email": user.email }), &code)
                .await,
            StatusCode::CREATED,
        )
        .await;
        body["session_token"].as_str().expect("token").to_owned()
    }

    /// `DELETE /sessions/current` with `token`.
    pub async fn sign_out(&self, token: &str) -> Response {
        self.client
            .delete(self.url("/sessions/current"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers a new user and returns it with its session token.
    pub async fn new_user(&self) -> TestUser {
        let (email, phone_number) = unique_contact();
        let body = expect_json(
            self.register(&email, &phone_number).await,
            StatusCode::CREATED,
        )
        .await;
        TestUser {
            id: body["user"]["id"].as_i64().expect("user id"),
            email,
            phone_number,
            token: body["session_token"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn create_product(&self, token: &str, body: &Value) -> Response {
        self.post("/products", Some(token), body).await
    }

    /// Lists a product for `seller` and returns its JSON.
    pub async fn new_product(
        &self,
        seller: &TestUser,
        category: &str,
        price: i64,
        stock: i64,
    ) -> Value {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "name": format!("Product {n}"),
            "price_cents": price,
            "available_quantity": stock,
            "category": category,
        });
        expect_json(
            self.create_product(&seller.token, &body).await,
            StatusCode::CREATED,
        )
        .await
    }

    pub async fn cart(&self, token: &str) -> Value {
        expect_json(self.get("/cart", Some(token)).await, StatusCode::OK).await
    }

    pub async fn cart_add(&self, token: &str, product_id: i64, quantity: i64) -> Response {
        self.post(
            "/cart/add",
            Some(token),
            &json!({ "product_id": product_id, "quantity": quantity }),
        )
        .await
    }

    pub async fn cart_update(&self, token: &str, product_id: i64, quantity: i64) -> Response {
        self.post(
            "/cart/update",
            Some(token),
            &json!({ "product_id": product_id, "quantity": quantity }),
        )
        .await
    }

    pub async fn cart_remove(&self, token: &str, product_id: i64) -> Response {
        self.post(
            "/cart/remove",
            Some(token),
            &json!({ "product_id": product_id }),
        )
        .await
    }

    /// Deletes every Redis key of this app, as a flushed or replaced Redis would.
    pub async fn flush_redis(&self) {
        let mut conn = self.redis.clone();
        let pattern = format!("{}*", self.settings.redis_key_prefix);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("keys");
        for key in keys {
            let _: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
    }
}

/// Asserts the status, then returns the body as JSON.
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(actual, status, "unexpected status; body: {body}");
    body
}

/// Asserts the status and the error code of a JSON error body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_json(response, status).await;
    assert_eq!(body["error"]["code"], code, "unexpected error body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
    body
}
