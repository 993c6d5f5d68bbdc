use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shop_api::{config::Settings, startup::Application};
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub settings: Settings,
    pub redis: redis::aio::ConnectionManager,
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
    /// A fresh database and Redis prefix, and the API serving them on a random port.
    pub async fn spawn() -> Self {
        shop_infra::telemetry::init();
        let mut settings = Settings::from_env().expect("settings from environment");
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
        Self::start(settings).await
    }

    /// Another API process on the same database and Redis prefix (a restart or a second replica).
    pub async fn start(settings: Settings) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("app builds");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        tokio::spawn(app.run_until_stopped());
        let db = PgPool::connect(&settings.database_url)
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
        }
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

    pub async fn sign_in(&self, email: &str, phone: &str) -> Response {
        self.post(
            "/sessions",
            None,
            &json!({ "email": email, "phone_number": phone }),
        )
        .await
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
