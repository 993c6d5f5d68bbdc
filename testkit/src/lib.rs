//! Test helpers. [`TestApp`] is the API on a random port against its own fresh database and Redis
//! prefix, with one method per endpoint. With the `worker` feature (the system tests'),
//! `TestApp::worker_settings` points a checkout worker at the same stores and at topics and a
//! consumer group of the test's own.
//!
//! Everything here panics on failure: it is for tests only.
#![allow(clippy::missing_panics_doc)]

mod mail;
mod poll;
#[cfg(feature = "worker")]
mod worker;
pub use mail::{code_in, MailSink};
pub use poll::{eventually, POLL_EVERY};
#[cfg(feature = "worker")]
pub use worker::{RunningWorker, WorkerProcess};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shop_api::{checkout::Strategy, config::Settings, startup::Application};
use shop_infra::{notifications::Kind, sign_in::Holder};
use sqlx::{Connection, PgConnection, PgPool};
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
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
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(0);

/// A contact no other user of this test has.
pub fn unique_contact() -> (String, String) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (format!("user{n}@example.com"), format!("+1555{n:07}"))
}

/// A client that connects from a loopback address no other client of this process uses
/// (127.1.0.1 and up; any of 127/8 is this machine), as a new shopper comes from an address of
/// her own: what she spends of the per-address budgets is not the test's (127.0.0.1).
pub fn client_of_its_own() -> reqwest::Client {
    let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
    let octet = |value: u64| u8::try_from(value).expect("below 256");
    let ip = Ipv4Addr::new(
        127,
        1 + octet((n / 62_500) % 250),
        octet((n / 250) % 250),
        1 + octet(n % 250),
    );
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()
        .expect("client")
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

    /// `POST /users/register`: 202 whatever the addresses; the code is queued after the answer.
    pub async fn register(&self, email: &str, phone: &str) -> Response {
        self.post(
            "/users/register",
            None,
            &json!({ "email": email, "phone_number": phone }),
        )
        .await
    }

    /// The phone number of each registration queued for `email` (normalised), oldest first,
    /// once at least `count` are: the API queues them after answering.
    pub async fn queued_registrations(&self, email: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let phones: Vec<String> = sqlx::query_scalar(
                "SELECT phone_number FROM notifications WHERE kind = $1 AND email = $2 ORDER BY id",
            )
            .bind(Kind::RegistrationCode.as_str())
            .bind(email)
            .fetch_all(&self.db)
            .await
            .expect("queued registrations");
            if phones.len() >= count {
                return phones;
            }
            assert!(
                Instant::now() < deadline,
                "{} registrations queued for {email}, wanted {count}",
                phones.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Makes and stores the code of a registration of `email` claiming `phone`, exactly as the
    /// notifier does when it sends one, and returns it: a code that signs in to the active
    /// account the address has, if it has one, else one that makes the account and carries the
    /// phone number.
    pub async fn issue_registration_code(&self, email: &str, phone: &str) -> String {
        let account: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = $1 AND status = 'active'")
                .bind(email)
                .fetch_optional(&self.db)
                .await
                .expect("account lookup");
        let (holder, carries) = match account {
            Some(user) => (Holder::Account(user), &b""[..]),
            None => (
                Holder::Registration(shop_infra::sign_in::email_digest(email)),
                phone.as_bytes(),
            ),
        };
        self.issue(&holder, carries).await
    }

    /// The code the newest registration queued for `email` mails (see
    /// [`TestApp::issue_registration_code`]), once the API has queued it.
    pub async fn registration_code(&self, email: &str) -> String {
        let phones = self.queued_registrations(email, 1).await;
        let phone = phones.last().expect("a registration");
        self.issue_registration_code(email, phone).await
    }

    /// Stores a fresh code proving that `user_id` holds `number`, exactly as the notifier does
    /// before texting it, and returns it.
    pub async fn issue_phone_code(&self, user_id: i64, number: &str) -> String {
        let holder = Holder::Phone {
            user: user_id,
            number: number.to_owned(),
        };
        self.issue(&holder, &[]).await
    }

    /// `POST /users/me/phone/verify` with `code` and `token`.
    pub async fn verify_phone_code(&self, token: &str, code: &str) -> Response {
        self.post(
            "/users/me/phone/verify",
            Some(token),
            &json!({ "code": code }),
        )
        .await
    }

    /// Proves `user`'s phone number with the code texted to it (see
    /// [`TestApp::issue_phone_code`]) and returns the account: the number then signs in.
    pub async fn verify_phone(&self, user: &TestUser) -> Value {
        let code = self.issue_phone_code(user.id, &user.phone_number).await;
        let body = expect_json(
            self.verify_phone_code(&user.token, &code).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(body["phone_verified"], true, "{body}");
        body
    }

    async fn issue(&self, holder: &Holder, carries: &[u8]) -> String {
        shop_infra::sign_in::issue(
            &self.redis,
            &shop_infra::Keys::new(&self.settings.redis_key_prefix),
            &self.settings.sign_in_code_key,
            holder,
            carries,
            self.settings.sign_in_code_ttl,
        )
        .await
        .expect("code stored")
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
        self.issue(&Holder::Account(user_id), &[]).await
    }

    /// [`TestApp::issue_code`] for a code texted to the account's proven phone number.
    pub async fn issue_text_code(&self, user_id: i64) -> String {
        self.issue(&Holder::AccountByText(user_id), &[]).await
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

    /// Registers a new user as a shopper does, from a client address of its own
    /// ([`client_of_its_own`]): `POST /users/register`, the code the registration mails (see
    /// [`TestApp::issue_registration_code`]), `POST /sessions/verify`. Returns it with its
    /// session token; its email is proven, its phone number claimed but not
    /// ([`TestApp::verify_phone`] proves it).
    pub async fn new_user(&self) -> TestUser {
        let (email, phone_number) = unique_contact();
        let client = client_of_its_own();
        let registered = client
            .post(self.url("/users/register"))
            .json(&json!({ "email": email, "phone_number": phone_number }))
            .send()
            .await
            .expect("request sent");
        expect_json(registered, StatusCode::ACCEPTED).await;
        self.queued_registrations(&email, 1).await;
        // Off the queue: a notifier running beside the API (the system tests') would send a
        // code of its own, replacing this test's.
        sqlx::query("DELETE FROM notifications WHERE kind = $1 AND email = $2")
            .bind(Kind::RegistrationCode.as_str())
            .bind(&email)
            .execute(&self.db)
            .await
            .expect("registration dequeued");
        for _ in 0..5 {
            let code = self.issue_registration_code(&email, &phone_number).await;
            let verified = client
                .post(self.url("/sessions/verify"))
                .json(&json!({ "email": email, "code": code }))
                .send()
                .await
                .expect("request sent");
            if verified.status() == StatusCode::CREATED {
                let body: Value = verified.json().await.expect("JSON body");
                return TestUser {
                    id: body["user"]["id"].as_i64().expect("user id"),
                    email,
                    phone_number,
                    token: body["session_token"].as_str().expect("token").to_owned(),
                };
            }
            // A notifier took the message before it left the queue, and stored its own code
            // since: store this one again.
            expect_error(verified, StatusCode::UNAUTHORIZED, "invalid_code").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the registration of {email} was never verified");
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

/// A six-digit code that is not `code`.
pub fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
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
